"""What the examples' end-to-end tests share: failing with a reason, timed progress lines, a free
loopback port, a private PostgreSQL, stopping a process."""
import os
import signal
import socket
import subprocess
import time

BEGAN = time.monotonic()


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def say(message):
    print(f"[{time.monotonic() - BEGAN:5.1f} s] {message}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_test(main, suffix=""):
    """Runs a test's main(): exits 1 with "FAIL: <reason><suffix>" on a Failure, and with the
    traceback when the test itself broke."""
    import sys
    import traceback
    try:
        main()
    except Failure as failure:
        print(f"FAIL: {failure}{suffix}", file=sys.stderr)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print(f"FAIL: the test itself failed (above){suffix}", file=sys.stderr)
        sys.exit(1)


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_BIN = "/usr/lib/postgresql/15/bin"


def start_postgres(pg_dir):
    """Starts a private PostgreSQL in `pg_dir` (scripts/pg-local.sh); returns its conninfo."""
    started = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg-local.sh"), "start", pg_dir],
                             capture_output=True, text=True, timeout=120)
    check(started.returncode == 0, f"PostgreSQL did not start: {started.stderr}")
    return started.stdout.strip().splitlines()[-1]


def stop_postgres(pg_dir):
    """Stops the PostgreSQL in `pg_dir` at once, if it runs."""
    if os.path.exists(os.path.join(pg_dir, "data", "postmaster.pid")):
        owner = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(owner + [f"{PG_BIN}/pg_ctl", "-D", os.path.join(pg_dir, "data"), "-m", "immediate",
                                "-w", "stop"], capture_output=True, timeout=60)


def psql(conninfo, script):
    """Runs `script` with psql, stopping at the first error; returns what it printed."""
    done = subprocess.run(["psql", conninfo, "-v", "ON_ERROR_STOP=1", "-qAt", "-f", "-"], input=script,
                          capture_output=True, text=True, timeout=60)
    check(done.returncode == 0, f"psql failed: {done.stderr}")
    return done.stdout


def stop_process(process, timeout):
    """SIGTERM, then SIGKILL after `timeout` seconds, for a process that still runs."""
    if process and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
