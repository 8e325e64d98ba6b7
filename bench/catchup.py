#!/usr/bin/python3
"""Catch-up read benchmark: one subscriber from 0 on a log of N changes, through walfeed's real
gRPC server and a C++ client (changes/s delivered), against a raw sequential RocksDB scan of the
same log in the same run (the reference).

Drives build/bin/catchup_bench: it fills a fresh log (appends not fsynced: the fill is set-up),
closes it and lets RocksDB finish its flushes and compactions, so that both reads come from SST
files as after a restart with nothing running in the background. The page cache is not dropped:
the log was just written, so both reads come from memory and the figures are CPU-bound.

  bench/catchup.py [--quick]

Targets: >= 2,000,000 changes/s delivered, and >= 0.7 x the raw scan, for a client that reads
each change's position from the wire format (as the raw scan touches records without parsing
them); a client that parses every response, as most consumers do, is measured beside it.
Writes bench/results/catchup.{json,md} (catchup-quick.* with --quick).
"""
import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import HERE, ROOT, run_in_fresh_dir  # noqa: E402

FULL = 10_000_000
QUICK = 200_000
# Issue 16's targets (round 1's were 1,000,000/s and 0.5 x).
TARGET_RATE = 2_000_000
TARGET_RATIO = 0.7


def measure(binary, changes, row_bytes):
    return run_in_fresh_dir(binary, "walfeed-catchup-", ["--changes", changes, "--row-bytes", row_bytes])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--changes", type=int, help="log size (default: 10,000,000; 200,000 with --quick)")
    parser.add_argument("--row-bytes", type=int, default=200)
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "bin", "catchup_bench"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    changes = args.changes or (QUICK if args.quick else FULL)
    # Other work on the machine shows in the figures; the load before the run says how busy it was.
    load_before = round(os.getloadavg()[0], 2)
    row = measure(args.binary, changes, args.row_bytes)
    print(json.dumps(row), flush=True)
    rate_met = row["feed_changes_per_second"] >= TARGET_RATE
    ratio_met = row["ratio"] >= TARGET_RATIO
    report = {
        "benchmark": "catchup",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "kernel": platform.release(),
                    "load_average_1min_before": load_before},
        "method": f"{changes:,} row changes (~{args.row_bytes}-byte rows, transactions of 100, every "
                  "change a distinct key) appended to a fresh log without fsync; the log closed and "
                  "its flushes and compactions let finish, so reads come from SST files as after a "
                  "restart (page cache not dropped: the just-written log is read from memory). "
                  "walfeed: its gRPC server in-process on 127.0.0.1 with default options, one "
                  "C++ client subscribed from LSN 0 with stop_at_head and the largest batch the "
                  "server allows, checking order and count, timed from the call to the stream's OK "
                  "end: first one that reads each message as bytes and each change's position from "
                  "the wire format (the feed figure: the raw scan does not parse either), then one "
                  "that parses every response into the generated classes. Reference: the best sequential "
                  "scan RocksDB does of the log's changes column family (read-only, the log's table "
                  "options), once through the block cache and once streaming (no cache fill, 2 MiB "
                  "readahead), each before and after the feed, the fastest of the four counting. "
                  "Server CPU is the process's CPU less the client thread's",
        "quick": args.quick,
        "targets": {"feed_changes_per_second": TARGET_RATE, "ratio": TARGET_RATIO},
        "targets_met": {"feed_changes_per_second": rate_met, "ratio": ratio_met},
        "result": row,
    }
    os.makedirs(args.out, exist_ok=True)
    name = "catchup-quick" if args.quick else "catchup"
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(report, f, indent=2)

    def met(ok):
        return "met" if ok else "missed"

    table = "\n".join([
        "| log | walfeed (gRPC, C++ client reading positions) | the same, client parsing every change | "
        "raw RocksDB scan | ratio | targets |",
        "|---|---|---|---|---|---|",
        f"| {row['changes']:,} changes, {row['log_bytes'] / 2**30:.2f} GiB | "
        f"{row['feed_changes_per_second']:,} changes/s ({row['feed_seconds']:.2f} s) | "
        f"{row['parsing_feed_changes_per_second']:,} changes/s ({row['parsing_feed_seconds']:.2f} s) | "
        f"{row['raw_scan_changes_per_second']:,} changes/s ({row['raw_scan_seconds']:.2f} s) | "
        f"{row['ratio']:.2f} | >= {TARGET_RATE:,}/s: {met(rate_met)}; "
        f">= {TARGET_RATIO} x raw: {met(ratio_met)} |",
    ])
    cpu = (f"During the feed walfeed's server used {row['feed_server_cpu_seconds']:.2f} s of CPU and "
           f"the client thread {row['feed_client_cpu_seconds']:.2f} s, in {row['feed_seconds']:.2f} s; "
           f"{row['feed_messages']:,} messages. With the parsing client: server "
           f"{row['parsing_feed_server_cpu_seconds']:.2f} s, client {row['parsing_feed_client_cpu_seconds']:.2f} s, "
           f"in {row['parsing_feed_seconds']:.2f} s. The fastest reference scan was the "
           f"{row['raw_scan_kind']} one (cached: {row['raw_scan_cached_seconds']} s, streaming: "
           f"{row['raw_scan_streaming_seconds']} s, before and after the feed).")
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(f"# Catch-up read ({report['date']}, {report['machine']['cores']} cores, "
                f"{report['machine']['memory_gib']} GiB)\n\n{report['method']}.\n\n{table}\n\n{cpu}\n")
    print(table)


if __name__ == "__main__":
    sys.exit(main())
