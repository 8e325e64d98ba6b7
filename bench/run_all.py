#!/usr/bin/python3
"""walfeed's benchmark suite in one command: every scenario, each against its reference measured
in the same run, then one summary (JSON, a Markdown table, a PNG plot) under bench/results/.

  bench/run_all.py [--quick]

Runs, in order: ingest.py (walfeed vs pg_recvlogical), live.py (commit-to-consumer latency at
1,000 and 10,000 changes/s; fan-out to 100 and 1,000 subscribers at 5,000 changes/s), catchup.py
(a 10M-change log read from 0 vs a raw RocksDB scan), compaction.py (N updates over K keys vs the
live rows alone), large_transaction.py (peak memory for one 1M- and one 5M-row transaction) and
large_values.py (memory around one 100 MiB row, stalled subscribers at it, ReadValue) and
replication.py (ingest and latency with the log replicated into a 3-node NATS JetStream cluster
under --confirm-after=replicated, next to local-only and pg_recvlogical) and replicas.py (the same
subscribers on one walfeed, or spread over a walfeed and two replicas) and failover.py (how long
an ingest group goes without ingesting when its ingester is killed or paused) and push.py (push
subscriptions into an HTTP/1.1 receiver: throughput and delivery latency). Each writes
its own bench/results/<name>.{json,md}; this script then writes bench/results/summary.{json,md}
and summary.png. --quick runs each in its smoke size (CI checks that they run, not how fast).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import HERE, machine  # noqa: E402
import ingest as ingest_bench  # noqa: E402

SCRIPTS = ["ingest", "live", "catchup", "compaction", "large_transaction", "large_values", "replication",
           "replicas", "failover", "push"]


def load(out, name, quick):
    path = os.path.join(out, f"{name}-quick.json" if quick else f"{name}.json")
    with open(path) as f:
        return json.load(f)


def summarize(out, quick):
    """One row per scenario: walfeed's figure, the reference, the ratio, the target, met or not."""
    rows = []
    ingest = load(out, "ingest", quick)
    for r in ingest["results"]:
        target = ingest_bench.ratio_target(r["txn_size"])
        rows.append({"scenario": f"ingest, {r['txn_size']}-row transactions",
                     "walfeed": f"{r['walfeed_changes_per_s']:,} changes/s",
                     "reference": f"pg_recvlogical {r['pg_recvlogical_changes_per_s']:,} changes/s",
                     "ratio": r["ratio"], "target": f">= {target} x", "met": r["ratio"] >= target})
    for r in load(out, "live", quick)["results"]:
        lat = r["latency_ms"]
        ref = r.get("reference", {}).get("latency_ms")
        per_change = r.get("walfeed_cpu_us_per_delivered_change")
        rows.append({"scenario": f"{r['scenario']}, {r['subscribers']:,} subscriber(s) at "
                                 f"{r['target_changes_per_s']:,} changes/s",
                     "walfeed": f"p50 {lat['p50']:.1f} / p99 {lat['p99']:.1f} / p999 {lat['p999']:.1f} ms; "
                                f"CPU {r['walfeed_cpu_percent']} %"
                                + (f" ({per_change} us per delivered change)" if r["subscribers"] >= 100 else "")
                                + f", RSS {r['walfeed_peak_rss_mib']:.0f} MiB"
                                + (f"; machine {r['machine_cpu_busy_percent']} % busy"
                                   if "machine_cpu_busy_percent" in r else ""),
                     "reference": f"pg_recvlogical p50 {ref['p50']:.1f} / p99 {ref['p99']:.1f} ms" if ref else "-",
                     "ratio": None, "target": r["target"], "met": r["target_met"]})
    catchup = load(out, "catchup", quick)
    c = catchup["result"]
    rows.append({"scenario": f"catch-up read of {c['changes']:,} changes",
                 "walfeed": f"{c['feed_changes_per_second']:,} changes/s (a client parsing every "
                            f"change: {c.get('parsing_feed_changes_per_second', 0):,})",
                 "reference": f"raw RocksDB scan {c['raw_scan_changes_per_second']:,} changes/s",
                 "ratio": round(c["ratio"], 2), "target": ">= 2,000,000/s and >= 0.7 x",
                 "met": all(catchup["targets_met"].values())})
    for r in load(out, "compaction", quick)["results"]:
        rows.append({"scenario": f"compaction, {r['updates']:,} updates over {r['keys']:,} keys",
                     "walfeed": f"{r['dir_bytes_after'] / 2**20:.2f} MiB after "
                                f"({r['dir_bytes_before'] / 2**20:.0f} MiB before), {r['compaction_seconds']:.1f} s",
                     "reference": f"live rows alone {r['live_rows_dir_bytes'] / 2**20:.2f} MiB",
                     "ratio": r["size_ratio"], "target": "close to 1", "met": r["size_ratio"] < 1.2})
    for r in load(out, "large_transaction", quick)["results"]:
        rows.append({"scenario": f"one {r['rows']:,}-row transaction, {r['mode']}",
                     "walfeed": f"peak RSS {r['peak_rss_mib']} MiB, {r['seconds']} s",
                     "reference": "-", "ratio": None,
                     "target": "< 200 MiB" if r["mode"].startswith("staged") else "-",
                     "met": r["peak_rss_mib"] < 200 if r["mode"].startswith("staged") else None})
    r = load(out, "large_values", quick)["result"]
    added = r["stalled_readers_rss_mib"] - r["after_ingest_rss_mib"]
    rows.append({"scenario": f"one {r['value_mib']} MiB bytea row, {r['stalled_readers']} stalled "
                             "subscribers at it",
                 "walfeed": f"ingest peak RSS {r['ingest_peak_rss_mib']} MiB; stalled streams "
                            f"+{added} MiB; ReadValue {r['read_value_mib_per_s']} MiB/s",
                 "reference": f"the value: {r['value_mib']} MiB", "ratio": None,
                 "target": "< 1 MiB per stalled stream",
                 "met": added < r["stalled_readers"]})
    replication = load(out, "replication", quick)
    for r in replication["ingest"]:
        rows.append({"scenario": f"replicated ingest (3 replicas, confirm after replicated), "
                                 f"{r['txn_size']}-row transactions ({r.get('payload', 'repeated')} payloads)",
                     "walfeed": f"{r['replicated_changes_per_s']:,} changes/s",
                     "reference": f"walfeed local-only {r['local_changes_per_s']:,} changes/s",
                     "ratio": r["replicated_vs_local"], "target": ">= 0.8 x",
                     "met": r["target_met"]})
    for r in replication["latency"]:
        if not r["replicated"]:
            continue
        grpc, stream = r["grpc"]["latency_ms"], r["stream"]["latency_ms"]
        rows.append({"scenario": f"latency with replication at {r['target_changes_per_s']:,} changes/s",
                     "walfeed": f"JetStream consumer p50 {stream['p50']:.1f} / p99 {stream['p99']:.1f} ms",
                     "reference": f"gRPC feed p50 {grpc['p50']:.1f} / p99 {grpc['p99']:.1f} ms",
                     "ratio": None, "target": "every change, in order",
                     "met": r["grpc"]["complete"] and r["stream"]["complete"]})
    replicas = load(out, "replicas", quick)
    for r in replicas["results"]:
        worst = max(p["latency_ms"]["p99"] for p in r["per_instance"])
        cpu = sum(p["cpu_percent"] for p in r["per_instance"])
        rows.append({"scenario": f"{r['subscribers']:,} subscribers on {r['instances']} instance(s) at "
                                 f"{r['target_changes_per_s']:,} changes/s",
                     "walfeed": f"walfeed CPU {cpu:.0f} % in all, worst instance p99 {worst:.1f} ms; "
                                f"NATS CPU {r['nats_cpu_percent']} %",
                     "reference": "-", "ratio": None, "target": "every change to every subscriber",
                     "met": all(p["complete"] for p in r["per_instance"])})
    push = load(out, "push", quick)["results"]
    for key, label in (("json", "JSON, batches of 500"), ("debezium", "Debezium envelope, one per request")):
        r = push[key]
        rows.append({"scenario": f"push backlog to an HTTP/1.1 receiver, {label}",
                     "walfeed": f"{r['changes_per_s']:,} changes/s, {r['requests_per_s']:,} requests/s, "
                                f"CPU {r['walfeed_cpu_percent']} %",
                     "reference": f"gRPC catch-up (walfeedctl, JSON) {push['grpc_reference']['changes_per_s']:,} changes/s"
                     if key == "json" else "-",
                     "ratio": round(r["changes_per_s"] / push["grpc_reference"]["changes_per_s"], 2)
                     if key == "json" else None,
                     "target": "every change once", "met": r["complete"]})
    lat = push["latency"]
    rows.append({"scenario": f"push live at {lat['target_changes_per_s']:,} changes/s",
                 "walfeed": f"p50 {lat['latency_ms']['p50']:.1f} / p99 {lat['latency_ms']['p99']:.1f} ms "
                            f"commit to arrival",
                 "reference": "-", "ratio": None, "target": "every change once", "met": lat["complete"]})
    failover = load(out, "failover", quick)
    kills = sorted(failover["kill_seconds"])
    rows.append({"scenario": f"ingest failover after kill -9 ({len(kills)} rounds)",
                 "walfeed": f"median {kills[len(kills) // 2]:.2f} s, worst {kills[-1]:.2f} s; after SIGSTOP "
                            f"{max(failover['pause_seconds']):.2f} s (wal_sender_timeout 5 s)",
                 "reference": "-", "ratio": None, "target": "under 15 s, every change once",
                 "met": failover["complete"] and kills[-1] < 15})
    return rows


def plot(out, name, quick):
    """Ratios to reference (bars) and latency percentiles (bars), side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ingest = load(out, "ingest", quick)["results"]
    catchup_report = load(out, "catchup", quick)
    catchup = catchup_report["result"]
    catchup_target = catchup_report.get("targets", {}).get("ratio", 0.5)
    live = load(out, "live", quick)["results"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    labels = [f"ingest {r['txn_size']}-row" for r in ingest] + ["catch-up read"]
    ratios = [r["ratio"] for r in ingest] + [catchup["ratio"]]
    left.bar(labels, ratios, color="#4477aa")
    left.axhline(0.95, color="#cc6677", linestyle="--", label="ingest target 0.95 (1-row: 1.5)")
    left.axhline(catchup_target, color="#999933", linestyle=":", label=f"catch-up target {catchup_target}")
    left.set_ylabel("walfeed / reference (higher is better)")
    left.set_title("Throughput against the reference in the same run")
    left.legend(fontsize=8)
    left.tick_params(axis="x", labelsize=8)
    names = [f"{r['scenario']}\n{r['subscribers']:,} sub"
             + (f" (+{r['idle_subscribers']:,} idle)" if r.get("idle_subscribers") else "")
             + f"\n{r['target_changes_per_s'] // 1000}k/s" for r in live]
    x = range(len(live))
    for offset, key, color in ((-0.25, "p50", "#117733"), (0, "p99", "#ddcc77"), (0.25, "p999", "#882255")):
        right.bar([i + offset for i in x], [r["latency_ms"][key] for r in live], width=0.25,
                  label=key, color=color)
    right.set_xticks(list(x))
    right.set_xticklabels(names, fontsize=7)
    right.set_yscale("log")
    right.set_ylabel("commit-to-consumer latency, ms (log scale)")
    right.set_title("Live feed latency")
    right.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, f"{name}.png")
    fig.savefig(path, dpi=100)
    return path


def provenance(out, skipped, quick):
    """What the summary was made of: one run of every scenario, or which were taken from earlier
    recorded runs (with their dates)."""
    if not skipped:
        return "Every scenario ran in this one run; each reference was measured in the same run as its figure."
    dates = []
    for script in skipped:
        try:
            dates.append(f"{script} ({load(out, script, quick).get('date', 'undated')})")
        except OSError:
            dates.append(f"{script} (no recorded run)")
    return ("Merged: these scenarios were not run this time but taken from their recorded runs: "
            + ", ".join(dates) + ". Each reference was measured in the same run as its figure.")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    parser.add_argument("--skip", action="append", default=[], choices=SCRIPTS,
                        help="reuse this scenario's existing results instead of running it")
    args = parser.parse_args()
    started = time.monotonic()
    timings = {}
    for script in SCRIPTS:
        if script in args.skip:
            continue
        t0 = time.monotonic()
        command = ["/usr/bin/python3", os.path.join(HERE, f"{script}.py"), "--out", args.out]
        if args.quick:
            command.append("--quick")
        print(f"== {script}", flush=True)
        subprocess.run(command, check=True)
        timings[script] = round(time.monotonic() - t0, 1)
    rows = summarize(args.out, args.quick)
    name = "summary-quick" if args.quick else "summary"
    report = {"benchmark": "summary", "date": time.strftime("%Y-%m-%d"), "machine": machine(),
              "quick": args.quick, "seconds": round(time.monotonic() - started, 1),
              "seconds_per_script": timings, "results": rows}
    previous = os.path.join(args.out, f"{name}.json")
    if len(args.skip) == len(SCRIPTS) and os.path.exists(previous):
        # Only summarized again: the last full run's timings still describe the suite.
        with open(previous) as f:
            old = json.load(f)
        report["seconds"], report["seconds_per_script"] = old["seconds"], old["seconds_per_script"]
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = ["| scenario | walfeed | reference | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        ratio = "-" if r["ratio"] is None else r["ratio"]
        lines.append(f"| {r['scenario']} | {r['walfeed']} | {r['reference']} | {ratio} | {r['target']} | {met} |")
    m = report["machine"]
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(f"# walfeed benchmarks ({report['date']}, {m['cores']} cores, {m['memory_gib']} GiB, "
                f"PostgreSQL {m['postgres']})\n\n{provenance(args.out, args.skip, args.quick)} Details in "
                f"each scenario's own results file. Plot: {name}.png.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"plot: {plot(args.out, name, args.quick)}")


if __name__ == "__main__":
    sys.exit(main())
