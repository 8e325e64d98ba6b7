#!/usr/bin/env node
// A walfeed consumer: prints each change as one JSON line and saves its cursor after it.
//
//   node consumer.js --server HOST:PORT[,HOST:PORT...] (--cursor-file FILE | --consumer NAME)
//                    [--stop-at-head]
//
// Resumes right after the cursor saved in FILE (from the oldest change when FILE does not exist),
// or, with --consumer, after the cursor walfeed keeps for NAME (each change printed is committed
// to walfeed with ChangeFeed.Commit: nothing is kept locally);
// reconnects with backoff when the server is unavailable, stops cleanly on SIGINT/SIGTERM, and
// sends `authorization: Bearer $WALFEED_TOKEN` when that variable is set. Values walfeed sends out
// of line (over 256 KiB) are fetched with ReadValue and printed whole. The .proto is loaded at run
// time from the repository's proto/ (run `npm install` here first).
'use strict';
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function usage(problem) {
  console.error(`${problem}\nusage: consumer.js --server HOST:PORT (--cursor-file FILE | --consumer NAME) ` +
                '[--stop-at-head]');
  process.exit(2);
}
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      server: { type: 'string' },
      'cursor-file': { type: 'string' },
      consumer: { type: 'string' },
      'stop-at-head': { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  usage(error.message);
}
if (!args.server) usage('--server is required');
if (!args['cursor-file'] === !args.consumer) usage('give one of --cursor-file and --consumer');
const cursorFile = args['cursor-file'];
const consumer = args.consumer || '';

const protoDir = path.join(__dirname, '..', '..', 'proto');
const definition = protoLoader.loadSync(path.join(protoDir, 'walfeed/v1/walfeed.proto'), {
  includeDirs: [protoDir], longs: String, enums: String, oneofs: true, defaults: true,
});
const { ChangeFeed } = grpc.loadPackageDefinition(definition).walfeed.v1;
// One client per address of the group (a walfeed and its replicas, which serve the same cursors
// and log id): after a connection error the next one serves.
const clients = args.server.split(',').map((a) => a.trim()).filter((a) => a)
  .map((address) => new ChangeFeed(address, grpc.credentials.createInsecure()));
let current = 0;
let client = clients[current];
const closeAll = () => clients.forEach((c) => c.close());
const metadata = new grpc.Metadata();
if (process.env.WALFEED_TOKEN) metadata.set('authorization', `Bearer ${process.env.WALFEED_TOKEN}`);

// A column's value as JSON: int64 as a string (exact), bytes as base64, SQL NULL as null.
function value(column) {
  const v = column[column.value];
  switch (column.value) {
    case undefined: case 'null': return null;
    case 'unchangedToast': return { unchangedToast: true };
    case 'float': return Number.isFinite(v) ? v : String(v);  // "NaN", "Infinity", "-Infinity"
    case 'bytes': return v.toString('base64');
    // Text that is not UTF-8 (a SQL_ASCII database): its bytes, base64.
    case 'rawText': return { rawText: v.toString('base64'), encoding: column.rawTextEncoding };
    case 'timestamp': {
      const micros = String(Math.floor(v.nanos / 1000)).padStart(6, '0');
      return `${new Date(Number(v.seconds) * 1000).toISOString().slice(0, 19)}.${micros}Z`;
    }
    default: return v;  // int (a string already), bool, text, numeric, json, date, uuid
  }
}
const row = (columns) => Object.fromEntries(columns.map((c) => [c.name, value(c)]));

// One output line: the operation, the table, the key, the cursor and the new row (and a
// message's prefix and content, base64).
function asJson(change) {
  const line = {
    op: change.op, table: `${change.schema}.${change.table}`, key: row(change.key),
    cursor: change.cursor, after: change.after.length ? row(change.after) : null,
  };
  if (change.backfill && change.backfill !== '0') line.backfill = Number(change.backfill);
  if (change.op === 'MESSAGE') {
    line.message = { prefix: change.message.prefix, content: change.message.content.toString('base64') };
  }
  return JSON.stringify(line);
}

// A value sent out of line (a LargeValue reference), read whole in chunks. Rejects with the
// call's status (NOT_FOUND: compaction removed the change after it was sent).
function readValue(large) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const stream = client.ReadValue({ ref: large.ref }, metadata.clone());
    currentFetch = stream;  // cancelled by stop()
    stream.on('data', (chunk) => chunks.push(chunk.data));
    stream.on('error', reject);
    stream.on('end', () => {
      currentFetch = null;
      const data = Buffer.concat(chunks);
      if (data.length === Number(large.size)) {
        resolve(data);
      } else {
        reject(new Error(`the value at ${large.ref} arrived with ${data.length} bytes, expected ${large.size}`));
      }
    });
  });
}

// Puts every value the change carries out of line back into the field it came from.
const KIND_FIELDS = { TEXT: 'text', NUMERIC: 'numeric', JSON: 'json', BYTES: 'bytes', RAW_TEXT: 'rawText' };
async function fetchLargeValues(change) {
  for (const column of [...change.key, ...change.before, ...change.after]) {
    if (column.value !== 'large') continue;
    const field = KIND_FIELDS[column.large.kind] || 'bytes';
    const data = await readValue(column.large);
    column[field] = field === 'bytes' || field === 'rawText' ? data : data.toString('utf8');
    column.value = field;
  }
  const large = change.message && change.message.largeContent;
  if (large && large.ref) change.message.content = await readValue(large);
}

// The saved cursor and the id of the log it belongs to ('' for what is not saved): the cursor
// on the first line, `log_id=<id>` on the second (walfeedctl's --cursor-file format).
function loadCursor() {
  const saved = { cursor: '', logId: '' };
  if (!cursorFile || !fs.existsSync(cursorFile)) return saved;
  for (const raw of fs.readFileSync(cursorFile, 'utf8').split('\n')) {
    const line = raw.trim();
    if (line.startsWith('log_id=')) saved.logId = line.slice('log_id='.length);
    else if (line && !saved.cursor) saved.cursor = line;
  }
  return saved;
}

// Keeps the cursor: commits it for a named consumer, or replaces the file's content atomically
// (a crash leaves the old cursor or the new one).
function saveCursor(cursor) {
  if (consumer) {
    return new Promise((resolve, reject) => {
      client.Commit({ consumer, cursor, logId }, metadata.clone(), (error) => (error ? reject(error) : resolve()));
    });
  }
  const tmp = `${cursorFile}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, `${cursor}\n${logId ? `log_id=${logId}\n` : ''}`);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, cursorFile);
}

// A cursor means something only on its own log: the log's id is saved with it and sent back,
// and walfeed refuses the cursor (FAILED_PRECONDITION, LOG_MISMATCH) on any other log.
let { cursor, logId } = loadCursor();
let stopping = false;
let call = null;
let backoff = 500;
let retryTimer = null;
let currentFetch = null;  // the ReadValue call in flight
let gone = { cursor: null, times: 0 };  // value fetches that found the change compacted away

function stop() {
  stopping = true;
  if (call) call.cancel();
  if (currentFetch) currentFetch.cancel();
  if (retryTimer) clearTimeout(retryTimer);
  closeAll();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

function subscribe() {
  // proto-loader names fields in lowerCamelCase: stopAtHead, not stop_at_head.
  // A named consumer resumes where walfeed keeps it: no cursor of its own to send.
  const stream = client.Subscribe({ cursor: consumer ? '' : cursor, logId, consumer,
                                    stopAtHead: args['stop-at-head'] }, metadata.clone());
  call = stream;
  // Responses are handled one after the other, the stream paused meanwhile (fetching a large
  // value takes a while); its end is handled after the last of them ('end' comes once every
  // response was taken, 'status' may come before).
  let work = Promise.resolve();
  let status = null;
  let fetchFailed = null;  // a value fetch's error: the stream is cancelled, its end judged by it
  stream.on('data', (response) => {
    stream.pause();
    work = work.then(async () => {
      // After a failed fetch or a stop, buffered responses (progress ones too) are dropped: their
      // cursors would pass changes never printed.
      if (stopping || fetchFailed) return;
      if (!logId) logId = response.logId;
      for (const change of response.changes) {
        if (stopping || fetchFailed) return;
        try {
          await fetchLargeValues(change);
        } catch (error) {
          fetchFailed = error;
          stream.cancel();
          return;
        }
        process.stdout.write(`${asJson(change)}\n`);
        cursor = change.cursor;
        try {
          await saveCursor(cursor);
        } catch (error) {  // a commit that failed: the stream's end is judged by it
          fetchFailed = error;
          stream.cancel();
          return;
        }
      }
      backoff = 500;
      if (response.changes.length === 0 && response.cursor) {  // a progress message
        cursor = response.cursor;
        try {
          await saveCursor(cursor);
        } catch (error) {
          fetchFailed = error;
          stream.cancel();
          return;
        }
      }
    }).finally(() => stream.resume());
  });
  stream.on('error', () => {});  // every end, failed or not, is handled from 'status' and 'end'
  stream.on('status', (received) => { status = received; });
  stream.on('end', () => { work = work.then(() => ended(fetchFailed || status, fetchFailed !== null)); });
}

// A stream ended with `status`, or a value fetch or a commit failed with it (`fromFetch`).
function ended(status, fromFetch) {
  if (stopping) return;
  if (fromFetch && status.code === grpc.status.NOT_FOUND) {
    // A value fetch: compaction removed the change after it was sent, and a newer change of its
    // row follows. Read on from the last cursor, without it (a few times at most at one cursor:
    // a change that stays, whose value does not, is not mended by retrying).
    gone = gone.cursor === cursor ? { cursor, times: gone.times + 1 } : { cursor, times: 1 };
    if (gone.times > 3) {
      console.error(`consumer: NOT_FOUND: ${status.details} (${gone.times} times at ${cursor})`);
      process.exitCode = 1;
      closeAll();
      return;
    }
    console.error(`consumer: ${status.details}; reading on from ${cursor || 'the start'}`);
    retryTimer = setTimeout(subscribe, 200 * gone.times);
  } else if (status.code === grpc.status.OK) {  // only with --stop-at-head, once the head is reached
    closeAll();
  } else if (status.code === grpc.status.UNAVAILABLE || status.code === grpc.status.CANCELLED) {
    // UNAVAILABLE: walfeed restarts or is unreachable. CANCELLED that we did not ask for (we
    // are not stopping): the call reached walfeed in the instant its gRPC server shut down.
    current = (current + 1) % clients.length;
    client = clients[current];
    console.error(`consumer: server unavailable (${status.details}), ` +
                  `retrying in ${backoff / 1000}s${clients.length > 1 ? ' on the next address' : ''}`);
    retryTimer = setTimeout(subscribe, backoff);
    backoff = Math.min(backoff * 2, 30000);
  } else {
    console.error(`consumer: ${grpc.status[status.code] || 'error'}: ${status.details || status.message}`);
    if (status.code === grpc.status.FAILED_PRECONDITION && cursorFile) {  // LOG_MISMATCH
      console.error(`consumer: the cursor in ${cursorFile} belongs to another log: ` +
                    'remove it and start again from an empty state');
    }
    process.exitCode = 1;
    closeAll();
  }
}
subscribe();
