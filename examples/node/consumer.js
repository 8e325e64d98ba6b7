#!/usr/bin/env node
// A walfeed consumer: prints each change as one JSON line and saves its cursor after it.
//
//   node consumer.js --server HOST:PORT --cursor-file FILE [--stop-at-head]
//
// Resumes right after the cursor saved in FILE (from the oldest change when FILE does not exist),
// reconnects with backoff when the server is unavailable, stops cleanly on SIGINT/SIGTERM, and
// sends `authorization: Bearer $WALFEED_TOKEN` when that variable is set. The .proto is loaded at
// run time from the repository's proto/ (run `npm install` here first).
'use strict';
const fs = require('fs');
const path = require('path');
const { parseArgs } = require('util');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

function usage(problem) {
  console.error(`${problem}\nusage: consumer.js --server HOST:PORT --cursor-file FILE [--stop-at-head]`);
  process.exit(2);
}
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      server: { type: 'string' },
      'cursor-file': { type: 'string' },
      'stop-at-head': { type: 'boolean', default: false },
    },
  }));
} catch (error) {
  usage(error.message);
}
if (!args.server || !args['cursor-file']) usage('--server and --cursor-file are required');
const cursorFile = args['cursor-file'];

const protoDir = path.join(__dirname, '..', '..', 'proto');
const definition = protoLoader.loadSync(path.join(protoDir, 'walfeed/v1/walfeed.proto'), {
  includeDirs: [protoDir], longs: String, enums: String, oneofs: true, defaults: true,
});
const { ChangeFeed } = grpc.loadPackageDefinition(definition).walfeed.v1;
const client = new ChangeFeed(args.server, grpc.credentials.createInsecure());
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
    case 'timestamp': {
      const micros = String(Math.floor(v.nanos / 1000)).padStart(6, '0');
      return `${new Date(Number(v.seconds) * 1000).toISOString().slice(0, 19)}.${micros}Z`;
    }
    default: return v;  // int (a string already), bool, text, numeric, json, date, uuid
  }
}
const row = (columns) => Object.fromEntries(columns.map((c) => [c.name, value(c)]));

// Replaces the file's content atomically: a crash leaves the old cursor or the new one.
function saveCursor(cursor) {
  const tmp = `${cursorFile}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  fs.writeSync(fd, `${cursor}\n`);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, cursorFile);
}

let cursor = fs.existsSync(cursorFile) ? fs.readFileSync(cursorFile, 'utf8').trim() : '';
let stopping = false;
let call = null;
let backoff = 500;
let retryTimer = null;

function stop() {
  stopping = true;
  if (call) call.cancel();
  if (retryTimer) clearTimeout(retryTimer);
  client.close();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

function subscribe() {
  // proto-loader names fields in lowerCamelCase: stopAtHead, not stop_at_head.
  call = client.Subscribe({ cursor, stopAtHead: args['stop-at-head'] }, metadata.clone());
  call.on('data', (response) => {
    if (stopping) return;
    backoff = 500;
    for (const change of response.changes) {
      const line = {
        op: change.op, table: `${change.schema}.${change.table}`, key: row(change.key),
        cursor: change.cursor, after: change.after.length ? row(change.after) : null,
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      cursor = change.cursor;
      saveCursor(cursor);
    }
    if (response.changes.length === 0 && response.cursor) {  // a progress message
      cursor = response.cursor;
      saveCursor(cursor);
    }
  });
  call.on('error', () => {});  // every end, failed or not, is handled from its 'status'
  call.on('status', (status) => {
    if (stopping) return;
    if (status.code === grpc.status.OK) {  // only with --stop-at-head, once the head is reached
      client.close();
    } else if (status.code === grpc.status.UNAVAILABLE || status.code === grpc.status.CANCELLED) {
      // UNAVAILABLE: walfeed restarts or is unreachable. CANCELLED that we did not ask for (we
      // are not stopping): the call reached walfeed in the instant its gRPC server shut down.
      console.error(`consumer: server unavailable (${status.details}), ` +
                    `retrying in ${backoff / 1000}s`);
      retryTimer = setTimeout(subscribe, backoff);
      backoff = Math.min(backoff * 2, 30000);
    } else {
      console.error(`consumer: ${grpc.status[status.code]}: ${status.details}`);
      process.exitCode = 1;
      client.close();
    }
  });
}
subscribe();
