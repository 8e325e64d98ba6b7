#!/usr/bin/python3
"""Large-transaction memory benchmark: walfeed's peak RSS while it ingests one transaction of
many rows, with the default --max-transaction-memory (the transaction is staged in parts), for
each of the given row counts (memory must not grow with the transaction), and for the first
count also with a budget larger than the transaction (held whole, as before staging existed).

  bench/large_transaction.py [--rows N[,N...]] [--quick]

Writes bench/results/large_transaction.{json,md}.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, ROOT, Postgres, free_port, machine, peak_rss_mib,  # noqa: E402
                      wait_for_confirmed, write_results)

import subprocess  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402


def ingest(pg, slot, end_lsn, root, walfeed, budget):
    data = os.path.join(root, f"{slot}.data")
    log = open(os.path.join(root, f"{slot}.log"), "w")
    start = time.monotonic()
    proc = subprocess.Popen([walfeed, "--pg", pg.conninfo, "--slot", slot, "--data-dir", data,
                             "--listen", f"127.0.0.1:{free_port()}", "--max-transaction-memory",
                             budget, "--snapshot", "never"], stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for_confirmed(pg, slot, end_lsn, 1800, proc):
            raise RuntimeError(f"walfeed did not reach {end_lsn}; see {log.name}")
        return time.monotonic() - start, peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="1000000,5000000")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--walfeed", default=os.path.join(ROOT, "build", "bin", "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if args.quick:
        args.rows = "50000"
    root = tempfile.mkdtemp(prefix="walfeed-bench-")
    os.chmod(root, 0o755)
    pg = Postgres(root)
    results = []
    try:
        pg.sql("CREATE TABLE big (id bigint PRIMARY KEY, payload text)")
        pg.sql("CREATE PUBLICATION walfeed FOR ALL TABLES")
        for n, rows in enumerate(int(r) for r in args.rows.split(",")):
            budgets = [("16MiB", "staged in parts (default)")]
            if n == 0:
                budgets.append(("64GiB", "held whole"))
            pg.sql("TRUNCATE big")
            for i, _ in enumerate(budgets):
                pg.sql(f"SELECT pg_create_logical_replication_slot('big_{n}_{i}', 'pgoutput')")
            pg.sql(f"INSERT INTO big SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, {rows}) g")
            end_lsn = pg.sql("SELECT pg_current_wal_lsn()")
            for i, (budget, label) in enumerate(budgets):
                seconds, rss = ingest(pg, f"big_{n}_{i}", end_lsn, root, args.walfeed, budget)
                print(f"budget={budget} rows={rows} seconds={seconds:.2f} peak_rss_mib={rss:.0f}",
                      flush=True)
                results.append({"max_transaction_memory": budget, "mode": label, "rows": rows,
                                "seconds": round(seconds, 2), "peak_rss_mib": round(rss)})
                pg.sql(f"SELECT pg_drop_replication_slot('big_{n}_{i}')")
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    report = {"benchmark": "large_transaction", "date": time.strftime("%Y-%m-%d"),
              "machine": machine(), "quick": args.quick,
              "method": "one INSERT of N rows of ~200 bytes committed first; walfeed then started on "
                        "its own slot and timed until the slot confirms the final LSN; peak RSS "
                        "is VmHWM", "results": results}
    lines = ["| --max-transaction-memory | mode | rows in one transaction | seconds | walfeed peak RSS |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['max_transaction_memory']} | {r['mode']} | {r['rows']:,} | "
                     f"{r['seconds']} | {r['peak_rss_mib']} MiB |")
    write_results(args.out, "large_transaction-quick" if args.quick else "large_transaction", report,
                  "Large transaction", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
