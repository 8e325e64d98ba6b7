#!/usr/bin/env python3
"""A walfeed consumer: prints each change as one JSON line and saves its cursor after it.

  consumer.py --server HOST:PORT[,HOST:PORT...] (--cursor-file FILE | --consumer NAME)
              [--stop-at-head]

Resumes right after the cursor saved in FILE (from the oldest change when FILE does not exist),
or, with --consumer, after the cursor walfeed keeps for NAME (each change printed is committed
to walfeed with ChangeFeed.Commit: nothing is kept locally);
reconnects with backoff when the server is unavailable, stops cleanly on SIGINT/SIGTERM, and sends
`authorization: Bearer $WALFEED_TOKEN` when that variable is set. Values walfeed sends out of line
(over 256 KiB) are fetched with ReadValue and printed whole. Needs Debian's python3-grpcio and
python3-protobuf; the stubs are generated into gen/ by generate.sh on first run.
"""
import argparse, base64, json, math, os, signal, subprocess, sys, time, types

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto", "walfeed", "v1", "walfeed.proto")
STUB = os.path.join(HERE, "gen", "walfeed", "v1", "walfeed_pb2.py")
if not os.path.exists(STUB) or os.path.getmtime(STUB) < os.path.getmtime(PROTO):
    subprocess.run(["bash", os.path.join(HERE, "generate.sh")], check=True)
sys.path.insert(0, os.path.join(HERE, "gen"))
import grpc  # noqa: E402
from walfeed.v1 import walfeed_pb2, walfeed_pb2_grpc  # noqa: E402


def value(column):
    """A column's value as JSON: int64 as a string (exact), bytes as base64, SQL NULL as null."""
    kind = column.WhichOneof("value")
    v = getattr(column, kind) if kind else None
    if kind in (None, "null"):
        return None
    if kind == "unchanged_toast":
        return {"unchangedToast": True}
    if kind == "int":
        return str(v)
    if kind == "float" and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if kind == "bytes":
        return base64.b64encode(v).decode()
    if kind == "raw_text":  # text that is not UTF-8 (a SQL_ASCII database): its bytes, base64
        return {"rawText": base64.b64encode(v).decode(), "encoding": column.raw_text_encoding}
    if kind == "timestamp":
        return v.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v  # float, bool, text, numeric, json, date, uuid


def as_json(change):
    """One output line: the operation, the table, the key, the cursor and the new row (and a
    message's prefix and content, base64)."""
    row = lambda columns: {c.name: value(c) for c in columns}
    line = {"op": walfeed_pb2.Change.Op.Name(change.op), "table": f"{change.schema}.{change.table}",
            "key": row(change.key), "cursor": change.cursor,
            "after": row(change.after) if change.after else None}
    if change.backfill:
        line["backfill"] = change.backfill  # a READ a backfill (Admin.Backfill) appended
    if change.op == walfeed_pb2.Change.MESSAGE:
        line["message"] = {"prefix": change.message.prefix,
                           "content": base64.b64encode(change.message.content).decode()}
    return json.dumps(line, separators=(",", ":"))


class ValueGone(Exception):
    """Compaction removed a change after it was sent, before its value was fetched."""


def read_value(stub, large, metadata, stop):
    """A value sent out of line (a LargeValue reference), read whole in chunks; the call is
    `stop.fetch` meanwhile, for the signal handler to cancel."""
    try:
        stop.fetch = stub.ReadValue(walfeed_pb2.ReadValueRequest(ref=large.ref), metadata=metadata)
        data = b"".join(chunk.data for chunk in stop.fetch)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            raise ValueGone(error.details())
        raise
    if len(data) != large.size:
        raise RuntimeError(f"the value at {large.ref} arrived with {len(data)} bytes, expected {large.size}")
    return data


def fetch_large_values(stub, change, metadata, stop):
    """Puts every value the change carries out of line back into the field it came from."""
    fields = {walfeed_pb2.LargeValue.TEXT: "text", walfeed_pb2.LargeValue.NUMERIC: "numeric",
              walfeed_pb2.LargeValue.JSON: "json", walfeed_pb2.LargeValue.BYTES: "bytes",
              walfeed_pb2.LargeValue.RAW_TEXT: "raw_text"}
    for column in list(change.key) + list(change.before) + list(change.after):
        if column.WhichOneof("value") == "large":
            data, field = read_value(stub, column.large, metadata, stop), fields.get(column.large.kind, "bytes")
            setattr(column, field, data if field in ("bytes", "raw_text") else data.decode("utf-8"))
    if change.message.HasField("large_content"):
        content = read_value(stub, change.message.large_content, metadata, stop)
        change.message.ClearField("large_content")
        change.message.content = content


def load_cursor(path):
    """The saved cursor and the id of the log it belongs to ("" for what is not saved)."""
    cursor, log_id = "", ""
    if os.path.exists(path):
        with open(path) as f:
            for line in f.read().split("\n"):
                line = line.strip()
                if line.startswith("log_id="):
                    log_id = line[len("log_id="):]
                elif line and not cursor:
                    cursor = line
    return cursor, log_id


def save_cursor(path, cursor, log_id):
    """Replaces the file's content atomically: a crash leaves the old cursor or the new one.
    The log's id goes beside the cursor (the same format as walfeedctl's --cursor-file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(cursor + "\n" + (f"log_id={log_id}\n" if log_id else ""))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True,
                        help="walfeed's gRPC address, HOST:PORT; several, comma-separated (a walfeed "
                             "and its replicas): after a connection error the next one is tried")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--cursor-file", help="keeps the last processed cursor")
    where.add_argument("--consumer", help="a named consumer whose cursor walfeed keeps")
    parser.add_argument("--stop-at-head", action="store_true", help="exit at the feed's head")
    args = parser.parse_args()

    # A cursor means something only on its own log: the log's id is saved with it and sent back,
    # and walfeed refuses the cursor (FAILED_PRECONDITION, LOG_MISMATCH) on any other log.
    cursor, log_id = load_cursor(args.cursor_file) if args.cursor_file else ("", "")
    token = os.environ.get("WALFEED_TOKEN")
    metadata = [("authorization", "Bearer " + token)] if token else None

    # The handler only sets a flag and cancels the open call: taking a lock (threading.Event)
    # inside a signal handler can deadlock with the main thread holding it.
    stop = types.SimpleNamespace(requested=False, call=None, fetch=None)

    def on_signal(signum, frame):
        stop.requested = True
        for call in (stop.call, stop.fetch):
            if call is not None:
                call.cancel()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    # One stub per address of the group; after a connection error the next one serves (a
    # replica has the same cursors and log id).
    stubs = [walfeed_pb2_grpc.ChangeFeedStub(grpc.insecure_channel(address.strip()))
             for address in args.server.split(",") if address.strip()]
    current = 0
    stub = stubs[current]

    def save(cursor, log_id):
        if args.consumer:
            stub.Commit(walfeed_pb2.CommitRequest(consumer=args.consumer, cursor=cursor, log_id=log_id),
                        metadata=metadata)
        else:
            save_cursor(args.cursor_file, cursor, log_id)
    backoff = 0.5
    gone_at = (None, 0)  # value fetches that found their change compacted away, at one cursor
    while not stop.requested:
        # A named consumer resumes where walfeed keeps it: no cursor of its own to send.
        request = walfeed_pb2.SubscribeRequest(cursor="" if args.consumer else cursor, log_id=log_id,
                                               consumer=args.consumer or "",
                                               stop_at_head=args.stop_at_head)
        try:
            stop.call = stub.Subscribe(request, metadata=metadata)
            if stop.requested:  # a signal that came before the call was set
                stop.call.cancel()
            for response in stop.call:
                backoff = 0.5
                log_id = log_id or response.log_id
                for change in response.changes:
                    fetch_large_values(stub, change, metadata, stop)
                    print(as_json(change), flush=True)
                    cursor = change.cursor
                    save(cursor, log_id)
                    if stop.requested:
                        break
                if not response.changes and response.cursor:  # progress: nothing up to it is left
                    cursor = response.cursor
                    save(cursor, log_id)
                if stop.requested:
                    break
            if args.stop_at_head and not stop.requested:
                return 0
        except ValueGone as gone:
            # A newer change of the row follows: read on from the last cursor, without it (a few
            # times at most at one cursor: a change that stays, whose value does not, is not
            # mended by retrying).
            stop.call.cancel()
            gone_at = (cursor, gone_at[1] + 1 if gone_at[0] == cursor else 1)
            if gone_at[1] > 3:
                print(f"consumer: NOT_FOUND: {gone} ({gone_at[1]} times at {cursor})", file=sys.stderr)
                return 1
            print(f"consumer: {gone}; reading on from {cursor or 'the start'}", file=sys.stderr)
            time.sleep(0.2 * gone_at[1])
        except grpc.RpcError as error:
            stop.call.cancel()  # when a value fetch failed, the stream is still open
            if stop.requested:
                break
            # UNAVAILABLE: walfeed restarts or is unreachable. CANCELLED that we did not ask for:
            # the call reached walfeed in the instant its gRPC server shut down. Both: retry.
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                print(f"consumer: {error.code().name}: {error.details()}", file=sys.stderr)
                if error.code() == grpc.StatusCode.FAILED_PRECONDITION:  # LOG_MISMATCH
                    print(f"consumer: the cursor in {args.cursor_file} belongs to another log: "
                          "remove it and start again from an empty state", file=sys.stderr)
                return 1
            current = (current + 1) % len(stubs)
            stub = stubs[current]
            print(f"consumer: server unavailable ({error.details()}), retrying in {backoff:g}s"
                  + (" on the next address" if len(stubs) > 1 else ""), file=sys.stderr)
            deadline = time.monotonic() + backoff
            while not stop.requested and time.monotonic() < deadline:
                time.sleep(0.1)  # short sleeps: a signal may land on a gRPC thread, not this one
            backoff = min(backoff * 2, 30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
