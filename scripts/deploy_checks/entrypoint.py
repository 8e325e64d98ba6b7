"""The image's entrypoint deploy/docker-entrypoint.sh: it is executable, passes sh -n, dash -n and
shellcheck, and, run directly against the built walfeed, does what it promises: a clear error
without PostgreSQL or with a data directory it cannot use (creating nothing), --help and other
commands passed through, the data directory created and handed to walfeed with the flags, a
replica started without PostgreSQL. The image's health check command exists in walfeedctl."""

import glob
import os
import shutil
import subprocess

ENTRYPOINT = "deploy/docker-entrypoint.sh"


class EntrypointRun:
    """One run of the entrypoint without any WALFEED_* or PG* variable of this process."""

    def __init__(self, ctx, name, env, args, user=None, binary=None, script=None):
        base = {"PATH": os.environ["PATH"], "HOME": ctx.scratch,
                "WALFEED_BIN": binary or ctx.walfeed_bin}
        base.update(env)
        command = [script or ctx.path(ENTRYPOINT), *args]
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
                       *command]
        else:
            command = ["timeout", "20", *command]
        done = subprocess.run(command, env=base, capture_output=True, text=True)
        self.ctx = ctx
        self.name = name
        self.status = done.returncode
        self.output = done.stdout + done.stderr
        self.stderr = done.stderr

    def expect(self, succeeds, text):
        """The run ended as promised: exit 0 or not, and `text` in what it printed."""
        if (self.status == 0) != succeeds:
            self.ctx.fail(f"entrypoint, {self.name}", f"exit status {self.status}, expected "
                          f"{'0' if succeeds else 'a failure'}; stderr: {self.stderr}")
        if text not in self.output:
            self.ctx.fail(f"entrypoint, {self.name}",
                          f"output lacks '{text}'; stderr: {self.stderr}")


def check_syntax(ctx):
    path = ctx.path(ENTRYPOINT)
    if not os.access(path, os.X_OK):
        ctx.fail(ENTRYPOINT, "is not executable")
    for command in (["sh", "-n", path], ["dash", "-n", path], ["shellcheck", "-s", "sh", path],
                    ["shellcheck", "-s", "bash", ctx.path("scripts", "check-deploy.sh")]):
        checked = subprocess.run(command, capture_output=True, text=True)
        if checked.returncode != 0:
            ctx.fail(ctx.rel(command[-1]), f"{' '.join(command[:-1])}: "
                     f"{(checked.stdout + checked.stderr).strip()}")


def check_behaviour(ctx):
    scratch = ctx.scratch
    # (a) no PostgreSQL given: an error, and no data directory made
    run = EntrypointRun(ctx, "no-pg", {"WALFEED_DATA_DIR": f"{scratch}/a"}, [])
    run.expect(False, "no PostgreSQL to capture")
    if os.path.exists(f"{scratch}/a"):
        ctx.fail("entrypoint, no-pg", "created the data directory before failing")
    # (b) a data directory whose parent does not exist, and one this user cannot write
    run = EntrypointRun(ctx, "no-parent", {"WALFEED_PG": "host=/nonexistent"},
                        ["--data-dir", f"{scratch}/missing/data"])
    run.expect(False, "does not exist")
    readonly = f"{scratch}/readonly"
    os.mkdir(readonly, 0o755)
    unwritable_env = {"WALFEED_PG": "host=/nonexistent", "WALFEED_DATA_DIR": readonly}
    if os.geteuid() == 0:
        # root writes anywhere: run as nobody, for whom the directory is read-only. A copy of
        # the entrypoint in the scratch directory, and /bin/true as walfeed (never reached), so
        # that nobody needs no access to the repository or the build directory.
        script = f"{scratch}/entrypoint.sh"
        shutil.copy(ctx.path(ENTRYPOINT), script)
        run = EntrypointRun(ctx, "unwritable", unwritable_env, [], user=65534,
                            binary="/bin/true", script=script)
    else:
        os.chmod(readonly, 0o555)
        run = EntrypointRun(ctx, "unwritable", unwritable_env, [])
    run.expect(False, "is not writable")
    # (c) --help needs nothing: it execs walfeed
    EntrypointRun(ctx, "help", {}, ["--help"]).expect(True, "Usage: walfeed")
    # (d) all set: the entrypoint creates the data directory and hands over to walfeed with the
    # flags, which opens its log there and then stops at the unreachable PostgreSQL.
    run = EntrypointRun(ctx, "handover",
                        {"WALFEED_PG": f"host={scratch}/no-socket-here connect_timeout=2",
                         "WALFEED_LISTEN": "127.0.0.1:0"},
                        ["--data-dir", f"{scratch}/data", "--log-level", "warn"])
    run.expect(False, "PostgreSQL")
    if not os.path.isfile(f"{scratch}/data/CURRENT"):
        ctx.fail("entrypoint, handover", "walfeed did not open its log in --data-dir")
    if glob.glob(f"{scratch}/data/.walfeed-entrypoint-probe.*"):
        ctx.fail("entrypoint, handover", "the write probe was left in the data directory")
    # (e) a replica (WALFEED_FOLLOW) needs no PostgreSQL: the entrypoint hands over, and walfeed
    # itself judges the setting (here a URL without its scheme, refused at once).
    run = EntrypointRun(ctx, "replica",
                        {"WALFEED_FOLLOW": "127.0.0.1:4222", "WALFEED_LISTEN": "127.0.0.1:0"},
                        ["--data-dir", f"{scratch}/replica"])
    run.expect(False, "--follow takes the same URLs")
    # (f) another command runs as given (docker run IMAGE walfeedctl ...)
    EntrypointRun(ctx, "other", {}, [ctx.walfeedctl_bin, "--help"]).expect(
        True, "walfeedctl subscribe")


def check_health_command(ctx):
    """The image's HEALTHCHECK runs `walfeedctl health`: it must exist (and fail, with a
    sentence, when nothing answers)."""
    health = subprocess.run([ctx.walfeedctl_bin, "health", "--server", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=60)
    said = health.stdout + health.stderr
    if "unknown command" in said or health.returncode == 0 or not said.strip():
        ctx.fail("walfeedctl health", f"does not report an unreachable server as unhealthy "
                 f"(exit {health.returncode}): {said.strip()}")


def check(ctx):
    ctx.say(f"{ENTRYPOINT}: syntax, shellcheck, behaviour")
    os.chmod(ctx.scratch, 0o755)  # the unprivileged run must reach its directories
    check_syntax(ctx)
    check_behaviour(ctx)
    check_health_command(ctx)
