#!/usr/bin/python3
"""Compaction benchmark: the change log's size before and after compaction of N updates over K
keys, against the size of a log that holds only the K live rows (the reference, built and
compacted the same way in the same run), and how fast a pass goes.

Drives the log directly (build/bin/compaction_bench): the question is what compaction leaves on
disk and what a pass costs, without PostgreSQL's ingest in the way.

  bench/compaction.py [--quick]

Writes bench/results/compaction.{json,md} (compaction-quick.* with --quick).
"""
import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import HERE, ROOT, run_in_fresh_dir  # noqa: E402

FULL = [(1_000_000, 10_000), (1_000_000, 100_000)]
QUICK = [(50_000, 1_000)]


def measure(binary, updates, keys):
    return run_in_fresh_dir(binary, "walfeed-compaction-", ["--updates", updates, "--keys", keys])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--binary", default=os.path.join(ROOT, "build", "bin", "compaction_bench"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    results = []
    for updates, keys in (QUICK if args.quick else FULL):
        row = measure(args.binary, updates, keys)
        row["size_ratio"] = round(row["dir_bytes_after"] / row["live_rows_dir_bytes"], 3)
        results.append(row)
        print(json.dumps(row), flush=True)
    report = {
        "benchmark": "compaction",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "kernel": platform.release()},
        "method": "N row changes (~200-byte rows, transactions of 100) round-robin over K primary "
                  "keys appended to a fresh log, then one compaction pass with no lag; sizes are "
                  "the data directory after closing and reopening the log; the reference is a log "
                  "holding only the K newest rows, compacted the same way",
        "quick": args.quick,
        "results": results,
    }
    os.makedirs(args.out, exist_ok=True)
    name = "compaction-quick" if args.quick else "compaction"
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = ["| updates | keys | log before | log after | K live rows alone | after / live rows | "
             "pass time | changes/s |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['updates']:,} | {r['keys']:,} | {r['dir_bytes_before'] / 2**20:.1f} MiB | "
                     f"{r['dir_bytes_after'] / 2**20:.2f} MiB | {r['live_rows_dir_bytes'] / 2**20:.2f} MiB | "
                     f"{r['size_ratio']} | {r['compaction_seconds']:.1f} s | "
                     f"{int(r['changes_per_second']):,} |")
    table = "\n".join(lines)
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(f"# Compaction ({report['date']}, {report['machine']['cores']} cores, "
                f"{report['machine']['memory_gib']} GiB)\n\n{report['method']}.\n\n{table}\n")
    print(table)


if __name__ == "__main__":
    sys.exit(main())
