#!/usr/bin/python3
"""Fan-out over replicas: the same subscribers on one walfeed, or spread over a walfeed and two
replicas (--follow), at the same write rate.

A private PostgreSQL and a private 3-node NATS JetStream cluster (scripts/nats-local.sh) run on
this machine. In each scenario the walfeed that reads PostgreSQL publishes its log into a
3-replica stream (--replicate-to, --confirm-after=local), pgbench commits 10-row transactions at
a fixed rate, and feed_followers (C++, gRPC callback API) subscribers read the feed from its
start:
- one instance: every subscriber on the walfeed that reads PostgreSQL;
- three instances: the subscribers split evenly over that walfeed and two replicas.
Per instance: CPU % over the run, peak RSS, and its subscribers' delay (receipt time minus commit
time) p50/p99; the NATS servers' CPU; whether every subscriber received every change. Everything
shares this machine's cores, so the figures show what each instance costs and what limits the
whole, not how a cluster of machines would scale.

Results go to bench/results/replicas.{json,md}.

  bench/replicas.py [--quick] [--subscribers N] [--rate R] [--seconds S]
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BUILD_BIN, HERE, PG_BIN, InsertWorkload, cpu_seconds, free_port, machine,  # noqa: E402
                      nats_cpu_seconds, peak_rss_mib, postgres_and_nats, wait_for_health, write_results)


def start_walfeed(walfeed, root, name, args):
    server = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(root, f"{name}.log"), "w")
    proc = subprocess.Popen([walfeed, "--data-dir", os.path.join(root, f"{name}.data"), "--listen", server,
                             "--compaction-interval", "off", *args],
                            stdout=log, stderr=subprocess.STDOUT)
    return {"name": name, "server": server, "proc": proc, "log": log}


def scenario(pg, root, urls, nats_dir, index, instances, subscribers, rate, seconds, walfeed):
    db = f"fanout_{index}"
    stream = f"fanout_{index}"
    workload = InsertWorkload(pg, root, db)
    walfeeds = [start_walfeed(walfeed, root, f"{db}_ingester",
                              ["--pg", pg.conninfo_for(db), "--slot", db, "--replicate-to", urls,
                               "--replication-stream", stream])]
    followers = []
    try:
        wait_for_health(walfeeds[0]["server"], proc=walfeeds[0]["proc"])
        # A first row, so that the stream holds a segment: an empty replica takes its log id from it.
        pg.sql("INSERT INTO live (payload) VALUES ('first')", db=db)
        time.sleep(2)
        for r in range(1, instances):
            walfeeds.append(start_walfeed(walfeed, root, f"{db}_replica{r}",
                                          ["--follow", urls, "--replication-stream", stream]))
        for w in walfeeds[1:]:
            wait_for_health(w["server"], proc=w["proc"], timeout=150)
        for i, w in enumerate(walfeeds):
            share = subscribers // instances + (1 if i < subscribers % instances else 0)
            follower = subprocess.Popen([os.path.join(BUILD_BIN, "feed_followers"), "--server", w["server"],
                                         "--subscribers", str(share)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            followers.append((w, share, follower))
        for w, _, follower in followers:
            if follower.stdout.readline().strip() != "ready":
                raise RuntimeError(f"feed_followers on {w['name']} did not start")
        cpu_before = {w["name"]: cpu_seconds(w["proc"].pid) for w in walfeeds}
        nats_before = nats_cpu_seconds(nats_dir)
        start = time.monotonic()
        write_seconds = workload.run(rate, seconds)
        committed = workload.committed()
        measured = []
        for w, share, follower in followers:
            out, _ = follower.communicate(f"expect {committed}\n", timeout=600)
            measured.append((w, share, json.loads(out.strip().splitlines()[-1]), follower.returncode == 0))
        elapsed = time.monotonic() - start
        result = {"instances": instances, "subscribers": subscribers, "target_changes_per_s": rate,
                  "achieved_changes_per_s": round(committed / write_seconds), "committed": committed,
                  "nats_cpu_percent": round(100 * (nats_cpu_seconds(nats_dir) - nats_before) / elapsed, 1),
                  "per_instance": []}
        for w, share, m, complete in measured:
            result["per_instance"].append({
                "instance": "ingester" if w is walfeeds[0] else "replica", "subscribers": share,
                "cpu_percent": round(100 * (cpu_seconds(w["proc"].pid) - cpu_before[w["name"]]) / elapsed, 1),
                "peak_rss_mib": round(peak_rss_mib(w["proc"].pid), 1),
                "latency_ms": m["latency_ms"], "complete": complete})
        return result
    finally:
        for _, _, follower in followers:
            if follower.poll() is None:
                follower.kill()
        for w in reversed(walfeeds):
            w["proc"].terminate()
            w["proc"].wait(timeout=60)
            w["log"].close()
        pg.sql(f"SELECT pg_drop_replication_slot('{db}')")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=5000, help="changes/s written")
    parser.add_argument("--seconds", type=int, default=20, help="how long pgbench writes")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (CI)")
    parser.add_argument("--walfeed", default=os.path.join(BUILD_BIN, "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.rate, args.seconds = 30, 500, 3

    with postgres_and_nats("walfeed-replicas-bench-") as (root, pg, urls, nats_dir):
        results = [scenario(pg, root, urls, nats_dir, i, instances, args.subscribers, args.rate, args.seconds,
                            args.walfeed)
                   for i, instances in enumerate((1, 3))]

    report = {
        "benchmark": "replicas",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "method": "PostgreSQL, a 3-node NATS JetStream cluster, the walfeed that reads PostgreSQL "
                  "(publishing into a 3-replica stream) and, in the second scenario, two replicas "
                  "(--follow), all on one machine; pgbench commits 10-row transactions at a fixed "
                  "rate while feed_followers subscribers read the feed from its start, all on one "
                  "instance or split evenly over three. Delay: receipt minus commit time",
        "quick": args.quick,
        "results": results,
    }
    lines = ["| instances | subscribers | changes/s | instance | its subscribers | CPU % | peak RSS MiB | "
             "delay p50 / p99 ms | complete | NATS servers CPU % |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        for p in r["per_instance"]:
            lat = p["latency_ms"]
            lines.append(f"| {r['instances']} | {r['subscribers']:,} | {r['achieved_changes_per_s']:,} | "
                         f"{p['instance']} | {p['subscribers']:,} | {p['cpu_percent']} | {p['peak_rss_mib']} | "
                         f"{lat['p50']:.1f} / {lat['p99']:.1f} | {'yes' if p['complete'] else 'NO'} | "
                         f"{r['nats_cpu_percent']} |")
    write_results(args.out, "replicas-quick" if args.quick else "replicas", report,
                  f"Fan-out over replicas, PostgreSQL {PG_BIN}", "\n".join(lines))
    return 0 if all(p["complete"] for r in results for p in r["per_instance"]) else 1


if __name__ == "__main__":
    sys.exit(main())
