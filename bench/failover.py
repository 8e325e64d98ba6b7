#!/usr/bin/python3
"""Ingest failover: how long an ingest group (--ingest=auto) goes without ingesting when its
ingester is killed -9, or paused (SIGSTOP) until PostgreSQL's wal_sender_timeout ends its
walsender.

A private PostgreSQL and a private 3-node NATS JetStream cluster run on this machine, with three
walfeeds of one group (--confirm-after=replicated, wal_sender_timeout=5s in the conninfo's
options) while pgbench commits 10-row transactions at a fixed rate. Each round finds the member
that ingests (walfeedctl info: role), notes PostgreSQL's WAL end, kills (or pauses) that member
and measures the time until another member holds a change committed after that point; a killed
member is restarted and rejoins as a replica, a paused one is resumed and must step down. At the
end every member must hold the same feed, and as many changes as PostgreSQL has rows.

Results go to bench/results/failover.{json,md}.

  bench/failover.py [--quick] [--kills N] [--rate R]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (BUILD_BIN, HERE, PG_BIN, InsertWorkload, free_port, machine,  # noqa: E402
                      postgres_and_nats, wait_for_health, write_results)

WALFEEDCTL = os.path.join(BUILD_BIN, "walfeedctl")


def info(member):
    """The member's FeedInfo as a dict; None when it does not answer."""
    done = subprocess.run([WALFEEDCTL, "info", "--server", member["server"]], capture_output=True,
                          text=True, timeout=10)
    return json.loads(done.stdout) if done.returncode == 0 else None


def lsn_number(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class Group:
    def __init__(self, walfeed, root, pg, db, urls):
        self.walfeed, self.root = walfeed, root
        self.members = []
        servers = [f"127.0.0.1:{free_port()}" for _ in range(3)]
        for i, server in enumerate(servers):
            self.members.append({
                "name": f"member{i}", "server": server, "proc": None,
                "args": ["--pg", pg.conninfo_for(db) + " options='-c wal_sender_timeout=5s'", "--slot", db,
                         "--ingest", "auto", "--instance-name", f"member{i}", "--replicate-to", urls,
                         "--replication-stream", db, "--confirm-after", "replicated",
                         "--bootstrap-from", ",".join(servers), "--compaction-interval", "off",
                         "--data-dir", os.path.join(root, f"member{i}.data"), "--listen", server]})

    def start(self, member):
        log = open(os.path.join(self.root, f"{member['name']}.log"), "a")
        member["proc"] = subprocess.Popen([self.walfeed, *member["args"]], stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def ingester(self, except_member=None, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in self.members:
                if member is except_member:
                    continue
                described = info(member)
                if described and described.get("role") == "ingester" and \
                        described.get("sourceState") == "streaming":
                    return member
            time.sleep(0.1)
        raise RuntimeError("no member ingests")

    def wait_for_ingest_after(self, lsn, gone, since, timeout=120):
        """Seconds from `since` until a member other than `gone` holds a change committed after `lsn`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for member in self.members:
                if member is gone:
                    continue
                described = info(member)
                if described and int(described.get("newestLsn", "0")) > lsn:
                    return time.monotonic() - since
            time.sleep(0.05)
        raise RuntimeError("no member took over ingest")

    def stop(self):
        for member in self.members:
            if member["proc"] and member["proc"].poll() is None:
                member["proc"].send_signal(signal.SIGCONT)
                member["proc"].terminate()
                member["proc"].wait(timeout=60)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=10, help="kill -9 rounds (one SIGSTOP round besides)")
    parser.add_argument("--rate", type=int, default=2000, help="changes/s written meanwhile")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (CI)")
    parser.add_argument("--walfeed", default=os.path.join(BUILD_BIN, "walfeed"))
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    if args.quick:
        args.kills, args.rate = 2, 500

    kills, pauses = [], []
    with postgres_and_nats("walfeed-failover-bench-") as (root, pg, urls, _):
        db = "failover"
        workload = InsertWorkload(pg, root, db)
        pg.sql("INSERT INTO live (payload) VALUES ('first')", db=db)
        group = Group(args.walfeed, root, pg, db, urls)
        try:
            group.start(group.members[0])
            wait_for_health(group.members[0]["server"], proc=group.members[0]["proc"])
            group.ingester()
            for member in group.members[1:]:
                group.start(member)
            for member in group.members[1:]:
                wait_for_health(member["server"], proc=member["proc"], timeout=150)
            rounds = args.kills + 1
            writer = threading.Thread(target=workload.run, args=(args.rate, rounds * 12 + 10))
            writer.start()
            time.sleep(3)
            for round_number in range(rounds):
                pause = round_number == rounds // 2
                ingester = group.ingester()
                time.sleep(2)
                since = time.monotonic()
                ingester["proc"].send_signal(signal.SIGSTOP if pause else signal.SIGKILL)
                # Read after the signal: whatever commits after this point only a new ingester reads.
                lsn = lsn_number(pg.sql("SELECT pg_current_wal_lsn()"))
                took = group.wait_for_ingest_after(lsn, ingester, since)
                (pauses if pause else kills).append(round(took, 3))
                print(f"failover: {'paused' if pause else 'killed'} {ingester['name']}: {took:.3f} s", flush=True)
                if pause:
                    ingester["proc"].send_signal(signal.SIGCONT)
                    deadline = time.monotonic() + 60
                    while (info(ingester) or {}).get("role") != "replica":
                        if time.monotonic() > deadline:
                            raise RuntimeError("the resumed ingester did not step down")
                        time.sleep(0.1)
                else:
                    ingester["proc"].wait()
                    group.start(ingester)
                    wait_for_health(ingester["server"], proc=ingester["proc"], timeout=150)
            writer.join()
            committed = workload.committed()
            deadline = time.monotonic() + 300
            while True:
                heads = {(info(m) or {}).get("newestCursor") for m in group.members}
                if len(heads) == 1 and None not in heads:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the members did not converge: {heads}")
                time.sleep(0.5)
            feeds = []
            for member in group.members:
                read = subprocess.run([WALFEEDCTL, "subscribe", "--server", member["server"], "--stop-at-head",
                                       "--table", "public.live", "--format", "json"],
                                      capture_output=True, text=True, timeout=600)
                if read.returncode != 0:
                    raise RuntimeError(f"reading {member['name']}'s feed failed: {read.stderr}")
                out = read.stdout
                feeds.append([json.loads(line)["cursor"] for line in out.splitlines() if line.strip()])
            complete = all(f == feeds[0] for f in feeds) and len(feeds[0]) == committed
        finally:
            group.stop()

    report = {
        "benchmark": "failover",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "method": "PostgreSQL, a 3-node NATS JetStream cluster and three walfeeds of one ingest group "
                  "(--ingest=auto, --confirm-after=replicated, wal_sender_timeout=5s) on one machine; "
                  f"pgbench commits 10-row transactions at {args.rate:,} changes/s; each round kills -9 "
                  "(or, once, SIGSTOPs) the ingesting member and measures the time until another member "
                  "holds a change committed after the kill; members check the slot every second",
        "quick": args.quick,
        "kill_seconds": kills,
        "pause_seconds": pauses,
        "changes": committed,
        "complete": complete,
    }
    ordered = sorted(kills)
    lines = ["| what stops the ingester | rounds | takeover median | worst | every member holds every change once |",
             "|---|---|---|---|---|",
             f"| kill -9 | {len(kills)} | {ordered[len(ordered) // 2]:.2f} s | {ordered[-1]:.2f} s | "
             f"{'yes' if complete else 'NO'} ({committed:,} changes) |",
             f"| SIGSTOP (wal_sender_timeout 5 s) | {len(pauses)} | {pauses[0]:.2f} s | {max(pauses):.2f} s | "
             f"{'yes' if complete else 'NO'} |"]
    write_results(args.out, "failover-quick" if args.quick else "failover", report,
                  f"Ingest failover, PostgreSQL {PG_BIN}", "\n".join(lines))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
