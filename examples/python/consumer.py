#!/usr/bin/env python3
"""A walfeed consumer: prints each change as one JSON line and saves its cursor after it.

  consumer.py --server HOST:PORT --cursor-file FILE [--stop-at-head]

Resumes right after the cursor saved in FILE (from the oldest change when FILE does not exist),
reconnects with backoff when the server is unavailable, stops cleanly on SIGINT/SIGTERM, and sends
`authorization: Bearer $WALFEED_TOKEN` when that variable is set. Needs Debian's python3-grpcio and
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
    if kind == "timestamp":
        return v.ToDatetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v  # float, bool, text, numeric, json, date, uuid


def as_json(change):
    """One output line: the operation, the table, the key, the cursor and the new row."""
    row = lambda columns: {c.name: value(c) for c in columns}
    return json.dumps({"op": walfeed_pb2.Change.Op.Name(change.op),
                       "table": f"{change.schema}.{change.table}", "key": row(change.key),
                       "cursor": change.cursor,
                       "after": row(change.after) if change.after else None},
                      separators=(",", ":"))


def save_cursor(path, cursor):
    """Replaces the file's content atomically: a crash leaves the old cursor or the new one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(cursor + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="walfeed's gRPC address, HOST:PORT")
    parser.add_argument("--cursor-file", required=True, help="keeps the last processed cursor")
    parser.add_argument("--stop-at-head", action="store_true", help="exit at the feed's head")
    args = parser.parse_args()

    cursor = ""
    if os.path.exists(args.cursor_file):
        with open(args.cursor_file) as f:
            cursor = f.read().strip()
    token = os.environ.get("WALFEED_TOKEN")
    metadata = [("authorization", "Bearer " + token)] if token else None

    # The handler only sets a flag and cancels the open call: taking a lock (threading.Event)
    # inside a signal handler can deadlock with the main thread holding it.
    stop = types.SimpleNamespace(requested=False, call=None)

    def on_signal(signum, frame):
        stop.requested = True
        if stop.call is not None:
            stop.call.cancel()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    stub = walfeed_pb2_grpc.ChangeFeedStub(grpc.insecure_channel(args.server))
    backoff = 0.5
    while not stop.requested:
        request = walfeed_pb2.SubscribeRequest(cursor=cursor, stop_at_head=args.stop_at_head)
        try:
            stop.call = stub.Subscribe(request, metadata=metadata)
            if stop.requested:  # a signal that came before the call was set
                stop.call.cancel()
            for response in stop.call:
                backoff = 0.5
                for change in response.changes:
                    print(as_json(change), flush=True)
                    cursor = change.cursor
                    save_cursor(args.cursor_file, cursor)
                    if stop.requested:
                        break
                if not response.changes and response.cursor:  # progress: nothing up to it is left
                    cursor = response.cursor
                    save_cursor(args.cursor_file, cursor)
                if stop.requested:
                    break
            if args.stop_at_head and not stop.requested:
                return 0
        except grpc.RpcError as error:
            if stop.requested:
                break
            # UNAVAILABLE: walfeed restarts or is unreachable. CANCELLED that we did not ask for:
            # the call reached walfeed in the instant its gRPC server shut down. Both: retry.
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                print(f"consumer: {error.code().name}: {error.details()}", file=sys.stderr)
                return 1
            print(f"consumer: server unavailable ({error.details()}), retrying in {backoff:g}s",
                  file=sys.stderr)
            deadline = time.monotonic() + backoff
            while not stop.requested and time.monotonic() < deadline:
                time.sleep(0.1)  # short sleeps: a signal may land on a gRPC thread, not this one
            backoff = min(backoff * 2, 30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
