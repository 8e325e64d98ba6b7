"""What walfeed's benchmark scripts share: a private PostgreSQL (scripts/pg-local.sh) and NATS
JetStream cluster (scripts/nats-local.sh), starting walfeed on it, reading a process's CPU time and
peak memory, the machine's description, and writing a results pair (JSON and a Markdown table)
under bench/results/."""
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PG_BIN = sorted(d for d in os.listdir("/usr/lib/postgresql"))[-1]
PG_BIN_DIR = f"/usr/lib/postgresql/{PG_BIN}/bin"
BUILD_BIN = os.path.join(ROOT, "build", "bin")


def run(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()


class Postgres:
    """A private PostgreSQL under `root` (wal_level=logical, 127.0.0.1 on a free port)."""

    def __init__(self, root):
        self.dir = os.path.join(root, "pg")
        self.conninfo = run(["bash", f"{ROOT}/scripts/pg-local.sh", "start", self.dir])

    def sql(self, statement, db=None):
        conninfo = self.conninfo if db is None else self.conninfo_for(db)
        return run(["psql", conninfo, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", statement])

    def conninfo_for(self, db):
        return " ".join(p for p in self.conninfo.split() if not p.startswith("dbname=")) + f" dbname={db}"

    def stop(self):
        subprocess.run(["bash", f"{ROOT}/scripts/pg-local.sh", "stop", self.dir], check=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PsqlSession:
    """One psql process kept open for many queries: polling a slot through it costs one query,
    not a process and a PostgreSQL backend start each time (on two cores that would slow what is
    being measured)."""

    _END = "__walfeed_bench_end__"

    def __init__(self, conninfo):
        self.process = subprocess.Popen(["psql", conninfo, "-qAtX", "-v", "ON_ERROR_STOP=0"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, bufsize=1)

    def sql(self, statement):
        """The query's output lines, joined by newlines ("" for none)."""
        self.process.stdin.write(f"{statement.rstrip(';')};\n\\echo {self._END}\n")
        self.process.stdin.flush()
        lines = []
        for line in self.process.stdout:
            if line.rstrip("\n") == self._END:
                return "\n".join(lines)
            lines.append(line.rstrip("\n"))
        raise RuntimeError(f"psql ended: {' '.join(lines)}")

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


def slot_confirmed(session, slot, target_lsn):
    """True when `slot` has confirmed `target_lsn`, asked through `session` (a PsqlSession)."""
    return session.sql(f"SELECT confirmed_flush_lsn >= '{target_lsn}' FROM pg_replication_slots "
                       f"WHERE slot_name = '{slot}'") == "t"


def wait_for_confirmed(pg, slot, target_lsn, timeout, proc=None, poll=0.02):
    """True once the slot confirms target_lsn; False on timeout or when `proc` exits first (after
    a last look: a process that confirmed and exited counts). Polled every `poll` seconds through
    one kept-open connection."""
    session = PsqlSession(pg.conninfo)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = proc is not None and proc.poll() is not None
            if slot_confirmed(session, slot, target_lsn):
                return True
            if exited:
                return False
            time.sleep(poll)
        return False
    finally:
        session.close()


def wait_for_health(server, timeout=60, proc=None):
    """Waits until walfeed at `server` answers its health check."""
    deadline = time.monotonic() + timeout
    ctl = os.path.join(BUILD_BIN, "walfeedctl")
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("walfeed exited before it was ready")
        if subprocess.run([ctl, "health", "--server", server], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"walfeed at {server} never became healthy")


def run_in_fresh_dir(binary, prefix, args):
    """Runs a benchmark program with --dir set to a fresh temporary directory (removed after);
    returns the JSON object it prints on stdout, or exits with its stderr when it fails."""
    import shutil
    import sys
    import tempfile
    root = tempfile.mkdtemp(prefix=prefix)
    try:
        done = subprocess.run([binary, "--dir", root, *[str(a) for a in args]],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"{os.path.basename(binary)} failed with exit code {done.returncode}")
        return json.loads(done.stdout)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def cpu_seconds(pid):
    """User + system CPU seconds a process (all its threads) has used so far."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(dirpath, name))
    return total


def machine():
    return {"cores": os.cpu_count(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "kernel": platform.release(), "postgres": PG_BIN}


def write_results(out_dir, name, report, title, table):
    """Writes out_dir/name.json (the report) and name.md (title, method, table)."""
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(report, f, indent=2)
    m = report["machine"]
    with open(os.path.join(out_dir, f"{name}.md"), "w") as f:
        f.write(f"# {title} ({report['date']}, {m['cores']} cores, {m['memory_gib']} GiB)\n\n"
                f"{report['method']}.\n\n{table}\n")
    print(table)


NATS = os.path.join(ROOT, "scripts", "nats-local.sh")


@contextlib.contextmanager
def postgres_and_nats(prefix, nodes=3):
    """A private PostgreSQL and a private NATS JetStream cluster of `nodes` servers under a new
    temporary directory: yields (root, pg, nats urls, nats dir), and stops and removes them all."""
    root = tempfile.mkdtemp(prefix=prefix)
    os.chmod(root, 0o755)
    nats_dir = os.path.join(root, "nats")
    pg = Postgres(root)
    try:
        urls = run(["bash", NATS, "start", nats_dir, str(nodes)]).splitlines()[-1]
        yield root, pg, urls, nats_dir
    finally:
        subprocess.run(["bash", NATS, "stop", nats_dir], check=False)
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


def nats_cpu_seconds(nats_dir):
    """CPU seconds the NATS servers of nats_dir have used so far, all nodes together."""
    total = 0.0
    for name in os.listdir(nats_dir):
        if name.endswith(".pid"):
            try:
                total += cpu_seconds(int(open(os.path.join(nats_dir, name)).read()))
            except (OSError, ValueError):
                pass
    return total


def nats_stream_state(nats_dir, stream):
    """The state of JetStream stream `stream` ({"messages": ..., "bytes": ...}) as the first NATS
    server of nats_dir reports it (every server holds a replica of a 3-replica stream)."""
    port = open(os.path.join(nats_dir, "n1.http_port")).read().strip()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/jsz?streams=true", timeout=5) as answer:
        jsz = json.loads(answer.read())
    for account in jsz.get("account_details", []):
        for detail in account.get("stream_detail", []):
            if detail.get("name") == stream:
                return detail.get("state", {})
    raise RuntimeError(f"NATS does not report stream {stream}")


class InsertWorkload:
    """A database `db` with an empty table `live`, and pgbench committing transactions of
    `rows` new rows (192 characters of payload each) into it at a fixed rate."""

    def __init__(self, pg, root, db, rows=10):
        self.pg, self.db, self.rows = pg, db, rows
        pg.sql(f"CREATE DATABASE {db}")
        pg.sql("CREATE TABLE live (id bigserial PRIMARY KEY, payload text)", db=db)
        self.script = os.path.join(root, f"{db}.sql")
        with open(self.script, "w") as f:
            f.write(f"INSERT INTO live (payload) SELECT repeat(md5(random()::text), 6) "
                    f"FROM generate_series(1, {rows});\n")

    def run(self, changes_per_s, seconds):
        """Writes for `seconds` at `changes_per_s`; returns how long it took."""
        start = time.monotonic()
        subprocess.run([os.path.join(PG_BIN_DIR, "pgbench"), "-n", "-c", "4", "-j", "2", "-R",
                        str(changes_per_s // self.rows), "-T", str(seconds), "-f", self.script,
                        self.pg.conninfo_for(self.db)],
                       check=True, capture_output=True, text=True)
        return time.monotonic() - start

    def committed(self):
        return int(self.pg.sql("SELECT count(*) FROM live", db=self.db))
