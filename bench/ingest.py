#!/usr/bin/python3
"""Ingest benchmark: how fast walfeed turns committed WAL into its durable log, next to
pg_recvlogical (PostgreSQL's own decode-and-send limit) measured in the same run.

A private PostgreSQL is started, replication slots are created for every consumer run, then a
workload of mixed INSERT/UPDATE/DELETE in transactions of a given size is committed with no
consumer running. Each consumer is then started on its own slot and timed the same way: from its
process start until its slot's confirmed_flush_lsn reaches the final LSN, polled every 20 ms
through one kept-open psql session (the same for both): pg_recvlogical (pgoutput, writing to a
file, --endpos) and walfeed (durable appends, acknowledged to PostgreSQL). The two take turns
going first (the first reads the WAL from disk, the second may find it in the page cache), and
the best run of each counts. walfeed's stored change count must equal what PostgreSQL decoded
(a test_decoding slot over the same workload), or the run fails. Results go to
bench/results/ingest.{json,md}.

  bench/ingest.py [--changes N] [--txn-sizes 1,10,1000] [--runs R] [--quick]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (HERE, PG_BIN, PG_BIN_DIR, ROOT, Postgres, cpu_seconds, du, free_port,  # noqa: E402
                      machine, run, wait_for_confirmed, write_results)

PG_RECVLOGICAL = f"{PG_BIN_DIR}/pg_recvlogical"


def ratio_target(txn_size):
    """walfeed / pg_recvlogical that ingest of this transaction size must reach (issue 16)."""
    return 1.5 if txn_size == 1 else 0.95


# The payload column of the bench table, 192 characters: six md5s of the row's number within its
# transaction (the same few values again and again, like a status column), or of random numbers
# (hex noise, which no compressor shrinks below about half).
PAYLOADS = {
    "repeated": "repeat(md5(g::text), 6)",
    "random": " || ".join(["md5(random()::text)"] * 6),
}

LOAD_PROCEDURE_TEMPLATE = """
CREATE OR REPLACE PROCEDURE bench_load(transactions int, rows_per_txn int) LANGUAGE plpgsql AS $$
DECLARE
  base bigint;
BEGIN
  FOR i IN 0 .. transactions - 1 LOOP
    base := i::bigint * rows_per_txn;
    -- 60% inserts, 30% updates of the previous transaction's rows, 10% deletes of older rows.
    INSERT INTO bench SELECT base + g, PAYLOAD_SQL, g
      FROM generate_series(1, greatest(1, rows_per_txn * 6 / 10)) g;
    UPDATE bench SET n = n + 1 WHERE id >= base - rows_per_txn AND id < base - rows_per_txn + rows_per_txn * 3 / 10;
    DELETE FROM bench WHERE id >= base - 2 * rows_per_txn AND id < base - 2 * rows_per_txn + rows_per_txn / 10;
    COMMIT;
  END LOOP;
END $$;
"""


def load_procedure(payload="repeated"):
    """The bench_load procedure, its rows' payloads of the kind `payload` (see PAYLOADS)."""
    return LOAD_PROCEDURE_TEMPLATE.replace("PAYLOAD_SQL", PAYLOADS[payload])


LOAD_PROCEDURE = load_procedure()


def time_pg_recvlogical(pg, slot, end_lsn, out_dir):
    """Seconds from pg_recvlogical's start until its slot confirms end_lsn; its output's bytes."""
    out = os.path.join(out_dir, f"{slot}.out")
    start = time.monotonic()
    proc = subprocess.Popen([PG_RECVLOGICAL, "-d", pg.conninfo, "--slot", slot, "--start", "-E", end_lsn,
                             "-o", "proto_version=1", "-o", "publication_names=walfeed", "-f", out,
                             "--no-loop"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    confirmed = wait_for_confirmed(pg, slot, end_lsn, 1800, proc)
    elapsed = time.monotonic() - start
    _, errors = proc.communicate(timeout=60)
    if not confirmed or proc.returncode != 0:
        raise RuntimeError(f"pg_recvlogical did not confirm {end_lsn} (exit {proc.returncode}): {errors}")
    return elapsed, os.path.getsize(out)


def decoded_changes(pg, slot):
    """How many row changes PostgreSQL decodes for the bench table from `slot` (test_decoding),
    consuming them."""
    return int(pg.sql(f"SELECT count(*) FROM pg_logical_slot_get_changes('{slot}', NULL, NULL) "
                      "WHERE data LIKE 'table public.bench: %'"))


def time_walfeed(pg, slot, end_lsn, out_dir, walfeed, wrap=(), extra_args=()):
    """Seconds from walfeed's start until its slot confirms end_lsn; log bytes; changes stored."""
    data = os.path.join(out_dir, f"{slot}.data")
    log = open(os.path.join(out_dir, f"{slot}.log"), "w")
    server = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    proc = subprocess.Popen([*wrap, walfeed, "--pg", pg.conninfo, "--slot", slot, "--data-dir", data,
                             "--listen", server, "--snapshot", "never", *extra_args],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for_confirmed(pg, slot, end_lsn, 1800, proc):
            raise RuntimeError(f"walfeed did not reach {end_lsn}; see {log.name}")
        elapsed = time.monotonic() - start
        cpu = cpu_seconds(proc.pid)
        ctl = os.path.join(os.path.dirname(walfeed), "walfeedctl")
        info = json.loads(run([ctl, "info", "--server", server]))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    stopped = [line for line in open(log.name) if "event=stopped" in line]
    appends = int(stopped[-1].split("appends=")[1].split()[0]) if stopped else 0
    return elapsed, du(data), int(info.get("changesAppended", 0)), appends, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1_000_000, help="row changes per transaction size")
    parser.add_argument("--txn-sizes", default="1,10,1000")
    parser.add_argument("--runs", type=int, default=2, help="timed runs of each consumer")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (CI)")
    parser.add_argument("--walfeed", default=os.path.join(ROOT, "build", "bin", "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--wrap", default="", help="command to run walfeed under, e.g. 'perf record -g -o /tmp/p.data --'")
    args = parser.parse_args()
    if args.quick:
        args.changes, args.txn_sizes, args.runs = 20_000, "10", 1

    root = tempfile.mkdtemp(prefix="walfeed-bench-")
    os.chmod(root, 0o755)
    pg = Postgres(root)
    results = []
    try:
        pg.sql("CREATE TABLE bench (id bigint PRIMARY KEY, payload text, n int)")
        pg.sql("CREATE PUBLICATION walfeed FOR ALL TABLES")
        pg.sql(LOAD_PROCEDURE)
        for size in [int(s) for s in args.txn_sizes.split(",")]:
            pg.sql("TRUNCATE bench")
            slots = [f"{kind}_{size}_{r}" for r in range(args.runs) for kind in ("ref", "wf")]
            for slot in slots:
                pg.sql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
            count_slot = f"count_{size}"
            pg.sql(f"SELECT pg_create_logical_replication_slot('{count_slot}', 'test_decoding')")
            # Each transaction makes about rows * (0.6 + 0.3 + 0.1) changes.
            transactions = max(1, args.changes // size)
            before = pg.sql("SELECT pg_current_wal_lsn()")
            t0 = time.monotonic()
            pg.sql(f"CALL bench_load({transactions}, {size})")
            load_seconds = time.monotonic() - t0
            end_lsn = pg.sql("SELECT pg_current_wal_lsn()")
            wal_bytes = int(pg.sql(f"SELECT '{end_lsn}'::pg_lsn - '{before}'::pg_lsn"))
            changes = decoded_changes(pg, count_slot)
            pg.sql(f"SELECT pg_drop_replication_slot('{count_slot}')")
            row = {"txn_size": size, "transactions": transactions, "wal_bytes": wal_bytes,
                   "load_seconds": round(load_seconds, 2), "runs": []}
            for r in range(args.runs):
                # Turns: the one that goes first reads the WAL from disk.
                first = "pg_recvlogical" if r % 2 == 0 else "walfeed"
                timed = {}
                for consumer in (("pg_recvlogical", "walfeed") if r % 2 == 0 else ("walfeed", "pg_recvlogical")):
                    if consumer == "pg_recvlogical":
                        timed[consumer] = time_pg_recvlogical(pg, f"ref_{size}_{r}", end_lsn, root)
                    else:
                        timed[consumer] = time_walfeed(pg, f"wf_{size}_{r}", end_lsn, root, args.walfeed,
                                                       args.wrap.split())
                ref_s, ref_bytes = timed["pg_recvlogical"]
                wf_s, wf_bytes, wf_changes, wf_appends, wf_cpu = timed["walfeed"]
                if wf_changes != changes:
                    raise RuntimeError(f"walfeed stored {wf_changes} changes; PostgreSQL decoded {changes}")
                row["runs"].append({"first": first, "pg_recvlogical_seconds": round(ref_s, 3),
                                    "pgoutput_bytes": ref_bytes,
                                    "walfeed_seconds": round(wf_s, 3), "walfeed_log_bytes": wf_bytes,
                                    "walfeed_changes": wf_changes,
                                    "walfeed_synced_appends": wf_appends,
                                    "walfeed_cpu_seconds": round(wf_cpu, 2)})
                print(f"txn_size={size} run={r} first={first} changes={changes} pg_recvlogical={ref_s:.2f}s "
                      f"walfeed={wf_s:.2f}s walfeed_cpu={wf_cpu:.2f}s synced_appends={wf_appends}", flush=True)
            row["changes"] = changes
            best_ref = min(x["pg_recvlogical_seconds"] for x in row["runs"])
            best_wf = min(x["walfeed_seconds"] for x in row["runs"])
            row["pg_recvlogical_changes_per_s"] = round(changes / best_ref)
            row["walfeed_changes_per_s"] = round(changes / best_wf)
            row["ratio"] = round(best_ref / best_wf, 2)
            results.append(row)
            for slot in slots:
                pg.sql(f"SELECT pg_drop_replication_slot('{slot}')")
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "benchmark": "ingest",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "method": "workload committed first; each consumer then timed from its process start until "
                  "its slot's confirmed_flush_lsn reaches the final LSN, polled every 20 ms through "
                  "one kept-open psql session for both; the consumers take turns going first; "
                  "walfeed's stored changes equal PostgreSQL's decoded count (test_decoding); best "
                  "of the runs",
        "quick": args.quick,
        "results": results,
    }
    lines = ["| transaction size | changes | pg_recvlogical changes/s | walfeed changes/s | ratio | target |",
             "|---|---|---|---|---|---|"]
    for row in results:
        target = f">= {ratio_target(row['txn_size'])}"
        lines.append(f"| {row['txn_size']} | {row['changes']} | {row['pg_recvlogical_changes_per_s']:,} | "
                     f"{row['walfeed_changes_per_s']:,} | {row['ratio']} | {target} |")
    write_results(args.out, "ingest-quick" if args.quick else "ingest", report,
                  f"Ingest, PostgreSQL {PG_BIN}", "\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
