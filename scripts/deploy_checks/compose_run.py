"""deploy/compose.yaml run for real with podman-compose, the public images replaced by stand-ins
built from Debian's packages (standins/: PostgreSQL 15 with the official image's first-start
behaviour, nats-server) through the file's own image variables, and walfeed's image from
image_run.py: the demo's consumer prints the snapshot and a row inserted the way the file's
comment says; the three walfeeds form one ingest group with one ingester; stopping it as the
comment says makes another take over, the consumer goes on with the next row, and every instance
serves the same feed, every row once."""

import os
import subprocess
import time

import image_run
import podman as podman_module

PROJECT = "walfeed-deploy-check"
STANDINS = {
    "WALFEED_POSTGRES_IMAGE": ("localhost/walfeed-standin-postgres:15", "postgres.Dockerfile"),
    "WALFEED_NATS_IMAGE": ("localhost/walfeed-standin-nats:2.9", "nats.Dockerfile"),
}
PORTS = {"walfeed": 50051, "walfeed-2": 50052, "walfeed-3": 50053}


class Compose:
    def __init__(self, ctx, podman):
        self.ctx = ctx
        self.env = dict(podman.env, WALFEED_IMAGE=podman_module.IMAGE)
        for variable, (image, _) in STANDINS.items():
            self.env[variable] = image

    def run(self, *args, timeout=300):
        done = subprocess.run(["podman-compose", "-f", self.ctx.path("deploy", "compose.yaml"),
                               "-p", PROJECT, *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"podman-compose {' '.join(args)} exited {done.returncode}: "
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def psql(self, statement):
        """As deploy/compose.yaml's comment says: `compose exec postgres psql -U postgres -d shop`."""
        return self.run("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "shop", "-qAt", "-c",
                        statement)


def roles(ctx):
    """Each member's role, from FeedInfo on its host port ("" when it does not answer)."""
    return {service: image_run.role(ctx, f"127.0.0.1:{port}") for service, port in PORTS.items()}


def await_condition(what, condition, timeout=120, state=None):
    """Waits for `condition`; the error names `what` and, when given, `state()` at the end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} within {timeout} s" + (f" ({state()})" if state else ""))


def run_scenario(ctx, podman, compose):
    started = time.monotonic()
    fail = lambda message: ctx.fail("deploy/compose.yaml, run", message)
    consumer_log = lambda: podman.logs(f"{PROJECT}_consumer_1")
    compose.run("up", "-d", "--no-build")
    await_condition("the consumer printed the two rows of init.sql",
                    lambda: 'customer="grace"' in consumer_log())
    await_condition("one member became the ingester",
                    lambda: sorted(roles(ctx).values()) == ["ingester", "replica", "replica"],
                    state=lambda: f"roles: {roles(ctx)}")
    compose.psql("INSERT INTO orders (customer, amount) VALUES ('linus', 7)")
    await_condition("the consumer printed the inserted row",
                    lambda: 'customer="linus"' in consumer_log())
    ingester = next(s for s, role in roles(ctx).items() if role == "ingester")
    compose.run("stop", ingester)
    await_condition("another member took over",
                    lambda: "ingester" in [r for s, r in roles(ctx).items() if s != ingester])
    compose.psql("INSERT INTO orders (customer, amount) VALUES ('ken', 8)")
    await_condition("the consumer printed the row inserted after the takeover",
                    lambda: 'customer="ken"' in consumer_log())
    # podman-compose prints its own commands on stdout: ask podman for the rows.
    ids = podman.run("exec", f"{PROJECT}_postgres_1", "psql", "-U", "postgres", "-d", "shop",
                     "-qAt", "-c", "SELECT id FROM orders")
    truth = sorted(int(i) for i in ids.split())
    for service, port in PORTS.items():
        if service == ingester:
            continue
        read = image_run.buf_read(ctx, f"127.0.0.1:{port}")
        if sorted(i for _, i in read) != truth:
            fail(f"{service} serves {read}, expected every row of {truth} once")
    ctx.say(f"containers: compose up, a row, a takeover and another row took "
            f"{time.monotonic() - started:.0f} s")
    printed = [line for line in consumer_log().splitlines() if " public.orders " in line]
    if len(printed) != len(truth):
        fail(f"the consumer printed {len(printed)} changes of orders, expected {len(truth)}: "
             f"{printed}")


def check(ctx, podman):
    for variable, (image, dockerfile) in STANDINS.items():
        if not podman.ok("image", "exists", image):
            ctx.say(f"containers: building the stand-in {image} ({variable})")
            podman.run("build", "--format", "docker", "--network=host", "-f", dockerfile,
                       "--build-arg", f"BASE_IMAGE={podman_module.BASE_IMAGE}", "-t", image, ".",
                       cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "standins"),
                       timeout=900)
    compose = Compose(ctx, podman)
    ctx.say("containers: deploy/compose.yaml with podman-compose")
    try:
        compose.run("down", "-v")  # what an interrupted run left
        run_scenario(ctx, podman, compose)
    except (RuntimeError, subprocess.TimeoutExpired, StopIteration, ValueError) as error:
        ctx.fail("deploy/compose.yaml, run", str(error))
        for service in ("postgres", "walfeed", "walfeed-2", "walfeed-3", "consumer"):
            ctx.say(f"{service} logs:\n{podman.logs(f'{PROJECT}_{service}_1')[-1500:]}")
    finally:
        try:
            compose.run("down", "-v")
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            ctx.fail("deploy/compose.yaml, down", str(error))
    if not ctx.failures:
        ctx.say("containers: compose ran the demo: feed, a row, a takeover, every row once")
