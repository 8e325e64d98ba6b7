#!/usr/bin/python3
"""Push delivery: throughput and delivery latency of push subscriptions into an HTTP/1.1 receiver
on loopback (bench/push_receiver, C++, answers 200 over kept-alive connections).

A private PostgreSQL and one walfeed (compaction off) run on this machine.
  - Throughput: a backlog of N changes (1,000-row transactions, 192-character payloads) is in the
    log before a subscription from the start is created; time from creating it until the
    receiver holds all N, in the JSON format (batches of 500) and in Debezium's (one envelope per
    request, as Debezium Server's HTTP sink sends; the first 50,000). Reference: the same backlog read
    over gRPC by `walfeedctl subscribe --stop-at-head` printing JSON to /dev/null (one client,
    the same JSON per change), timed the same way, in the same run.
  - Latency: pgbench commits 10-row transactions at a fixed rate; a subscription from the head
    delivers them; latency = arrival at the receiver - commit timestamp, over every change.
Every change must arrive exactly once (no repeated idempotency key, counts equal).

Results go to bench/results/push.{json,md}.

  bench/push.py [--quick] [--changes N] [--rate R] [--seconds S]
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
from benchlib import (BUILD_BIN, HERE, InsertWorkload, Postgres, cpu_seconds, free_port,  # noqa: E402
                      machine, wait_for_health, write_results)

WALFEEDCTL = os.path.join(BUILD_BIN, "walfeedctl")


def ctl(server, *args):
    return subprocess.run([WALFEEDCTL, *args, "--server", server], check=True, capture_output=True,
                          text=True, timeout=120).stdout


class Receiver:
    def __init__(self):
        self.proc = subprocess.Popen([os.path.join(BUILD_BIN, "push_receiver")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.proc.stdout.readline().split()[1]}/push"

    def finish(self):
        self.proc.stdin.close()
        summary = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=30)
        return summary


def delivered(server, name):
    for line in ctl(server, "push", "list").splitlines():
        info = json.loads(line)
        if info["subscription"]["name"] == name:
            return int(info.get("deliveredChanges", 0))
    return 0


def wait_delivered(server, name, count, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if delivered(server, name) >= count:
            return True
        time.sleep(0.25)
    return False


def throughput(server, proc, name, fmt, batch, changes):
    """Pushes the backlog from the start until the receiver holds `changes` changes (the backlog
    may hold more); the rate is what arrived over the time to the last arrival."""
    receiver = Receiver()
    cpu0, t0 = cpu_seconds(proc.pid), time.time()
    ctl(server, "push", "create", name, "--url", receiver.url, "--format", fmt, "--batch-changes", str(batch))
    complete = wait_delivered(server, name, changes, 600)
    cpu = cpu_seconds(proc.pid) - cpu0
    summary = receiver.finish()
    ctl(server, "push", "delete", name)
    seconds = summary["last_unix"] - t0
    return {"format": fmt, "batch_changes": batch, "changes": summary["changes"], "requests": summary["requests"],
            "connections": summary["connections"], "repeats": summary["repeats"], "seconds": round(seconds, 2),
            "changes_per_s": round(summary["changes"] / seconds) if seconds > 0 else 0,
            "requests_per_s": round(summary["requests"] / seconds) if seconds > 0 else 0,
            "mib_per_s": round(summary["bytes"] / seconds / 2**20, 1) if seconds > 0 else 0,
            "walfeed_cpu_percent": round(100 * cpu / seconds) if seconds > 0 else 0,
            "complete": complete and summary["changes"] >= changes and summary["repeats"] == 0}


def grpc_reference(server, changes):
    start = time.time()
    with open(os.devnull, "w") as sink:
        subprocess.run([WALFEEDCTL, "subscribe", "--from-lsn", "0", "--stop-at-head", "--server", server],
                       stdout=sink, check=True, timeout=600)
    seconds = time.time() - start
    return {"changes": changes, "seconds": round(seconds, 2), "changes_per_s": round(changes / seconds)}


def latency(server, workload, rate, seconds):
    receiver = Receiver()
    ctl(server, "push", "create", "live", "--url", receiver.url, "--from-head")
    before = workload.committed()
    achieved_seconds = workload.run(rate, seconds)
    expected = workload.committed() - before
    complete = wait_delivered(server, "live", expected, 120)
    summary = receiver.finish()
    ctl(server, "push", "delete", "live")
    return {"target_changes_per_s": rate, "achieved_changes_per_s": round(expected / achieved_seconds),
            "changes": summary["changes"], "requests": summary["requests"], "latency_ms": summary["latency_ms"],
            "complete": complete and summary["changes"] == expected and summary["repeats"] == 0}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--changes", type=int, default=500_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    changes = 5_000 if args.quick else args.changes
    seconds = 3 if args.quick else args.seconds
    root = tempfile.mkdtemp(prefix="walfeed-push-bench-")
    os.chmod(root, 0o755)
    pg = Postgres(root)
    proc = None
    try:
        workload = InsertWorkload(pg, root, "pushbench")
        for start in range(0, changes, 1000):
            pg.sql(f"INSERT INTO live (payload) SELECT repeat(md5(random()::text), 6) "
                   f"FROM generate_series(1, {min(1000, changes - start)})", db="pushbench")
        server = f"127.0.0.1:{free_port()}"
        log = open(os.path.join(root, "walfeed.log"), "w")
        proc = subprocess.Popen([os.path.join(BUILD_BIN, "walfeed"), "--pg", pg.conninfo_for("pushbench"),
                                 "--slot", "pushbench", "--data-dir", os.path.join(root, "data"),
                                 "--listen", server, "--compaction-interval", "off"],
                                stdout=log, stderr=subprocess.STDOUT)
        wait_for_health(server, proc=proc)
        deadline = time.monotonic() + 600
        while json.loads(ctl(server, "info")).get("snapshotState") != "done" and time.monotonic() < deadline:
            time.sleep(0.5)
        results = {
            "json": throughput(server, proc, "bulk-json", "json", 500, changes),
            "debezium": throughput(server, proc, "bulk-debezium", "debezium", 1, min(changes, 50_000)),
            "grpc_reference": grpc_reference(server, changes),
            "latency": latency(server, workload, args.rate, seconds),
        }
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    report = {"benchmark": "push", "date": time.strftime("%Y-%m-%d"), "machine": machine(), "quick": args.quick,
              "method": f"a backlog of {changes:,} changes (the initial snapshot of a table filled in 1,000-row "
                        f"transactions, 192-character payloads) pushed from the start to bench/push_receiver "
                        f"(HTTP/1.1, keep-alive, answers 200) on loopback, timed from creating the subscription "
                        f"to the last arrival; the reference reads the same backlog over gRPC with walfeedctl "
                        f"subscribe --stop-at-head (JSON to /dev/null). Latency: pgbench commits 10-row "
                        f"transactions at {args.rate:,} changes/s for {seconds} s into a subscription from the "
                        f"head; arrival - commit timestamp over every change. PostgreSQL, walfeed and the "
                        f"receiver share the machine",
              "results": results}
    j, d, g, lat = results["json"], results["debezium"], results["grpc_reference"], results["latency"]
    lines = ["| scenario | changes | requests (connections) | changes/s | MiB/s | walfeed CPU | every change once |",
             "|---|---|---|---|---|---|---|",
             f"| push, JSON, batches of 500 | {j['changes']:,} | {j['requests']:,} ({j['connections']}) | "
             f"{j['changes_per_s']:,} | {j['mib_per_s']} | {j['walfeed_cpu_percent']} % | {'yes' if j['complete'] else 'NO'} |",
             f"| push, Debezium envelope, one per request | {d['changes']:,} | {d['requests']:,} ({d['connections']}) | "
             f"{d['changes_per_s']:,} | {d['mib_per_s']} | {d['walfeed_cpu_percent']} % | {'yes' if d['complete'] else 'NO'} |",
             f"| reference: gRPC catch-up, walfeedctl subscribe (JSON) | {g['changes']:,} | - | {g['changes_per_s']:,} | - | - | - |",
             "",
             "| live push at a fixed rate | changes/s (achieved) | requests | latency p50 / p99 / p999 / max | every change once |",
             "|---|---|---|---|---|",
             f"| JSON, batches up to 500 | {lat['target_changes_per_s']:,} ({lat['achieved_changes_per_s']:,}) | "
             f"{lat['requests']:,} | {lat['latency_ms']['p50']:.2f} / {lat['latency_ms']['p99']:.2f} / "
             f"{lat['latency_ms']['p999']:.2f} / {lat['latency_ms']['max']:.0f} ms | {'yes' if lat['complete'] else 'NO'} |"]
    write_results(args.out, "push-quick" if args.quick else "push", report, "Push delivery: throughput and latency",
                  "\n".join(lines))
    return 0 if all(r.get("complete", True) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
