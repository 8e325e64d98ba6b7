#!/usr/bin/env python3
"""Proves the example consumers (python/consumer.py, node/consumer.js) work against a real
PostgreSQL and a real walfeed.

  /usr/bin/python3 examples/run_examples_test.py [BUILD_DIR]    (default: the repository's build/)

Starts a private PostgreSQL 15 (scripts/pg-local.sh) and walfeed (BUILD_DIR/bin/walfeed, bearer
token required, 1 s progress interval), writes rows, and checks for each example that:
  - a first run with --stop-at-head prints exactly the changes so far, in order, with their cursors;
  - a second run with the same cursor file prints only the changes committed since;
  - SIGTERM in the middle of a backlog of 3,000 changes (up to three times) exits 0 with the last
    printed cursor saved, and the runs together neither lose nor repeat a change;
  - SIGTERM while idle at the head (after several progress messages) exits 0 and leaves the cursor
    file at the last change's cursor (a progress message at the head carries that same cursor:
    every table is subscribed, so no filtered change can move it on);
  - a walfeed restart under an open stream is survived (reconnect with backoff on UNAVAILABLE);
  - a 20 MiB row and a 3 MB message (sent out of line) are fetched and printed whole;
  - without the token it fails with UNAUTHENTICATED;
  - SIGTERM while it waits to reconnect ends it at once;
  - a bare CANCELLED (what gRPC itself answers a call that reaches walfeed in the last instant of
    its shutdown) is retried from the last cursor, against a scripted server in this process.
Everything it starts is stopped by pid, also on failure. Exits 1 with the reason on any failure.
Needs python3-grpcio, python3-protobuf, protobuf-compiler-grpc, nodejs and `npm ci` in node/.
"""
import base64, hashlib, json, os, queue, shutil, signal, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from testlib import (Failure, check, free_port, psql, run_test, say, start_postgres,  # noqa: E402
                     stop_postgres, stop_process)
REPO = os.path.dirname(HERE)
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build"))
TOKEN = "example-test-token"
ADMIN_TOKEN = "example-admin-token"
STARTED = []  # every Consumer, killed at the end whatever happened
EXAMPLES = {
    "python": ["/usr/bin/python3", os.path.join(HERE, "python", "consumer.py")],
    "node": ["node", os.path.join(HERE, "node", "consumer.js")],
}


class Consumer:
    """One run of an example, its stdout read line by line on a thread."""

    def __init__(self, name, server, cursor_file, stop_at_head, token=TOKEN, consumer=None):
        env = dict(os.environ)
        env.pop("WALFEED_TOKEN", None)
        if token:
            env["WALFEED_TOKEN"] = token
        where = ["--consumer", consumer] if consumer else ["--cursor-file", cursor_file]
        argv = EXAMPLES[name] + ["--server", server] + where
        self.name = name
        self.process = subprocess.Popen(argv + (["--stop-at-head"] if stop_at_head else []), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, self.stderr, self.printed = queue.Queue(), [], []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        STARTED.append(self)

    def _read_stdout(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)  # the end of the output

    def take(self, count, timeout, until_end=False):
        """Waits until `count` lines in all were printed. If the output ends first, fails, or with
        `until_end` returns False."""
        deadline = time.monotonic() + timeout
        while len(self.printed) < count:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise Failure(f"{self.name}: printed {len(self.printed)} changes in {timeout} s, "
                              f"expected {count}; stderr: {''.join(self.stderr)[-2000:]}")
            if line is None:
                self.lines.put(None)
                check(until_end, f"{self.name}: exited after {len(self.printed)} changes, expected {count}; "
                                 f"stderr: {''.join(self.stderr)[-2000:]}")
                return False
            try:
                self.printed.append(json.loads(line))
            except ValueError:
                raise Failure(f"{self.name}: printed a line that is not JSON: {line!r}")
        return True

    def finish(self, timeout=20, want_code=0):
        """Waits for exit and reads the rest of the output; returns (exit code, printed changes).
        Fails unless the exit code is `want_code` (None: any)."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise Failure(f"{self.name}: did not exit within {timeout} s; stderr: {''.join(self.stderr)[-2000:]}")
        while self.take(len(self.printed) + 1, timeout=5, until_end=True):
            pass
        check(want_code is None or code == want_code,
              f"{self.name}: exited {code}, expected {want_code}; stderr: {''.join(self.stderr)[-2000:]}")
        return code, self.printed

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class World:
    """A private PostgreSQL and a walfeed on it, in a temp dir; stop() ends both."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="walfeed-examples-")
        self.pg_dir = tempfile.mkdtemp(prefix="walfeed-examples-pg-")  # pg-local.sh gives it to postgres
        self.walfeed = None
        self.address = f"127.0.0.1:{free_port()}"

    def start_postgres(self):
        self.conninfo = start_postgres(self.pg_dir)
        with open(os.path.join(self.dir, "tokens"), "w") as f:
            f.write(TOKEN + "\n")
        with open(os.path.join(self.dir, "admin-tokens"), "w") as f:
            f.write(ADMIN_TOKEN + "\n")

    def sql(self, script):
        return psql(self.conninfo, script)

    def start_walfeed(self):
        with open(os.path.join(self.dir, "walfeed.log"), "a") as log:
            self.walfeed = subprocess.Popen(
                [os.path.join(BUILD, "bin", "walfeed"), "--pg", self.conninfo, "--listen", self.address,
                 "--data-dir", os.path.join(self.dir, "data"), "--progress-interval", "1s",
                 "--auth-token-file", os.path.join(self.dir, "tokens"),
                 "--admin-token-file", os.path.join(self.dir, "admin-tokens")],
                stdout=subprocess.DEVNULL, stderr=log)
        stub, deadline = feed_stub(self.address), time.monotonic() + 30
        while time.monotonic() < deadline:
            check(self.walfeed.poll() is None, f"walfeed exited: {self.log()}")
            try:
                info = stub.GetFeedInfo(walfeed_pb2.GetFeedInfoRequest(), metadata=AUTH, timeout=1)
                if info.source_state == "streaming":
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise Failure(f"walfeed did not start streaming in 30 s: {self.log()}")

    def stop_walfeed(self):
        stop_process(self.walfeed, 20)

    def log_id(self):
        return feed_stub(self.address).GetFeedInfo(walfeed_pb2.GetFeedInfoRequest(), metadata=AUTH,
                                                   timeout=10).log_id

    def log(self):
        path = os.path.join(self.dir, "walfeed.log")
        if not os.path.exists(path):
            return ""
        with open(path) as f:
            return f.read()[-3000:]

    def stop(self):
        self.stop_walfeed()
        stop_postgres(self.pg_dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        shutil.rmtree(self.pg_dir, ignore_errors=True)


def feed_stub(address):
    return walfeed_pb2_grpc.ChangeFeedStub(grpc.insecure_channel(address))


def feed(world, count):
    """The whole feed, read by the test itself, once it holds `count` changes."""
    stub, deadline = feed_stub(world.address), time.monotonic() + 30
    while True:
        request = walfeed_pb2.SubscribeRequest(from_lsn=0, stop_at_head=True)
        changes = [c for r in stub.Subscribe(request, metadata=AUTH, timeout=10) for c in r.changes]
        if len(changes) >= count or time.monotonic() > deadline:
            check(len(changes) == count, f"the feed holds {len(changes)} changes, expected {count}")
            return changes
        time.sleep(0.1)


def row(id_, name, qty=None, price=None, ok=None, ratio=None, tags=None, blob=None, at=None):
    """A row of public.items as the examples print it (int8/int4 as strings, numeric as text...)."""
    return {"id": str(id_), "name": name, "qty": None if qty is None else str(qty), "price": price, "ok": ok,
            "ratio": ratio, "tags": tags, "blob": blob, "at": at}


class Expected:
    """What the examples must print, built beside the SQL that makes it; cursors come from the feed."""

    def __init__(self):
        self.changes = []

    def add(self, op, new=None, old_id=None):
        key = {"id": new["id"] if new else str(old_id)}
        self.changes.append({"op": op, "table": "public.items", "key": key, "after": dict(new) if new else None})

    def with_cursors(self, world, start=0):
        changes = feed(world, len(self.changes))
        for want, got in zip(self.changes, changes):
            want["cursor"] = got.cursor
        return self.changes[start:]


def check_printed(name, what, printed, expected):
    for i, (got, want) in enumerate(zip(printed, expected)):
        check(got == want, f"{name}, {what}: change #{i} is\n  {json.dumps(got)[:3000]}\n"
                           f"expected\n  {json.dumps(want)[:3000]}")
    check(len(printed) == len(expected), f"{name}, {what}: printed {len(printed)} changes, expected {len(expected)}")


def check_cursor_file(name, path, cursor, log_id):
    """The file holds the cursor on its first line and the log's id on the second."""
    check(os.path.exists(path), f"{name}: saved no cursor file ({path})")
    with open(path) as f:
        lines = f.read().strip().split("\n")
    check(lines[0] == cursor, f"{name}: cursor file holds {lines[0]!r}, expected {cursor!r}")
    check(lines[1:] == [f"log_id={log_id}"],
          f"{name}: cursor file holds {lines[1:]!r} after the cursor, expected the log id {log_id!r}")


def run(world):
    expected = Expected()
    world.sql("CREATE TABLE items (id int8 PRIMARY KEY, name text, qty int4, price numeric(10,2), ok bool, "
              "ratio float8, tags jsonb, blob bytea, at timestamptz);\n"
              "INSERT INTO items VALUES (0, 'zero', 0, 0, false, 0.25, '[]', '', '2026-01-01 00:00:00+00');")
    zero = row(0, "zero", 0, "0.00", False, 0.25, "[]", "", "2026-01-01T00:00:00.000000Z")
    expected.add("READ", zero)
    world.start_walfeed()
    say(f"PostgreSQL and walfeed are up ({world.address})")

    # Phase 1: every kind of value, INSERT/UPDATE/DELETE, one multi-row transaction.
    world.sql("INSERT INTO items VALUES (1, 'one', 1, 9.5, true, 1.5, '{\"a\": [1, 2]}', '\\xdeadbeef', "
              "'2026-01-02 03:04:05.123456+00'), (2, 'two', 2, NULL, NULL, NULL, NULL, NULL, NULL), "
              "(3, 'three', 3, -1234567.89, false, -0.5, 'null', '\\x00', NULL);\n"
              "UPDATE items SET qty = qty + 10 WHERE id = 1;\n"
              "DELETE FROM items WHERE id = 2;\n"
              "UPDATE items SET name = NULL, ratio = 'NaN' WHERE id = 3;\n")
    one = row(1, "one", 1, "9.50", True, 1.5, '{"a": [1, 2]}', "3q2+7w==", "2026-01-02T03:04:05.123456Z")
    three = row(3, "three", 3, "-1234567.89", False, -0.5, "null", "AA==")
    expected.add("INSERT", one)
    expected.add("INSERT", row(2, "two", 2))
    expected.add("INSERT", three)
    one["qty"] = "11"
    expected.add("UPDATE", one)
    expected.add("DELETE", old_id=2)
    three.update(name=None, ratio="NaN")
    expected.add("UPDATE", three)
    phase1 = expected.with_cursors(world)
    cursor_files = {name: os.path.join(world.dir, f"{name}.cursor") for name in EXAMPLES}
    for name in EXAMPLES:
        _, printed = Consumer(name, world.address, cursor_files[name], stop_at_head=True).finish()
        check_printed(name, "first run from an empty cursor file", printed, phase1)
        check_cursor_file(name, cursor_files[name], phase1[-1]["cursor"], world.log_id())
        say(f"ok {name}: a first run printed the {len(printed)} changes so far")

    # Phase 2: a second run prints only what was committed since, from the second address given.
    world.sql("INSERT INTO items (id, name) VALUES (4, 'four');\n"
              "UPDATE items SET name = 'ZERO' WHERE id = 0;\nDELETE FROM items WHERE id = 3;\n")
    start = len(expected.changes)
    expected.add("INSERT", row(4, "four"))
    zero["name"] = "ZERO"
    expected.add("UPDATE", zero)
    expected.add("DELETE", old_id=3)
    # The first of two addresses is dead (an instance of the group that is down): the consumer
    # moves on to the next one.
    phase2 = expected.with_cursors(world, start)
    for name in EXAMPLES:
        second = Consumer(name, f"127.0.0.1:{free_port()},{world.address}", cursor_files[name],
                          stop_at_head=True)
        _, printed = second.finish()
        check_printed(name, "second run, resumed from the saved cursor", printed, phase2)
        check_cursor_file(name, cursor_files[name], phase2[-1]["cursor"], world.log_id())
        check("on the next address" in "".join(second.stderr),
              f"{name}: never moved past the dead address: {''.join(second.stderr)!r}")
        say(f"ok {name}: a second run, its first address dead, printed only the {len(printed)} new changes")

    # Phase 3: SIGTERM in the middle of a backlog of 3,000 changes, then a restart.
    start = len(expected.changes)
    script = []
    for t in range(600):
        ids = range(1000 + 5 * t, 1005 + 5 * t)
        script.append("INSERT INTO items (id, name) VALUES " + ", ".join(f"({i}, 'n{i}')" for i in ids) + ";")
        for i in ids:
            expected.add("INSERT", row(i, f"n{i}"))
    world.sql("\n".join(script))
    phase3 = expected.with_cursors(world, start)
    for name in EXAMPLES:
        printed, runs = [], []
        for wait_for in (302, 403, 604):  # odd counts: the SIGTERMs land at different places in a transaction
            consumer = Consumer(name, world.address, cursor_files[name], stop_at_head=False)
            consumer.take(wait_for, timeout=20)
            consumer.process.send_signal(signal.SIGTERM)
            _, got = consumer.finish(timeout=10)
            printed += got
            runs.append(len(got))
            check_cursor_file(name, cursor_files[name], printed[-1]["cursor"], world.log_id())
            # node handles a signal between batches (500 changes): a later run may reach the end.
            check(len(runs) > 1 or len(printed) < len(phase3),
                  f"{name}: printed all {len(phase3)} changes before the first SIGTERM")
            if len(printed) >= len(phase3):
                break
        _, got = Consumer(name, world.address, cursor_files[name], stop_at_head=True).finish()
        runs.append(len(got))
        check_printed(name, f"runs stopped by SIGTERM after {runs[:-1]} changes, then a last run", printed + got,
                      phase3)
        say(f"ok {name}: {len(phase3)} changes over runs of {runs}, all but the last stopped by SIGTERM")

    # Phase 4: SIGTERM while idle at the head (after progress messages: one a second), then a
    # walfeed restart under open streams.
    idle = {name: Consumer(name, world.address, cursor_files[name], stop_at_head=False) for name in EXAMPLES}
    time.sleep(2.5)
    for name, consumer in idle.items():
        consumer.process.send_signal(signal.SIGTERM)
        _, printed = consumer.finish(timeout=10)
        check(not printed, f"{name}: idle at the head, printed {len(printed)} changes")
        check_cursor_file(name, cursor_files[name], phase3[-1]["cursor"], world.log_id())
        say(f"ok {name}: SIGTERM while idle at the head")
    live = {name: Consumer(name, world.address, cursor_files[name], stop_at_head=False) for name in EXAMPLES}
    time.sleep(1.5)
    world.stop_walfeed()
    world.start_walfeed()
    start = len(expected.changes)
    world.sql("INSERT INTO items (id, name) VALUES (5, 'five');\nDELETE FROM items WHERE id = 4;\n")
    expected.add("INSERT", row(5, "five"))
    expected.add("DELETE", old_id=4)
    phase4 = expected.with_cursors(world, start)
    for name, consumer in live.items():
        consumer.take(len(phase4), timeout=30)
        consumer.process.send_signal(signal.SIGTERM)
        _, printed = consumer.finish(timeout=10)
        check_printed(name, "live across a walfeed restart", printed, phase4)
        check_cursor_file(name, cursor_files[name], phase4[-1]["cursor"], world.log_id())
        check("server unavailable" in "".join(consumer.stderr), f"{name}: never saw walfeed's restart")
        say(f"ok {name}: reconnected across a walfeed restart and printed the {len(printed)} changes since")

    # Phase 5: values too large for one stream message (20 MiB of text, a 600 kB bytea, a 3 MB
    # message) arrive as references: each example fetches them with ReadValue and prints them whole.
    start = len(expected.changes)
    world.sql("INSERT INTO items (id, name, blob) SELECT 6, string_agg(md5(g::text), ''), "
              "decode(repeat('ab', 600000), 'hex') FROM generate_series(1, 655360) g;\n"
              "SELECT pg_logical_emit_message(true, 'bulk', repeat('m', 3000000));\n")
    big = "".join(hashlib.md5(str(g).encode()).hexdigest() for g in range(1, 655361))
    expected.add("INSERT", row(6, big, blob=base64.b64encode(b"\xab" * 600000).decode()))
    expected.changes.append({"op": "MESSAGE", "table": ".", "key": {}, "after": None,
                             "message": {"prefix": "bulk", "content": base64.b64encode(b"m" * 3000000).decode()}})
    phase5 = expected.with_cursors(world, start)
    for name in EXAMPLES:
        _, printed = Consumer(name, world.address, cursor_files[name], stop_at_head=True).finish(timeout=60)
        check_printed(name, "values sent out of line", printed, phase5)
        say(f"ok {name}: a 20 MiB row and a 3 MB message printed whole")

    # Phase 6: walfeed's data directory is lost and rebuilt (its slot dropped and made again): the
    # saved cursors belong to the old log. Each example is refused (FAILED_PRECONDITION), says
    # what to do and exits non-zero, printing nothing from the new log's unrelated positions.
    old_log_id = world.log_id()
    world.stop_walfeed()
    shutil.rmtree(os.path.join(world.dir, "data"))
    world.sql("SELECT pg_drop_replication_slot('walfeed');\n")
    world.start_walfeed()
    check(world.log_id() != old_log_id, "a rebuilt data directory kept the old log id")
    for name in EXAMPLES:
        refused = Consumer(name, world.address, cursor_files[name], stop_at_head=True)
        code, printed = refused.finish(timeout=20, want_code=None)
        stderr = "".join(refused.stderr)
        check(code != 0 and not printed and "FAILED_PRECONDITION" in stderr and "another log" in stderr,
              f"{name}: a cursor of the old log: exit {code}, {len(printed)} changes, stderr {stderr!r}")
        say(f"ok {name}: a cursor of a rebuilt data directory is refused, exit {code}")

    # No token: UNAUTHENTICATED, not retried.
    for name in EXAMPLES:
        denied = Consumer(name, world.address, os.path.join(world.dir, "unused.cursor"), True, token=None)
        code, printed = denied.finish(timeout=10, want_code=None)
        check(code != 0 and not printed and "UNAUTHENTICATED" in "".join(denied.stderr),
              f"{name}: without a token: exit {code}, {len(printed)} changes, stderr {''.join(denied.stderr)!r}")
        say(f"ok {name}: without the token, UNAUTHENTICATED and exit {code}")

    # Nothing listening: backoff 0.5, 1, 2, 4 s...; SIGTERM during a 4 s wait ends it at once.
    nowhere = f"127.0.0.1:{free_port()}"
    waiting = {name: Consumer(name, nowhere, os.path.join(world.dir, "unused.cursor"), True) for name in EXAMPLES}
    for name, consumer in waiting.items():
        deadline = time.monotonic() + 15
        while "retrying in 4s" not in "".join(consumer.stderr):
            check(time.monotonic() < deadline, f"{name}: no 4 s backoff; stderr: {''.join(consumer.stderr)}")
            time.sleep(0.05)
        consumer.process.send_signal(signal.SIGTERM)
        consumer.finish(timeout=1.5)
        say(f"ok {name}: SIGTERM while waiting to reconnect")

    # A named consumer (the Python example): walfeed keeps its cursor, so a second run prints only
    # what came after the first, with no cursor file anywhere.
    _, first = Consumer("python", world.address, None, True, consumer="py-named").finish()
    check(len(first) > 0, "python --consumer: a first run printed nothing")
    world.sql("INSERT INTO items (id, name) VALUES (99, 'ninety-nine');\n")
    deadline = time.monotonic() + 30
    while True:
        _, second = Consumer("python", world.address, None, True, consumer="py-named").finish()
        if second or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # the insert was not in the log yet
    check([c["op"] for c in second] == ["INSERT"] and second[0]["key"] == {"id": "99"},
          f"python --consumer: a second run printed {second}, expected only the new row")
    stub = feed_stub(world.address)
    names = [c.name for c in stub.GetFeedInfo(walfeed_pb2.GetFeedInfoRequest(), metadata=AUTH).consumers]
    check(names == ["py-named"], f"FeedInfo lists consumers {names}")
    say("ok python: a named consumer resumed where walfeed kept it")

    # A backfill (Admin.Backfill) of the items up to id 3 reaches the same named consumer as READ
    # changes marked with the backfill's id, exactly the rows PostgreSQL holds in that range.
    admin = walfeed_pb2_grpc.AdminStub(grpc.insecure_channel(world.address))
    queued = admin.Backfill(walfeed_pb2.BackfillRequest(table="public.items", to_key=["3"]),
                           metadata=[("authorization", "Bearer " + ADMIN_TOKEN)])
    deadline = time.monotonic() + 60
    while True:
        states = {b.id: b.state for b in stub.GetFeedInfo(walfeed_pb2.GetFeedInfoRequest(), metadata=AUTH).backfills}
        if states.get(queued.id) == "done":
            break
        check(time.monotonic() < deadline and states.get(queued.id) in ("queued", "running"),
              f"backfill {queued.id} did not finish: {states}")
        time.sleep(0.1)
    in_range = subprocess.run(["psql", world.conninfo, "-qAt", "-c", "SELECT id FROM items WHERE id <= 3 ORDER BY id"],
                              capture_output=True, text=True, timeout=60).stdout.split()
    check(in_range, "no items up to id 3 to backfill")
    _, third = Consumer("python", world.address, None, True, consumer="py-named").finish()
    check([(c["op"], c["key"]["id"], c.get("backfill")) for c in third] == [("READ", i, queued.id) for i in in_range],
          f"python --consumer after a backfill printed {third}, expected READs of ids {in_range}")
    say("ok python: a backfill's rows arrived as READ changes marked with its id")

    # The Node example as a named consumer: its first run ends with the backfill's rows, and a
    # second prints nothing (walfeed kept where the first stopped).
    _, node_first = Consumer("node", world.address, None, True, consumer="node-named").finish()
    tail = node_first[-len(in_range):]
    check([(c["op"], c["key"]["id"], c.get("backfill")) for c in tail] == [("READ", i, queued.id) for i in in_range],
          f"node --consumer: the first run ended with {tail}, expected the backfill's READs of {in_range}")
    _, node_second = Consumer("node", world.address, None, True, consumer="node-named").finish()
    check(node_second == [], f"node --consumer: a second run printed {node_second}, expected nothing new")
    names = sorted(c.name for c in stub.GetFeedInfo(walfeed_pb2.GetFeedInfoRequest(), metadata=AUTH).consumers)
    check(names == ["node-named", "py-named"], f"FeedInfo lists consumers {names}")
    say("ok node: a named consumer read to the head, the backfill included, and resumed there")


def check_bare_cancelled_is_retried():
    """Each example against a scripted ChangeFeed server: the first call sends one change and ends
    with a bare CANCELLED, the second must resume after that change; it sends one more and ends
    the stream (OK, as at the head with --stop-at-head)."""
    from concurrent import futures

    def change(cursor, id_):
        return walfeed_pb2.Change(cursor=cursor, op=walfeed_pb2.Change.INSERT, table="public.items",
                                  key=[walfeed_pb2.Column(name="id", type="int8", int=id_)])

    class Scripted(walfeed_pb2_grpc.ChangeFeedServicer):
        def __init__(self):
            self.requests = []

        def Subscribe(self, request, context):
            self.requests.append(request)
            if len(self.requests) == 1:
                yield walfeed_pb2.SubscribeResponse(changes=[change("0/10:0", 1)], cursor="0/10:0",
                                                    log_id="scripted")
                context.abort(grpc.StatusCode.CANCELLED, "")
            elif len(self.requests) == 2:
                yield walfeed_pb2.SubscribeResponse(changes=[change("0/20:0", 2)], cursor="0/20:0",
                                                    log_id="scripted")
            else:
                context.abort(grpc.StatusCode.INTERNAL, "the script ended")

    for name in EXAMPLES:
        scripted = Scripted()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        walfeed_pb2_grpc.add_ChangeFeedServicer_to_server(scripted, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            cursor_file = os.path.join(tempfile.mkdtemp(prefix="walfeed-scripted-"), "cursor")
            _, printed = Consumer(name, f"127.0.0.1:{port}", cursor_file, stop_at_head=True).finish(timeout=30)
        finally:
            server.stop(0)
        check([c["key"]["id"] for c in printed] == ["1", "2"],
              f"{name}: against a bare CANCELLED printed {printed}, expected rows 1 and 2")
        check(len(scripted.requests) == 2 and scripted.requests[1].cursor == "0/10:0",
              f"{name}: the retry after CANCELLED asked for {[r.cursor for r in scripted.requests]}, "
              "expected to resume after 0/10:0")
        say(f"ok {name}: a bare CANCELLED was retried from the last cursor")


def main():
    global grpc, walfeed_pb2, walfeed_pb2_grpc, AUTH
    check(os.access(os.path.join(BUILD, "bin", "walfeed"), os.X_OK), f"no walfeed in {BUILD}/bin: build it first")
    check(os.path.isdir(os.path.join(HERE, "node", "node_modules")), "run `npm ci` in examples/node first")
    for tool in ("node", "psql", "protoc", "grpc_python_plugin"):
        check(shutil.which(tool), f"{tool} is not installed (scripts/install-deps.sh)")
    subprocess.run(["bash", os.path.join(HERE, "python", "generate.sh")], check=True)
    sys.path.insert(0, os.path.join(HERE, "python", "gen"))
    import grpc
    from walfeed.v1 import walfeed_pb2, walfeed_pb2_grpc
    AUTH = [("authorization", "Bearer " + TOKEN)]

    check_bare_cancelled_is_retried()
    world = World()
    try:
        world.start_postgres()
        run(world)
    except BaseException:
        print(f"walfeed's log ends with:\n{world.log()}", file=sys.stderr)
        raise
    finally:
        for consumer in STARTED:
            consumer.kill()
        world.stop()
    say("examples: the python and node consumers passed every check")
    print("examples: 2 passed, 0 failed")


if __name__ == "__main__":
    run_test(main)
