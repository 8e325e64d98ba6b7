#!/usr/bin/python3
"""Replication benchmark: what replicating the log into NATS JetStream costs.

A private PostgreSQL and a private 3-node NATS JetStream cluster (scripts/nats-local.sh) run on
this machine, beside walfeed.

1. Ingest: the ingest benchmark's workload (bench/ingest.py) is committed first; then, each on
   its own slot, pg_recvlogical, walfeed with its local log only, and walfeed with
   --replicate-to (a 3-replica stream) and --confirm-after=replicated, once with zstd segments
   (the default) and once uncompressed, are timed until their slot confirms the final LSN. Under
   `replicated` that is when JetStream has every change. Target: replicated >= 0.8 x local-only.
   The rows' payloads are the ingest benchmark's (repeated: compresses very well) or random hex
   (compresses about 2x), and the stream's size in bytes is reported for both encodings.
2. Latency: pgbench commits 10-row transactions at a fixed rate into walfeed with
   --replicate-to and --confirm-after=replicated, while feed_followers reads the gRPC feed and
   stream_follower reads the JetStream stream (an ordered push consumer, NATS C client). Latency is
   receipt time minus commit time per change; the same run without replication gives the gRPC
   reference. The extra latency of the stream is its p50/p99 over the gRPC feed's.

Results go to bench/results/replication.{json,md}.

  bench/replication.py [--quick] [--changes N] [--txn-sizes 10,1000,10:random] [--rate R] [--seconds S]
                       [--replication-args '--replication-in-flight 1'] [--out DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BUILD_BIN, HERE, PG_BIN, InsertWorkload, free_port, machine,  # noqa: E402
                      nats_cpu_seconds, nats_stream_state, postgres_and_nats, wait_for_health, write_results)
from ingest import load_procedure, time_pg_recvlogical, time_walfeed  # noqa: E402



def ingest(pg, root, urls, rows, changes, runs, walfeed, replication_args=(), wrap=(), nats_dir=None):
    """Each of `rows` is (transaction size, payload kind): pg_recvlogical, walfeed local-only,
    walfeed replicated (zstd segments, the default) and walfeed replicated uncompressed, each on
    its own slot and stream, timed to the same final LSN."""
    pg.sql("CREATE TABLE bench (id bigint PRIMARY KEY, payload text, n int)")
    pg.sql("CREATE PUBLICATION walfeed FOR ALL TABLES")
    results = []
    for size, payload in rows:
        pg.sql(load_procedure(payload))
        pg.sql("TRUNCATE bench")
        name = f"{size}_{payload}"
        slots = [f"{kind}_{name}_{r}" for r in range(runs) for kind in ("ref", "local", "repl", "plain")]
        for slot in slots:
            pg.sql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        pg.sql(f"CALL bench_load({max(1, changes // size)}, {size})")
        end_lsn = pg.sql("SELECT pg_current_wal_lsn()")
        row = {"txn_size": size, "payload": payload, "runs": []}
        for r in range(runs):
            ref_s, _ = time_pg_recvlogical(pg, f"ref_{name}_{r}", end_lsn, root)
            local_s, _, count, _, local_cpu = time_walfeed(pg, f"local_{name}_{r}", end_lsn, root, walfeed)
            replicated = {}
            for kind, compression in (("repl", "zstd"), ("plain", "none")):
                stream = f"bench_{kind}_{name}_{r}"
                nats_before = nats_cpu_seconds(nats_dir)
                seconds, _, _, _, cpu = time_walfeed(
                    pg, f"{kind}_{name}_{r}", end_lsn, root, walfeed, wrap=wrap,
                    extra_args=("--replicate-to", urls, "--replication-stream", stream,
                                "--replication-replicas", "3", "--confirm-after", "replicated",
                                "--replication-compression", compression, *replication_args))
                replicated[kind] = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 2),
                                    "nats_cpu_seconds": round(nats_cpu_seconds(nats_dir) - nats_before, 2),
                                    "stream_bytes": nats_stream_state(nats_dir, stream).get("bytes", 0)}
            row["changes"] = count
            row["runs"].append({"pg_recvlogical_seconds": round(ref_s, 3),
                                "local_seconds": round(local_s, 3), "local_cpu_seconds": round(local_cpu, 2),
                                "replicated_seconds": replicated["repl"]["seconds"],
                                "replicated_cpu_seconds": replicated["repl"]["cpu_seconds"],
                                "nats_cpu_seconds": replicated["repl"]["nats_cpu_seconds"],
                                "stream_bytes": replicated["repl"]["stream_bytes"],
                                "uncompressed_seconds": replicated["plain"]["seconds"],
                                "uncompressed_cpu_seconds": replicated["plain"]["cpu_seconds"],
                                "uncompressed_nats_cpu_seconds": replicated["plain"]["nats_cpu_seconds"],
                                "uncompressed_stream_bytes": replicated["plain"]["stream_bytes"]})
            print(f"txn_size={size} payload={payload} run={r} changes={count} pg_recvlogical={ref_s:.2f}s "
                  f"local={local_s:.2f}s (cpu {local_cpu:.1f}s) "
                  + " ".join(f"{kind}={x['seconds']:.2f}s (cpu {x['cpu_seconds']:.1f}s, NATS servers "
                             f"{x['nats_cpu_seconds']:.1f}s, stream {x['stream_bytes'] / 1e6:.1f} MB)"
                             for kind, x in replicated.items()), flush=True)
        best = {k: min(x[k] for x in row["runs"])
                for k in ("pg_recvlogical_seconds", "local_seconds", "replicated_seconds",
                          "uncompressed_seconds")}
        row["pg_recvlogical_changes_per_s"] = round(row["changes"] / best["pg_recvlogical_seconds"])
        row["local_changes_per_s"] = round(row["changes"] / best["local_seconds"])
        row["replicated_changes_per_s"] = round(row["changes"] / best["replicated_seconds"])
        row["uncompressed_changes_per_s"] = round(row["changes"] / best["uncompressed_seconds"])
        row["replicated_vs_local"] = round(best["local_seconds"] / best["replicated_seconds"], 2)
        row["uncompressed_vs_local"] = round(best["local_seconds"] / best["uncompressed_seconds"], 2)
        row["target_met"] = row["replicated_vs_local"] >= 0.8
        results.append(row)
        for slot in slots:
            pg.sql(f"SELECT pg_drop_replication_slot('{slot}')")
    return results


def latency(pg, root, urls, rate, seconds, replicate, index, walfeed):
    db = f"latency_{index}"
    stream = f"latency_{index}"
    workload = InsertWorkload(pg, root, db)
    server = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(root, f"{db}.walfeed.log"), "w")
    extra = ["--replicate-to", urls, "--replication-stream", stream, "--confirm-after", "replicated"] if replicate else []
    proc = subprocess.Popen([walfeed, "--pg", pg.conninfo_for(db), "--slot", db, "--data-dir",
                             os.path.join(root, f"{db}.data"), "--listen", server, *extra],
                            stdout=log, stderr=subprocess.STDOUT)
    consumers = []
    try:
        wait_for_health(server, proc=proc)
        time.sleep(1)
        consumers.append(("grpc", subprocess.Popen(
            [os.path.join(BUILD_BIN, "feed_followers"), "--server", server, "--subscribers", "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)))
        if replicate:
            consumers.append(("stream", subprocess.Popen(
                [os.path.join(BUILD_BIN, "stream_follower"), "--nats", urls, "--stream", stream],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)))
        for name, consumer in consumers:
            if consumer.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {name} consumer did not start")
        write_seconds = workload.run(rate, seconds)
        committed = workload.committed()
        result = {"replicated": replicate, "target_changes_per_s": rate,
                  "achieved_changes_per_s": round(committed / write_seconds), "committed": committed}
        for name, consumer in consumers:
            out, _ = consumer.communicate(f"expect {committed}\n", timeout=600)
            measured = json.loads(out.strip().splitlines()[-1])
            result[name] = {"latency_ms": measured["latency_ms"], "complete": consumer.returncode == 0}
        return result
    finally:
        for _, consumer in consumers:
            if consumer.poll() is None:
                consumer.kill()
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        pg.sql(f"SELECT pg_drop_replication_slot('{db}')")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--txn-sizes", default="10,1000,10:random",
                        help="transaction sizes, each optionally with its payload kind (repeated, "
                             "the default, or random)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rate", type=int, default=10_000, help="changes/s of the latency run")
    parser.add_argument("--seconds", type=int, default=20, help="how long the latency run writes")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (CI)")
    parser.add_argument("--replication-args", default="",
                        help="more walfeed flags for the replicated runs, e.g. '--replication-in-flight 1'")
    parser.add_argument("--wrap", default="",
                        help="command to run the replicated walfeed under, e.g. 'perf record -g -o /tmp/p.data --'")
    parser.add_argument("--walfeed", default=os.path.join(BUILD_BIN, "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if args.quick:
        args.changes, args.txn_sizes, args.runs, args.rate, args.seconds = 20_000, "10:random", 1, 1_000, 3

    with postgres_and_nats("walfeed-replication-bench-") as (root, pg, urls, nats_dir):
        rows = [(int(spec.split(":")[0]), spec.split(":")[1] if ":" in spec else "repeated")
                for spec in args.txn_sizes.split(",")]
        ingest_results = ingest(pg, root, urls, rows, args.changes, args.runs, args.walfeed,
                                args.replication_args.split(), args.wrap.split(), nats_dir)
        latency_results = [latency(pg, root, urls, args.rate, args.seconds, replicate, i, args.walfeed)
                           for i, replicate in enumerate((False, True))]

    report = {
        "benchmark": "replication",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "method": "PostgreSQL, a 3-node NATS JetStream cluster (3-replica file streams) and walfeed on "
                  "one machine. Ingest: workload committed first, each consumer timed from its start "
                  "until its slot confirms the final LSN, best of the runs. Latency: receipt minus "
                  "commit time of every change at a fixed rate, gRPC feed and JetStream stream read at "
                  "once" + (f". Replicated runs with {args.replication_args}" if args.replication_args else ""),
        "quick": args.quick,
        "replication_args": args.replication_args,
        "ingest": ingest_results,
        "latency": latency_results,
    }
    lines = ["| transaction size (payload) | changes | pg_recvlogical changes/s | walfeed local changes/s | "
             "walfeed replicated changes/s | replicated / local | target | uncompressed: changes/s, / local | "
             "stream MB: zstd / uncompressed | CPU s: walfeed local / replicated, NATS servers (uncompressed) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ingest_results:
        fastest = min(r["runs"], key=lambda x: x["replicated_seconds"])
        lines.append(f"| {r['txn_size']} ({r['payload']}) | {r['changes']:,} | {r['pg_recvlogical_changes_per_s']:,} | "
                     f"{r['local_changes_per_s']:,} | {r['replicated_changes_per_s']:,} | "
                     f"{r['replicated_vs_local']} | >= 0.8 {'(met)' if r['target_met'] else '(missed)'} | "
                     f"{r['uncompressed_changes_per_s']:,}, {r['uncompressed_vs_local']} | "
                     f"{fastest['stream_bytes'] / 1e6:.0f} / {fastest['uncompressed_stream_bytes'] / 1e6:.0f} | "
                     f"{fastest['local_cpu_seconds']} / {fastest['replicated_cpu_seconds']}, "
                     f"{fastest['nats_cpu_seconds']} ({fastest['uncompressed_nats_cpu_seconds']}) |")
    lines += ["", "| latency at changes/s | gRPC feed p50 / p99 ms | JetStream stream p50 / p99 ms |",
              "|---|---|---|"]
    for r in latency_results:
        grpc = r["grpc"]["latency_ms"]
        stream = r.get("stream", {}).get("latency_ms")
        lines.append(f"| {r['achieved_changes_per_s']:,} ({'replicated' if r['replicated'] else 'local only'}) | "
                     f"{grpc['p50']:.1f} / {grpc['p99']:.1f} | "
                     + (f"{stream['p50']:.1f} / {stream['p99']:.1f}" if stream else "-") + " |")
    write_results(args.out, "replication-quick" if args.quick else "replication", report,
                  f"Replication into NATS JetStream, PostgreSQL {PG_BIN}", "\n".join(lines))
    complete = all(c["complete"] for r in latency_results for k, c in r.items() if isinstance(c, dict))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
