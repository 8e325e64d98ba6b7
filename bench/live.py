#!/usr/bin/python3
"""Live-feed benchmarks: commit-to-consumer latency and fan-out, with a steady write rate.

For each scenario a fresh database, slot and walfeed are started on a private PostgreSQL;
build/bin/feed_followers opens N subscribers (C++, gRPC callback API) from the start of the feed;
pgbench commits transactions of 10 rows (~200 bytes each) at a fixed rate for the scenario's
duration. Latency is each change's receipt time minus its transaction's commit timestamp (same
machine clock), over every change every subscriber received; walfeed's CPU and peak RSS are read
from /proc. A scenario passes its check only if every subscriber received every committed
change, in order.

  bench/live.py [--quick] [--seconds S]

Scenarios: latency with 1 subscriber at 1,000, 10,000 and 50,000 changes/s (targets: p50 < 5 ms
and p99 < 5 ms at 10,000, p99 < 20 ms at 50,000); fan-out with 100 and 1,000 subscribers at
5,000 changes/s (target: all keep up, RSS < 300 MB); latency at 10,000 changes/s of updates
without compaction and then, the same workload in the same run, while compaction runs (an A/B);
latency at 10,000 changes/s with 10,000 more subscribers connected to a table nobody writes
(target: RSS < 1 GiB, p99 < 20 ms). Writes bench/results/live.{json,md} (live-quick.* with
--quick).
"""
import argparse
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import json
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BUILD_BIN, HERE, PG_BIN_DIR, InsertWorkload, Postgres, cpu_seconds,  # noqa: E402
                      free_port, machine, peak_rss_mib, wait_for_health, write_results)

ROWS_PER_TXN = 10
KEEP_UP_MS = 1000
FULL = [("latency", 1, 1_000), ("latency", 1, 10_000), ("fan-out", 100, 5_000), ("fan-out", 1_000, 5_000),
        ("latency-updates", 1, 10_000), ("latency-compacting", 1, 10_000), ("latency", 1, 50_000),
        ("latency-idle", 1, 10_000)]
QUICK = [("latency", 1, 1_000), ("fan-out", 20, 1_000), ("latency-idle", 1, 1_000)]
# Connected, mostly idle subscribers beside the measured one in the latency-idle scenario: each
# subscribes from the head to a table nobody writes.
IDLE_SUBSCRIBERS = {False: 10_000, True: 200}  # by --quick


def compact_in_a_loop(server, stop, passes):
    """Runs a compaction pass (lag 2 s) every 2 s until `stop` is set; appends each result."""
    ctl = os.path.join(BUILD_BIN, "walfeedctl")
    while not stop.wait(2):
        done = subprocess.run([ctl, "compact", "--server", server, "--compaction-lag", "2s"],
                              capture_output=True, text=True)
        if done.returncode == 0:
            passes.append(json.loads(done.stdout))


def machine_busy_seconds():
    """CPU seconds all cores have spent busy (neither idle nor waiting for I/O) since boot."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def percentiles(values):
    values = sorted(values)
    at = lambda q: values[min(len(values) - 1, int(q * len(values)))] if values else 0.0  # noqa: E731
    return {"p50": round(at(0.5), 2), "p99": round(at(0.99), 2), "p999": round(at(0.999), 2),
            "max": round(values[-1] if values else 0.0, 2)}


def reference_latency(pg, root, index, rate, seconds):
    """What PostgreSQL and this machine allow without walfeed: pg_recvlogical (test_decoding,
    commit timestamps) following a database of its own while pgbench writes at the same rate;
    latency = the COMMIT line's arrival - its commit timestamp."""
    db = f"reference_{index}"
    workload = InsertWorkload(pg, root, db, ROWS_PER_TXN)
    pg.sql(f"SELECT pg_create_logical_replication_slot('{db}', 'test_decoding')", db=db)
    proc = subprocess.Popen([os.path.join(PG_BIN_DIR, "pg_recvlogical"), "-d", pg.conninfo_for(db),
                             "-S", db, "--start", "-o", "include-timestamp=on", "-F", "0", "-f", "-"],
                            stdout=subprocess.PIPE, text=True)
    latencies = []

    def read():
        for line in proc.stdout:
            if line.startswith("COMMIT"):
                arrived = time.time()
                committed = datetime.datetime.fromisoformat(line[line.index("(at ") + 4:line.rindex(")")])
                latencies.append((arrived - committed.timestamp()) * 1000)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        workload.run(rate, seconds)
        time.sleep(2)  # the last commits arrive
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        reader.join()
        pg.sql(f"SELECT pg_drop_replication_slot('{db}')")
    return {"transactions": len(latencies), "latency_ms": percentiles(latencies)}


def wait_for_subscribers(server, count, timeout=300):
    """Waits until walfeed counts `count` open Subscribe streams."""
    ctl = os.path.join(BUILD_BIN, "walfeedctl")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run([ctl, "info", "--server", server], capture_output=True, text=True)
        if done.returncode == 0 and int(json.loads(done.stdout).get("subscribers", 0)) >= count:
            return
        time.sleep(1)
    raise RuntimeError(f"walfeed did not count {count} subscribers within {timeout} s")


def run_scenario(pg, root, index, kind, subscribers, rate, seconds, walfeed, wrap, idle=0):
    db = f"live_{index}"
    compacting = kind == "latency-compacting"
    # The compaction A/B: the same update workload, without ("latency-updates") and with passes.
    updating = kind in ("latency-updates", "latency-compacting")
    pg.sql(f"CREATE DATABASE {db}")
    pg.sql("CREATE TABLE live (id bigserial PRIMARY KEY, payload text, version int DEFAULT 0)", db=db)
    if idle:
        pg.sql("CREATE TABLE idle (id int PRIMARY KEY)", db=db)  # what the idle subscribers follow
    script = os.path.join(root, f"{db}.sql")
    with open(script, "w") as f:
        if updating:
            # Updates of 10 neighbouring rows of 10,000 (in key order: no deadlocks), so that
            # compaction has superseded changes to remove while the subscriber follows the head.
            pg.sql("INSERT INTO live (payload) SELECT repeat(md5(g::text), 6) "
                   "FROM generate_series(1, 10000) g", db=db)
            f.write(f"\\set first random(1, {10000 - ROWS_PER_TXN + 1})\n"
                    f"UPDATE live SET version = version + 1, payload = repeat(md5(random()::text), 6) "
                    f"WHERE id BETWEEN :first AND :first + {ROWS_PER_TXN - 1};\n")
        else:
            f.write(f"INSERT INTO live (payload) SELECT repeat(md5(random()::text), 6) "
                    f"FROM generate_series(1, {ROWS_PER_TXN});\n")
    server = f"127.0.0.1:{free_port()}"
    log = open(os.path.join(root, f"{db}.walfeed.log"), "w")
    proc = subprocess.Popen([*wrap, walfeed, "--pg", pg.conninfo_for(db), "--slot", db, "--data-dir",
                             os.path.join(root, f"{db}.data"), "--listen", server,
                             "--compaction-interval", "off"],
                            stdout=log, stderr=subprocess.STDOUT)
    followers = None
    stop_compacting = threading.Event()
    passes = []
    compactor = threading.Thread(target=compact_in_a_loop, args=(server, stop_compacting, passes))
    try:
        wait_for_health(server, proc=proc)
        time.sleep(1)  # the snapshot, then streaming
        followers = subprocess.Popen([os.path.join(BUILD_BIN, "feed_followers"), "--server", server,
                                      "--subscribers", str(subscribers),
                                      *(["--from-head"] if updating else []),
                                      *(["--idle", str(idle), "--idle-table", "public.idle"] if idle else [])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if followers.stdout.readline().strip() != "ready":
            raise RuntimeError("feed_followers did not start")
        if idle:
            wait_for_subscribers(server, subscribers + idle)
            rss_idle = round(peak_rss_mib(proc.pid), 1)
        if updating:
            time.sleep(1)  # the from_head subscriptions are in place before the first commit
        if compacting:
            compactor.start()
        cpu_before = cpu_seconds(proc.pid)
        followers_cpu_before = cpu_seconds(followers.pid)
        busy_before = machine_busy_seconds()
        start = time.monotonic()
        tps = rate // ROWS_PER_TXN
        subprocess.run([os.path.join(PG_BIN_DIR, "pgbench"), "-n", "-c", "4", "-j", "2", "-R", str(tps),
                        "-T", str(seconds), "-f", script, pg.conninfo_for(db)],
                       check=True, capture_output=True, text=True)
        write_seconds = time.monotonic() - start
        write_cpu = cpu_seconds(proc.pid) - cpu_before
        busy = machine_busy_seconds() - busy_before
        followers_cpu = cpu_seconds(followers.pid) - followers_cpu_before
        stop_compacting.set()
        if compacting:
            compactor.join()
        committed = int(pg.sql("SELECT sum(version) FROM live" if updating else
                               "SELECT count(*) FROM live", db=db))
        out, _ = followers.communicate(f"expect {committed}\n", timeout=600)
        cpu = cpu_seconds(proc.pid) - cpu_before
        result = json.loads(out.strip().splitlines()[-1])
        result.update({
            "scenario": kind, "target_changes_per_s": rate, "seconds": round(write_seconds, 1),
            "committed": committed, "achieved_changes_per_s": round(committed / write_seconds),
            # While pgbench wrote (the drain after it is not divided in).
            "walfeed_cpu_percent": round(100 * write_cpu / write_seconds, 1),
            "walfeed_peak_rss_mib": round(peak_rss_mib(proc.pid), 1),
            "complete": followers.returncode == 0,
            # While pgbench wrote: how busy the machine's cores were, and the subscribers' share.
            "machine_cpu_busy_percent": round(100 * busy / write_seconds / os.cpu_count(), 1),
            "subscribers_cpu_percent": round(100 * followers_cpu / write_seconds, 1),
        })
        if result["changes_delivered"]:
            result["walfeed_cpu_us_per_delivered_change"] = round(cpu * 1e6 / result["changes_delivered"], 3)
        if idle:
            result["idle_subscribers"] = idle
            result["walfeed_rss_mib_with_idle_before_writes"] = rss_idle
        if compacting:
            result["compaction_passes"] = len(passes)
            result["compaction_removed"] = sum(int(p.get("supersededRemoved", 0)) for p in passes)
        return result
    finally:
        stop_compacting.set()
        if followers is not None and followers.poll() is None:
            followers.kill()
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
        pg.sql(f"SELECT pg_drop_replication_slot('{db}')")


def verdict(r):
    p99 = r["latency_ms"]["p99"]
    if r["scenario"] == "latency-idle":
        met = r["complete"] and r["walfeed_peak_rss_mib"] < 1024 and p99 < 20
        return f"{r.get('idle_subscribers', 0):,} idle beside: RSS < 1 GiB, p99 < 20 ms", met
    if r["scenario"] == "latency" and r["target_changes_per_s"] >= 50_000:
        return "p99 < 20 ms", r["complete"] and p99 < 20
    if r["scenario"] == "latency" and r["target_changes_per_s"] >= 10_000:
        return "p50 < 5 ms, p99 < 5 ms", r["complete"] and r["latency_ms"]["p50"] < 5 and p99 < 5
    if r["scenario"].startswith("latency") and r["target_changes_per_s"] >= 10_000:
        met = r["latency_ms"]["p50"] < 5 and p99 < 20
        return "p50 < 5 ms, p99 < 20 ms", met
    if r["scenario"] == "fan-out":
        # Keeping up: every change reaches every subscriber within a second of its commit.
        keeps_up = r["complete"] and r["latency_ms"]["max"] < KEEP_UP_MS
        if r["subscribers"] >= 1_000:
            return ("all keep up (max < 1 s), p99 < 250 ms, RSS < 300 MB",
                    keeps_up and p99 < 250 and r["walfeed_peak_rss_mib"] * 2**20 < 300e6)
        return "all keep up (max < 1 s)", keeps_up
    return "every change to every subscriber", r["complete"]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=20, help="how long each scenario writes")
    parser.add_argument("--rejudge", action="store_true",
                        help="apply the targets again to the recorded results and rewrite the report")
    parser.add_argument("--only", type=int, action="append",
                        help="run only the scenario with this index (0-based; repeatable)")
    parser.add_argument("--wrap", default="", help="command to run walfeed under, e.g. 'perf record -g -o /tmp/p.data --'")
    parser.add_argument("--walfeed", default=os.path.join(BUILD_BIN, "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    scenarios = QUICK if args.quick else FULL
    seconds = 3 if args.quick else args.seconds
    if args.rejudge:
        with open(os.path.join(args.out, "live-quick.json" if args.quick else "live.json")) as f:
            results = json.load(f)["results"]
        for r in results:
            r["target"], r["target_met"] = verdict(r)
        return write_report(args, results, seconds)
    root = tempfile.mkdtemp(prefix="walfeed-live-")
    os.chmod(root, 0o755)
    pg = Postgres(root)
    results = []
    try:
        for index, (kind, subscribers, rate) in enumerate(scenarios):
            if args.only and index not in args.only:
                continue
            r = run_scenario(pg, root, index, kind, subscribers, rate, seconds, args.walfeed,
                             args.wrap.split(),
                             IDLE_SUBSCRIBERS[args.quick] if kind == "latency-idle" else 0)
            if kind == "latency":
                r["reference"] = reference_latency(pg, root, index, rate, seconds)
            r["target"], r["target_met"] = verdict(r)
            results.append(r)
            print(json.dumps(r), flush=True)
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.only:  # the other scenarios keep their recorded results
        results = merge_into_recorded(args, scenarios, results)
    return write_report(args, results, seconds)


def merge_into_recorded(args, scenarios, fresh):
    path = os.path.join(args.out, "live-quick.json" if args.quick else "live.json")
    recorded = json.load(open(path))["results"] if os.path.exists(path) else []
    key = lambda r: (r["scenario"], r["subscribers"], r["target_changes_per_s"])  # noqa: E731
    by_key = {key(r): r for r in recorded}
    by_key.update({key(r): r for r in fresh})
    order = [(kind, subscribers, rate) for kind, subscribers, rate in scenarios]
    return [by_key[k] for k in order if k in by_key]


def write_report(args, results, seconds):
    report = {
        "benchmark": "live", "date": time.strftime("%Y-%m-%d"), "machine": machine(),
        "method": f"pgbench commits {ROWS_PER_TXN}-row transactions at a fixed rate for {seconds} s "
                  "while feed_followers (C++, callback API) subscribers read from the start of a "
                  "fresh feed; latency = receipt time - commit timestamp over every change each "
                  "subscriber received; PostgreSQL, walfeed and the subscribers share the machine",
        "quick": args.quick, "results": results,
    }
    lines = ["| scenario | subscribers | changes/s (achieved) | latency p50 / p99 / p999 / max | "
             "reference: pg_recvlogical p50 / p99 | every change to every subscriber | walfeed CPU "
             "(per delivered change) | subscribers' CPU | machine busy | walfeed peak RSS | target | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lat = r["latency_ms"]
        ref = r.get("reference", {}).get("latency_ms")
        reference = f"{ref['p50']:.2f} / {ref['p99']:.2f} ms" if ref else "-"
        per_change = r.get("walfeed_cpu_us_per_delivered_change")
        lines.append(f"| {r['scenario']} | {r['subscribers']:,} | {r['target_changes_per_s']:,} "
                     f"({r['achieved_changes_per_s']:,}) | {lat['p50']:.2f} / {lat['p99']:.2f} / "
                     f"{lat['p999']:.2f} / {lat['max']:.0f} ms | "
                     f"{reference} | "
                     f"{'yes' if r['complete'] else 'NO'} | {r['walfeed_cpu_percent']} %"
                     f"{f' ({per_change} µs)' if per_change is not None else ''} | "
                     f"{r.get('subscribers_cpu_percent', '-')} % | {r.get('machine_cpu_busy_percent', '-')} % | "
                     f"{r['walfeed_peak_rss_mib']:.0f} MiB | {r['target']} | {'yes' if r['target_met'] else 'no'} |")
    write_results(args.out, "live-quick" if args.quick else "live", report, "Live feed: latency and fan-out",
                  "\n".join(lines))
    return 0 if all(r["complete"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
