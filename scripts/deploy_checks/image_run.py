"""The image from deploy/Dockerfile, built and run for real with podman (see podman.py): it runs as
its unprivileged user; against a private PostgreSQL it takes the snapshot and serves the feed to
clients on the host (buf curl, the Python example, walfeedctl) and answers its own health check;
SIGTERM (podman stop) ends a following stream with UNAVAILABLE and exits 0 once the last batch is
confirmed to PostgreSQL; started again on the same volume it goes on where it stopped: every row
once, equal to PostgreSQL's table. Its size is reported. Then compose_run.py runs
deploy/compose.yaml with it, and kube_run.py deploy/k8s."""

import json
import os
import socket
import subprocess
import threading
import time

import compose_run
import kube_run
import podman as podman_module


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    """A private PostgreSQL with a table, a volume, and the containers started on them."""

    def __init__(self, ctx, podman, name="pg"):
        self.ctx = ctx
        self.podman = podman
        self.pg_dir = os.path.join(ctx.scratch, name)
        self.volume = f"walfeed-deploy-check-{os.getpid()}"
        self.containers = []
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.conninfo = None

    def start_postgres(self):
        started = subprocess.run(["bash", self.ctx.path("scripts", "pg-local.sh"), "start",
                                  self.pg_dir], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}")
        self.conninfo = started.stdout.strip().splitlines()[-1]

    def sql(self, statement):
        done = subprocess.run(["psql", self.conninfo, "-v", "ON_ERROR_STOP=1", "-qAt", "-c",
                               statement], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr}")
        return done.stdout.strip()

    def start_walfeed(self, name):
        self.containers.append(name)
        self.podman.run("run", "-d", "--name", name, "--network=host",
                        "-v", f"{self.volume}:/var/lib/walfeed",
                        "-e", f"WALFEED_PG={self.conninfo}", "-e", f"WALFEED_LISTEN={self.address}",
                        podman_module.IMAGE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = subprocess.run([self.ctx.walfeedctl_bin, "health", "--server", self.address],
                                    capture_output=True, text=True)
            if health.returncode == 0:
                return
            if "exited" in self.podman.run("inspect", "--format", "{{.State.Status}}", name):
                break
            time.sleep(0.2)
        raise RuntimeError(f"walfeed in container {name} did not become healthy: "
                           f"{self.podman.logs(name)[-3000:]}")

    def stop(self):
        for name in self.containers:
            self.podman.run("rm", "-f", "-t", "5", name, check=False)
        self.podman.run("volume", "rm", "-f", self.volume, check=False)
        if self.conninfo:
            subprocess.run(["bash", self.ctx.path("scripts", "pg-local.sh"), "stop", self.pg_dir],
                           capture_output=True, timeout=120)


class Follower:
    """walfeedctl subscribe from the host, following the feed (its stdout and stderr kept)."""

    def __init__(self, ctx, address):
        self.lines = []
        self.stderr = []
        self.process = subprocess.Popen(
            [ctx.walfeedctl_bin, "subscribe", "--server", address, "--format", "text"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.stderr)):
            threading.Thread(target=lambda s=stream, i=into: [i.append(l) for l in s],
                             daemon=True).start()

    def await_lines(self, count, timeout=60):
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.lines) >= count

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=20)


def buf_read(ctx, address):
    """Every change up to the head, through buf curl (reflection): the keys' ids."""
    buf = ctx.path("tools", "node_modules", ".bin", "buf")
    done = subprocess.run([buf, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                           "-d", '{"stopAtHead":true}',
                           f"http://{address}/walfeed.v1.ChangeFeed/Subscribe"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"buf curl failed: {done.stderr}")
    ids = []
    decoder = json.JSONDecoder()
    text, at = done.stdout, 0
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            break
        message, at = decoder.raw_decode(text, at)
        for change in message.get("changes", []):
            if change.get("table") == "orders":
                ids.append((change["op"], int(change["key"][0]["int"])))
    return ids


def role(ctx, address):
    """FeedInfo.role of the walfeed at `address` ("" when it does not answer)."""
    info = subprocess.run([ctx.walfeedctl_bin, "info", "--server", address], capture_output=True,
                          text=True, timeout=30)
    return next((line.split('"')[3] for line in info.stdout.splitlines() if '"role"' in line), "")


def python_example_read(ctx, address, cursor_file):
    subprocess.run(["bash", ctx.path("examples", "python", "generate.sh")], check=True,
                   capture_output=True, timeout=120)
    done = subprocess.run(["/usr/bin/python3", ctx.path("examples", "python", "consumer.py"),
                           "--server", address, "--cursor-file", cursor_file, "--stop-at-head"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the Python example failed: {done.stderr}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def run_scenario(ctx, podman, world):
    fail = lambda message: ctx.fail("deploy/Dockerfile, run", message)
    user = podman.run("image", "inspect", "--format", "{{.Config.User}}", podman_module.IMAGE)
    uid = podman.run("run", "--rm", "--entrypoint", "id", podman_module.IMAGE, "-u").strip()
    if user.strip() != "10001:10001" or uid != "10001":
        fail(f"the image runs as '{user.strip()}' (id -u: {uid}), not the unprivileged 10001")

    world.start_postgres()
    world.sql("CREATE TABLE orders (id int PRIMARY KEY, customer text); "
              "INSERT INTO orders SELECT g, 'c' || g FROM generate_series(1, 3) g")
    world.start_walfeed("walfeed-check-1")
    # The exit code says healthy (0) or not; podman 4.3 prints nothing when healthy.
    health = podman.run("healthcheck", "run", "walfeed-check-1").strip()
    if health not in ("", "healthy"):
        fail(f"the image's HEALTHCHECK says '{health}'")
    if buf_read(ctx, world.address) != [("READ", 1), ("READ", 2), ("READ", 3)]:
        fail(f"buf curl read {buf_read(ctx, world.address)}, expected the 3 rows as READ")
    cursor_file = os.path.join(ctx.scratch, "python.cursor")
    printed = python_example_read(ctx, world.address, cursor_file)
    if [(c["op"], c["key"]["id"]) for c in printed] != [("READ", str(i)) for i in (1, 2, 3)]:
        fail(f"the Python example printed {printed}")

    # A consumer follows the feed live; SIGTERM ends its stream with UNAVAILABLE, and walfeed
    # exits 0 having confirmed the last batch to PostgreSQL.
    follower = Follower(ctx, world.address)
    try:
        world.sql("INSERT INTO orders VALUES (4, 'c4'), (5, 'c5')")
        if not follower.await_lines(5):
            fail(f"the following consumer printed {follower.lines}")
        podman.run("stop", "-t", "30", "walfeed-check-1")
        code = podman.run("inspect", "--format", "{{.State.ExitCode}}", "walfeed-check-1").strip()
        if code != "0":
            fail(f"walfeed exited {code} on SIGTERM")
        logs = podman.logs("walfeed-check-1")
        if "event=stopped" not in logs:
            fail(f"no event=stopped in walfeed's log: {logs[-2000:]}")
        deadline = time.monotonic() + 30
        while "shutting down" not in "".join(follower.stderr) and time.monotonic() < deadline:
            time.sleep(0.05)
        if "shutting down" not in "".join(follower.stderr):
            fail(f"the consumer's stream did not end with UNAVAILABLE: {''.join(follower.stderr)}")
        # The last batch (rows 4 and 5) was confirmed: the slot is past its commit.
        last_lsn = follower.lines[4].split(":")[0]
        confirmed = world.sql("SELECT confirmed_flush_lsn > '" + last_lsn +
                              "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'walfeed'")
        if confirmed != "t":
            fail(f"after SIGTERM the slot is not confirmed past the last commit {last_lsn}")

        # Rows written while it is down arrive after a restart on the same volume: every row once.
        world.sql("INSERT INTO orders VALUES (6, 'c6'); UPDATE orders SET customer = 'x' "
                  "WHERE id = 1")
        world.start_walfeed("walfeed-check-2")
        if not follower.await_lines(7):
            fail(f"the consumer did not resume after the restart: {follower.lines}")
    finally:
        follower.stop()
    expected = [("READ", 1), ("READ", 2), ("READ", 3), ("INSERT", 4), ("INSERT", 5),
                ("INSERT", 6), ("UPDATE", 1)]
    if buf_read(ctx, world.address) != expected:
        fail(f"after the restart buf curl read {buf_read(ctx, world.address)}, expected {expected}")
    if len(follower.lines) != 7:
        fail(f"the consumer printed {len(follower.lines)} changes across the restart, expected 7 "
             f"(nothing twice): {follower.lines}")
    resumed = python_example_read(ctx, world.address, cursor_file)
    if [(c["op"], c["key"]["id"]) for c in resumed] != [(op, str(i)) for op, i in expected[3:]]:
        fail(f"the Python example resumed with {resumed}")


def check(ctx):
    """Builds the image (from source with WALFEED_DEPLOY_FROM_SOURCE=1) and runs the scenario."""
    podman = podman_module.Podman(ctx)
    ctx.say("containers: the base image")
    podman.ensure_base_image()
    from_source = os.environ.get("WALFEED_DEPLOY_FROM_SOURCE") == "1"
    if not from_source:
        try:
            seconds = podman.configure_build_stage()
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            ctx.fail("deploy/Dockerfile, build stage", str(error))
            return
        ctx.say(f"containers: the build stage installs its packages and configures ({seconds:.0f} s)")
    ctx.say(f"containers: building deploy/Dockerfile ({'compiling walfeed' if from_source else 'with the built binaries'})")
    seconds = podman.build_walfeed_image(from_source)
    size = int(podman.run("image", "inspect", "--format", "{{.Size}}", podman_module.IMAGE))
    ctx.say(f"containers: image built in {seconds:.0f} s, {size / 1e6:.0f} MB")
    world = World(ctx, podman)
    try:
        run_scenario(ctx, podman, world)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        ctx.fail("deploy/Dockerfile, run", str(error))
    finally:
        world.stop()
    if ctx.failures:
        return
    ctx.say("containers: the image served the feed, shut down cleanly and resumed on its volume")
    compose_run.check(ctx, podman)
    if not ctx.failures:
        kube_run.check(ctx, podman)
