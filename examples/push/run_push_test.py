#!/usr/bin/env python3
"""Proves push delivery exactly once, in order, into the example FastAPI app (app.py) under uvicorn,
against a real PostgreSQL and a real walfeed, through faults.

  /usr/bin/python3 examples/push/run_push_test.py [BUILD_DIR]   (default: the repository's build/)

A seeded writer inserts, updates and deletes rows (text with quotes, newlines and Unicode) in
steady transactions while:
  - the app answers 500 for a while, then 429 with Retry-After, then is slow (2 s, beyond the
    subscription's 1 s timeout: walfeed sends the batch again, the app must drop the repeat);
  - the app is killed (SIGKILL) and started again;
  - walfeed is killed (SIGKILL) twice, while delivering, and started again.
Then, with the writer stopped: the events file holds every change of the feed exactly once, in
order (the same cursors as `walfeedctl subscribe --stop-at-head`), and applied to an empty state it
equals SELECT. The same holds for a second subscription in Debezium's format (one envelope per
request, Debezium Server's HTTP sink style) into the same app. Every request was HTTP/1.1 with no
Upgrade. Then: a 422 pauses the subscription (FeedInfo shows the body's start, walfeedctl push list
and the metrics too); rows written meanwhile arrive after `walfeedctl push resume`, exactly once.
The signature checks (Python in app.py, Node in verify.js) accept a real request and refuse a
tampered body and an old timestamp; the app refuses both with 401. A subscription whose cursor
compaction purged past pauses with CURSOR_PURGED and, resumed from the start, delivers the current
state. Everything it starts is stopped by pid, also on failure. Exits 1 with the reason on failure.
"""
import hashlib, hmac, json, os, random, shutil, socket, subprocess, sys, tempfile, threading, time
import urllib.error, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from testlib import (Failure, check, free_port, psql, run_test, say, start_postgres,  # noqa: E402
                     stop_postgres, stop_process)
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build"))
SEED = int(os.environ.get("WALFEED_PUSH_SEED", random.randrange(1 << 30)))
SECRET = "push-test-secret-\u00e9"


def wait_for(what, condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise Failure(f"{what}: not within {seconds} s")


class World:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="walfeed-push-")
        self.pg_dir = tempfile.mkdtemp(prefix="walfeed-push-pg-")
        self.address = f"127.0.0.1:{free_port()}"
        self.metrics = f"127.0.0.1:{free_port()}"
        self.app_port = free_port()
        self.walfeed = None
        self.app = None
        self.tls_app = None
        self.events = os.path.join(self.dir, "events.jsonl")
        self.debezium_events = os.path.join(self.dir, "debezium.jsonl")
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "w", encoding="utf-8") as f:
            f.write(SECRET + "\n")

    def path(self, name):
        return os.path.join(self.dir, name)

    def start_postgres(self):
        self.conninfo = start_postgres(self.pg_dir)

    def sql(self, script):
        return psql(self.conninfo, script)

    def start_walfeed(self):
        config = {"subscriptions": [{"name": "app", "url": f"http://127.0.0.1:{self.app_port}/walfeed",
                                     "secretFile": self.secret_file, "timeoutMs": 1000, "batchChanges": 50}]}
        with open(self.path("push.json"), "w") as f:
            json.dump(config, f)
        with open(self.path("walfeed.log"), "a") as log:
            self.walfeed = subprocess.Popen(
                [os.path.join(BUILD, "bin", "walfeed"), "--pg", self.conninfo, "--listen", self.address,
                 "--data-dir", self.path("data"), "--push-config", self.path("push.json"),
                 "--metrics-listen", self.metrics, "--compaction-interval", "off"],
                stdout=subprocess.DEVNULL, stderr=log)
        wait_for("walfeed streaming", lambda: self.walfeed.poll() is None and self.info_or_none() is not None
                 and self.info_or_none().get("sourceState") == "streaming", 60)

    def kill_walfeed(self):
        self.walfeed.kill()
        self.walfeed.wait()

    def stop_walfeed(self):
        stop_process(self.walfeed, 30)

    def start_app(self):
        env = dict(os.environ, WALFEED_PUSH_SECRET=SECRET, WALFEED_EVENTS=self.events,
                   WALFEED_DEBEZIUM_EVENTS=self.debezium_events, WALFEED_LAST_REQUEST=self.path("last"))
        with open(self.path("app.log"), "a") as log:
            self.app = subprocess.Popen(
                ["/usr/bin/python3", "-m", "uvicorn", "fault_app:fault_app", "--host", "127.0.0.1",
                 "--port", str(self.app_port), "--no-access-log"],
                cwd=HERE, env=env, stdout=log, stderr=log)
        wait_for("the app listening", lambda: self.app_stats_or_none() is not None, 30)

    def kill_app(self):
        self.app.kill()
        self.app.wait()

    def app_call(self, path, payload=None, headers=None):
        data = None if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        request = urllib.request.Request(f"http://127.0.0.1:{self.app_port}{path}", data=data,
                                         headers=headers or {}, method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def app_stats_or_none(self):
        try:
            return self.app_call("/_test/stats")[1]
        except (OSError, ValueError):
            return None

    def ctl(self, *args, ok=True):
        done = subprocess.run([os.path.join(BUILD, "bin", "walfeedctl"), *args, "--server", self.address],
                              capture_output=True, text=True, timeout=120)
        if ok:
            check(done.returncode == 0, f"walfeedctl {' '.join(args)} failed: {done.stderr}")
        return done

    def info_or_none(self):
        done = subprocess.run([os.path.join(BUILD, "bin", "walfeedctl"), "info", "--server", self.address],
                              capture_output=True, text=True, timeout=30)
        return json.loads(done.stdout) if done.returncode == 0 else None

    def pushes(self):
        return {p["subscription"]["name"]: p for p in map(json.loads, self.ctl("push", "list").stdout.splitlines())}

    def log(self, name="walfeed.log"):
        path = self.path(name)
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as f:
            return f.read()[-3000:]

    def keep_logs(self):
        """Copies the logs out of the temporary directory before it is removed."""
        kept = tempfile.mkdtemp(prefix="walfeed-push-logs-")
        for name in ("walfeed.log", "app.log", "tls-app.log"):
            if os.path.exists(self.path(name)):
                shutil.copy(self.path(name), kept)
        return kept

    def stop(self):
        for process in (self.app, self.tls_app):
            if process and process.poll() is None:
                process.kill()
                process.wait()
        self.stop_walfeed()
        stop_postgres(self.pg_dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.pg_dir, ignore_errors=True)


class Writer(threading.Thread):
    """Seeded transactions of inserts, updates and deletes on items, until stopped."""

    def __init__(self, world, seed):
        super().__init__(daemon=True)
        self.world, self.random, self.stopping, self.transactions = world, random.Random(seed), threading.Event(), 0
        self.failure = None

    def run(self):
        try:
            psql = subprocess.Popen(["psql", self.world.conninfo, "-v", "ON_ERROR_STOP=1", "-qAt"],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            names = ["plain", "it's", "two\nlines", "caf\u00e9 \u2615", "tab\there", "\"quoted\"", ""]
            while not self.stopping.is_set():
                statements = []
                for _ in range(self.random.randint(1, 6)):
                    key, choice = self.random.randint(1, 300), self.random.random()
                    name = self.random.choice(names).replace("'", "''")
                    if choice < 0.5:
                        statements.append(f"INSERT INTO items VALUES ({key}, E'{name}', {self.random.randint(0, 99)}) "
                                          f"ON CONFLICT (id) DO UPDATE SET qty = items.qty + 1, name = EXCLUDED.name;")
                    elif choice < 0.8:
                        statements.append(f"UPDATE items SET qty = qty * 2 + 1 WHERE id = {key};")
                    else:
                        statements.append(f"DELETE FROM items WHERE id = {key};")
                psql.stdin.write("BEGIN;\n" + "\n".join(statements).replace("\n", " ").replace(";", ";\n") + "COMMIT;\n")
                psql.stdin.flush()
                self.transactions += 1
                time.sleep(0.02)
            psql.stdin.close()
            check(psql.wait(timeout=60) == 0, f"the writer's psql failed: {psql.stderr.read()}")
        except Exception as error:  # reported by the main thread
            self.failure = error


def applied_state(changes):
    """The rows of items after applying `changes` (walfeed's JSON) to an empty table."""
    state = {}
    for change in changes:
        op = change["op"]
        if op == "TRUNCATE":
            state.clear()
            continue
        if op == "DELETE":
            state.pop(int(change["key"][0]["int"]), None)
            continue
        columns = {c["name"]: c for c in change["after"]}
        state[int(columns["id"]["int"])] = (columns["name"].get("text", ""), int(columns["qty"]["int"]))
    return state


def debezium_state(envelopes):
    """The rows of items after applying Debezium `envelopes` to an empty table."""
    state = {}
    for envelope in envelopes:
        if envelope["op"] == "d":
            state.pop(envelope["before"]["id"], None)
        else:
            state[envelope["after"]["id"]] = (envelope["after"]["name"], envelope["after"]["qty"])
    return state


def database_state(world):
    rows = {}
    out = world.sql("SELECT json_agg(json_build_array(id, name, qty)) FROM items").strip()
    for id_, name, qty in json.loads(out) if out else []:
        rows[id_] = (name, qty)
    return rows


def read_events(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def feed_changes(world):
    done = world.ctl("subscribe", "--from-lsn", "0", "--stop-at-head")
    return [json.loads(line) for line in done.stdout.splitlines()]


def wait_delivered(world, names, seconds=120):
    """Every subscription in `names` has delivered up to the head and is caught up."""
    def caught_up():
        info = world.info_or_none()
        if info is None:
            return False
        head = info["newestCursor"]
        pushes = world.pushes()
        return all(pushes[n]["cursor"] == head and pushes[n]["state"] == "caught_up" for n in names)
    wait_for(f"{names} caught up with the head", caught_up, seconds)


def set_mode(world, mode, seconds):
    status, _ = world.app_call("/_test/mode", {"mode": mode, "seconds": seconds})
    check(status == 200, f"the app refused mode {mode}")


def tls_receiver(world):
    """The example app over https on a free port, its certificate signed by a CA made here
    (world.path("ca.pem")); returns its port and events file."""
    openssl = lambda *args: subprocess.run(["openssl", *args], cwd=world.dir, check=True,  # noqa: E731
                                           capture_output=True, timeout=60)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=walfeed push test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    with open(world.path("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "1", "-extfile", "san.ext")
    port, events = free_port(), world.path("tls-events.jsonl")
    env = dict(os.environ, WALFEED_PUSH_SECRET=SECRET, WALFEED_EVENTS=events)
    with open(world.path("tls-app.log"), "a") as log:
        world.tls_app = subprocess.Popen(
            ["/usr/bin/python3", "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", "--ssl-keyfile", world.path("server.key"), "--ssl-certfile", world.path("server.pem")],
            cwd=HERE, env=env, stdout=log, stderr=log)
    wait_for("the https app listening", lambda: port_open(port), 30)
    return port, events


def port_open(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def metric(world, name, labels):
    with urllib.request.urlopen(f"http://{world.metrics}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def run(world):
    say(f"seed {SEED} (WALFEED_PUSH_SEED={SEED} repeats this run)")
    world.start_postgres()
    world.sql("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL)")
    world.start_app()
    with open(world.path("broken-push.json"), "w") as f:
        f.write('{"subscriptions": [{"name": "x", "url": "gopher://nowhere"}]}')
    broken = subprocess.run([os.path.join(BUILD, "bin", "walfeed"), "--pg", world.conninfo, "--listen",
                             world.address, "--data-dir", world.path("broken-data"), "--push-config",
                             world.path("broken-push.json")], capture_output=True, text=True, timeout=60)
    check(broken.returncode != 0 and "push config" in broken.stderr and "http://" in broken.stderr,
          f"a bad push config was not refused with a sentence: {broken.returncode} {broken.stderr}")
    world.start_walfeed()
    world.ctl("push", "create", "dbz", "--url", f"http://127.0.0.1:{world.app_port}/debezium", "--format", "debezium",
              "--tables", "public.items", "--timeout", "1s")
    writer = Writer(world, SEED)
    writer.start()
    try:
        time.sleep(3)
        say("the app answers 500 for 3 s")
        set_mode(world, "fail500", 3)
        time.sleep(4)
        say("the app answers 429 with Retry-After: 1 for 3 s")
        set_mode(world, "fail429", 3)
        time.sleep(4)
        say("the app is slow (2 s, the timeout is 1 s) for 3 s")
        set_mode(world, "slow", 3)
        time.sleep(4)
        say("the app is killed with SIGKILL, started again 2 s later")
        first_app = world.app_stats_or_none()
        world.kill_app()
        time.sleep(2)
        world.start_app()
        time.sleep(3)
        for kill in (1, 2):
            say(f"walfeed is killed with SIGKILL ({kill} of 2) while delivering, and started again")
            set_mode(world, "slow", 2)  # a batch is in flight, or was applied without its answer
            time.sleep(1.5)
            world.kill_walfeed()
            time.sleep(1)
            world.start_walfeed()
            time.sleep(3)
    finally:
        writer.stopping.set()
        writer.join(timeout=60)
    if writer.failure:
        raise writer.failure
    say(f"writer stopped after {writer.transactions} transactions")
    wait_delivered(world, ["app", "dbz"])

    feed = feed_changes(world)
    events = read_events(world.events)
    delivered = [change for batch in events for change in batch["changes"]]
    check(len(feed) > 500, f"only {len(feed)} changes in the feed")
    feed_cursors = [c["cursor"] for c in feed]
    delivered_cursors = [c["cursor"] for c in delivered]
    if delivered_cursors != feed_cursors:
        missing = sorted(set(feed_cursors) - set(delivered_cursors))[:5]
        repeated = len(delivered_cursors) - len(set(delivered_cursors))
        raise Failure(f"the app holds {len(delivered_cursors)} changes, the feed {len(feed_cursors)}: "
                      f"{repeated} repeated, missing e.g. {missing}")
    check(len({b["key"] for b in events}) == len(events), "a batch key was applied twice")
    truth = database_state(world)
    check(applied_state(delivered) == truth,
          f"the app's state differs from SELECT ({len(applied_state(delivered))} vs {len(truth)} rows)")
    say(f"app: {len(delivered)} changes in {len(events)} batches, exactly once, in order, equal to SELECT")

    dbz = [envelope for batch in read_events(world.debezium_events) for envelope in batch["changes"]]
    check(len(dbz) == len(feed), f"the Debezium subscription delivered {len(dbz)} envelopes, the feed has {len(feed)}")
    ops = {"INSERT": "c", "UPDATE": "u", "DELETE": "d", "READ": "r", "TRUNCATE": "t"}
    check([e["op"] for e in dbz] == [ops[c["op"]] for c in feed], "Debezium envelopes out of order")
    check(debezium_state(dbz) == truth, "the Debezium envelopes applied differ from SELECT")
    say(f"dbz: {len(dbz)} Debezium envelopes, one per request, in order, equal to SELECT")

    stats = world.app_stats_or_none()
    pushes = world.pushes()
    for seen in (first_app, stats):
        check(set(seen["http_versions"]) == {"1.1"} and seen["upgrade_headers"] == 0,
              f"requests were not all plain HTTP/1.1: {seen}")
    check(first_app["answered"].get("fail500", 0) > 0 and first_app["answered"].get("fail429", 0) > 0
          and first_app["answered"].get("slow", 0) > 0, f"the faults were not met: {first_app}")
    check(first_app["duplicates"] + stats["duplicates"] > 0,
          f"no batch was sent again after a timeout or a kill: {first_app}, {stats}")
    check(int(pushes["app"].get("retries", 0)) > 0, f"no retries counted: {pushes['app']}")
    say(f"app: answered {first_app['answered']} then {stats['answered']}, repeats dropped "
        f"{first_app['duplicates'] + stats['duplicates']}; walfeed counted {pushes['app']['retries']} retries")

    say("the app refuses batches with 422: the subscription pauses")
    set_mode(world, "reject422", 1000)
    world.sql("INSERT INTO items VALUES (1001, 'while paused', 1)")
    paused = wait_for("app paused", lambda: (lambda p: p if p["state"] == "paused" else None)(world.pushes()["app"]), 30)
    check(paused["pauseReason"] == "HTTP_4XX" and "422" in paused["lastError"]
          and "rejected by the test app" in paused["lastError"], f"pause not explained: {paused}")
    info = world.info_or_none()
    check(any(p["subscription"]["name"] == "app" and p["state"] == "paused" for p in info["pushSubscriptions"]),
          "FeedInfo does not show the pause")
    check(metric(world, "walfeed_push_paused", {"subscription": "app"}) == 1, "the paused metric is not 1")
    world.sql("INSERT INTO items VALUES (1002, 'also while paused', 2); DELETE FROM items WHERE id = 1001")
    time.sleep(2)
    check(world.pushes()["app"]["state"] == "paused", "the subscription went on while paused")
    set_mode(world, "ok", 1)
    world.ctl("push", "resume", "app")
    wait_delivered(world, ["app"])
    delivered = [change for batch in read_events(world.events) for change in batch["changes"]]
    check([c["cursor"] for c in delivered] == [c["cursor"] for c in feed_changes(world)],
          "after resume the app's changes differ from the feed")
    check(applied_state(delivered) == database_state(world), "after resume the app's state differs from SELECT")
    check(metric(world, "walfeed_push_paused", {"subscription": "app"}) == 0, "the paused metric stays 1")
    check(metric(world, "walfeed_push_delivered_changes_total", {"subscription": "app"}) == len(delivered),
          "walfeed_push_delivered_changes_total differs from what the app holds")
    say("resumed from the right cursor: every change once, equal to SELECT")

    say("signatures: Python and Node accept a real request, refuse a tampered body and an old timestamp")
    sys.path.insert(0, HERE)
    os.environ.setdefault("WALFEED_EVENTS", world.path("scratch-events.jsonl"))
    os.environ.setdefault("WALFEED_PUSH_SECRET", SECRET)
    import app as example
    with open(world.path("last.body"), "rb") as f:
        body = f.read()
    with open(world.path("last.sig")) as f:
        header = f.read()
    secret = SECRET.encode()
    timestamp = int(dict(p.split("=", 1) for p in header.split(","))["t"])
    tampered = body.replace(b'"op":"', b'"op":"X', 1)
    old = timestamp - 600
    old_header = f"t={old},v1=" + hmac.new(secret, f"{old}.".encode() + body, hashlib.sha256).hexdigest()
    check(example.verify_signature(secret, header, body, now=timestamp), "Python refuses a real signature")
    check(not example.verify_signature(secret, header, tampered, now=timestamp), "Python accepts a tampered body")
    check(not example.verify_signature(secret, old_header, body), "Python accepts an old timestamp")
    for hdr, data, want in ((header, body, 0), (header, tampered, 1), (old_header, body, 1)):
        path = world.path("node-body")
        with open(path, "wb") as f:
            f.write(data)
        now = [str(timestamp)] if hdr == header else []
        done = subprocess.run(["node", os.path.join(HERE, "verify.js"), world.secret_file, hdr, path, *now],
                              capture_output=True, text=True, timeout=30)
        check(done.returncode == want, f"verify.js answered {done.returncode} ({done.stdout.strip()}), expected {want}")
    for hdr, data in ((header, tampered), (old_header, body)):
        status, _ = world.app_call("/walfeed", data, {"Walfeed-Signature": hdr, "Idempotency-Key": "forged",
                                                      "Content-Type": "application/json"})
        check(status == 401, f"the app answered {status} to a forged request, not 401")

    say("compaction purges past a paused subscription's cursor: it pauses with CURSOR_PURGED")
    world.ctl("push", "create", "late", "--url", f"http://127.0.0.1:{world.app_port}/debezium", "--format", "debezium",
              "--from-head")
    world.ctl("push", "pause", "late")
    world.sql("INSERT INTO items VALUES (2001, 'doomed', 1); DELETE FROM items WHERE id = 2001")
    wait_for("the delete in the log", lambda: world.info_or_none()["newestCursor"] != world.pushes()["late"]["cursor"], 30)
    world.ctl("compact", "--compaction-lag", "0s", "--delete-retention", "0s")
    world.ctl("push", "resume", "late")
    late = wait_for("late paused again", lambda: (lambda p: p if p["state"] == "paused" else None)(world.pushes()["late"]), 30)
    check(late["pauseReason"] == "CURSOR_PURGED", f"not paused for the purge: {late}")
    before = sum(1 for _ in open(world.debezium_events, encoding="utf-8"))
    world.ctl("push", "resume", "late", "--to-start")
    wait_delivered(world, ["late"], 60)
    again = [e for b in read_events(world.debezium_events)[before:] for e in b["changes"]]
    check(again and debezium_state(again) == database_state(world),
          f"after the reset the app did not apply the current state ({len(again)} envelopes): its keys "
          "must differ from the first delivery's")
    say("resumed from the start, it delivered the current state")

    say("https: a receiver with a certificate of a private CA, trusted with --ca-file")
    tls_port, tls_events = tls_receiver(world)
    world.ctl("push", "create", "untrusted", "--url", f"https://127.0.0.1:{tls_port}/walfeed", "--from-head",
              "--secret-file", world.secret_file)
    world.ctl("push", "create", "tls", "--url", f"https://127.0.0.1:{tls_port}/walfeed", "--from-head",
              "--secret-file", world.secret_file, "--ca-file", world.path("ca.pem"))
    world.sql("INSERT INTO items VALUES (3001, 'over TLS', 1)")
    wait_delivered(world, ["tls"], 30)
    over_tls = [c for b in read_events(tls_events) for c in b["changes"]]
    check([c["after"][1]["text"] for c in over_tls] == ["over TLS"], f"over TLS the app got {over_tls}")
    untrusted = wait_for("untrusted retrying", lambda: (lambda p: p if p["state"] == "retrying" else None)(
        world.pushes()["untrusted"]), 30)
    check("certificate" in untrusted["lastError"].lower(), f"no certificate error: {untrusted}")
    check(world.pushes()["tls"]["httpVersion"] == "HTTP/1.1", "uvicorn speaks HTTP/1.1 only, over TLS too")
    world.ctl("push", "delete", "untrusted")
    world.ctl("push", "delete", "tls")

    refused = world.ctl("push", "create", "app", "--url", "http://127.0.0.1:1/other", ok=False)
    check(refused.returncode == 1 and "exists with other settings" in refused.stderr, f"a clash was not refused: {refused.stderr}")
    refused = world.ctl("push", "create", "bad", "--url", "ftp://x", ok=False)
    check(refused.returncode == 1 and "http://" in refused.stderr, f"a bad URL was not refused: {refused.stderr}")
    refused = world.ctl("push", "create", "bad", "--url", "http://x/", "--table", "public.nope", ok=False)
    check(refused.returncode == 1 and "nope" in refused.stderr, f"an unknown table was not refused: {refused.stderr}")
    world.ctl("push", "delete", "late")
    check("late" not in world.pushes(), "a deleted subscription is still listed")


def main():
    check(os.access(os.path.join(BUILD, "bin", "walfeed"), os.X_OK), f"no walfeed in {BUILD}/bin: build it first")
    for tool in ("node", "psql"):
        check(shutil.which(tool), f"{tool} is not installed (scripts/install-deps.sh)")
    world = World()
    try:
        run(world)
    except BaseException:
        print(f"walfeed's log ends with:\n{world.log()}\nthe app's log ends with:\n{world.log('app.log')}\n"
              f"all logs: {world.keep_logs()}", file=sys.stderr)
        raise
    finally:
        world.stop()
    say("push: every check passed")


if __name__ == "__main__":
    run_test(main, f" (seed {SEED})")
