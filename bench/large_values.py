#!/usr/bin/python3
"""Large-value memory benchmark: walfeed's memory around one very large row (a 100 MiB bytea by
default): its peak RSS while it ingests the row, its RSS while many subscribers sit stalled at
that row (half of them filtering it out), and how fast one client reads the value back.

  bench/large_values.py [--mib N] [--readers N] [--quick] [--walfeed PATH]

Values over 256 KiB travel out of line (DESIGN.md: a stream message stays far below 4 MiB): a
subscriber's batch holds a reference, and ReadValue streams the value in 256 KiB chunks. Writes
bench/results/large_values.{json,md} (large_values-quick with --quick).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, ROOT, Postgres, free_port, machine, peak_rss_mib,  # noqa: E402
                      wait_for_confirmed, write_results)


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stubs():
    """The Python gRPC stubs the example consumer generates (examples/python/generate.sh)."""
    subprocess.run(["bash", os.path.join(ROOT, "examples", "python", "generate.sh")], check=True,
                   capture_output=True)
    sys.path.insert(0, os.path.join(ROOT, "examples", "python", "gen"))
    import grpc
    from walfeed.v1 import walfeed_pb2, walfeed_pb2_grpc
    return grpc, walfeed_pb2, walfeed_pb2_grpc


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=100, help="size of the bytea value")
    parser.add_argument("--readers", type=int, default=20, help="stalled subscribers")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--walfeed", default=os.path.join(ROOT, "build", "bin", "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--allow-read-failure", action="store_true",
                        help="record a failed read instead of failing (to measure an old walfeed)")
    parser.add_argument("--name", default="large_values", help="results file name")
    args = parser.parse_args()
    if args.quick:
        args.mib, args.readers = 8, 4
    grpc, pb, pb_grpc = stubs()
    root = tempfile.mkdtemp(prefix="walfeed-bench-")
    os.chmod(root, 0o755)
    pg = Postgres(root)
    proc = None
    calls = []
    try:
        pg.sql("CREATE TABLE blobs (id int PRIMARY KEY, b bytea)")
        pg.sql("CREATE TABLE other (id int PRIMARY KEY)")
        pg.sql("CREATE PUBLICATION walfeed FOR ALL TABLES")
        address = f"127.0.0.1:{free_port()}"
        log = open(os.path.join(root, "walfeed.log"), "w")
        proc = subprocess.Popen([args.walfeed, "--pg", pg.conninfo, "--data-dir",
                                 os.path.join(root, "data"), "--listen", address],
                                stdout=log, stderr=subprocess.STDOUT)
        stub = pb_grpc.ChangeFeedStub(grpc.insecure_channel(address))
        deadline = time.monotonic() + 60
        while True:
            try:
                if stub.GetFeedInfo(pb.GetFeedInfoRequest(), timeout=1).source_state == "streaming":
                    break
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"walfeed did not start; see {log.name}")
            time.sleep(0.1)
        idle_rss = rss_mib(proc.pid)
        # md5 digests, 16 bytes each: a value that does not compress.
        digests = args.mib * 65536
        started = time.monotonic()
        pg.sql("INSERT INTO blobs SELECT 1, decode(string_agg(md5(g::text), ''), 'hex') "
               f"FROM generate_series(1, {digests}) g")
        end_lsn = pg.sql("SELECT pg_current_wal_lsn()")
        if not wait_for_confirmed(pg, "walfeed", end_lsn, 1800, proc):
            raise RuntimeError(f"walfeed did not ingest the row; see {log.name}")
        ingest_seconds = time.monotonic() - started
        ingest_peak = peak_rss_mib(proc.pid)
        after_ingest = rss_mib(proc.pid)

        # Subscribers that never read: half take every change, half filter the row out.
        for i in range(args.readers):
            tables = ["public.other"] if i % 2 else []
            calls.append(stub.Subscribe(pb.SubscribeRequest(from_lsn=0, tables=tables)))
        time.sleep(3)
        info = stub.GetFeedInfo(pb.GetFeedInfoRequest(), timeout=10)
        stalled_rss = rss_mib(proc.pid)
        for call in calls:
            call.cancel()
        calls.clear()
        time.sleep(2)
        after_readers = rss_mib(proc.pid)

        # One default client reads the row and then its value, in chunks.
        started = time.monotonic()
        read_error = None
        try:
            change = next(c for r in stub.Subscribe(pb.SubscribeRequest(from_lsn=0, stop_at_head=True))
                          for c in r.changes if c.table == "blobs")
            column = next(c for c in change.after if c.name == "b")
            value = b"".join(chunk.data for chunk in
                             stub.ReadValue(pb.ReadValueRequest(ref=column.large.ref)))
            if len(value) != args.mib << 20:
                raise RuntimeError(f"read {len(value)} bytes, expected {args.mib << 20}")
        except grpc.RpcError as error:  # a walfeed from before values travelled out of line
            read_error = f"{error.code().name}: {error.details()}"[:200]
            if not args.allow_read_failure:
                raise
        read_seconds = time.monotonic() - started
        read_peak = peak_rss_mib(proc.pid)
        result = {"value_mib": args.mib, "stalled_readers": args.readers,
                  "subscribers_seen": info.subscribers,
                  "idle_rss_mib": round(idle_rss), "ingest_seconds": round(ingest_seconds, 2),
                  "ingest_peak_rss_mib": round(ingest_peak), "after_ingest_rss_mib": round(after_ingest),
                  "stalled_readers_rss_mib": round(stalled_rss),
                  "after_readers_rss_mib": round(after_readers),
                  "read_error": read_error,
                  "read_value_seconds": None if read_error else round(read_seconds, 2),
                  "read_value_mib_per_s": None if read_error else round(args.mib / read_seconds, 1),
                  "peak_rss_after_read_mib": round(read_peak)}
        print(result, flush=True)
    finally:
        for call in calls:
            call.cancel()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    report = {"benchmark": "large_values", "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "quick": args.quick,
              "method": f"walfeed streaming; one INSERT of a {args.mib} MiB bytea (md5 digests, "
                        f"incompressible); RSS is VmRSS, peaks are VmHWM; {args.readers} "
                        "subscribers from 0 that never read (every other one filtering the row "
                        "out) held for 3 s; then one Python client reads the row and fetches the "
                        "value with ReadValue", "result": result}
    lines = ["| value | idle RSS | ingest peak RSS | RSS with stalled subscribers | after they leave | "
             "ReadValue of the whole value | peak RSS after it |", "|---|---|---|---|---|---|---|",
             f"| {args.mib} MiB bytea | {result['idle_rss_mib']} MiB | "
             f"{result['ingest_peak_rss_mib']} MiB ({result['ingest_seconds']} s) | "
             f"{result['stalled_readers_rss_mib']} MiB ({args.readers} streams) | "
             f"{result['after_readers_rss_mib']} MiB | "
             + (f"fails: {read_error}" if read_error else
                f"{result['read_value_seconds']} s ({result['read_value_mib_per_s']} MiB/s)")
             + f" | {result['peak_rss_after_read_mib']} MiB |"]
    write_results(args.out, f"{args.name}-quick" if args.quick else args.name, report,
                  "Large values", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
