"""The systemd unit deploy/systemd/walfeed.service: `systemd-analyze verify` says nothing of it,
it holds the settings walfeed relies on and the sandboxing listed below, `systemd-analyze security`
rates its exposure at most 2.0 (of 10), and its environment example names only real settings."""

import os
import re
import subprocess

UNIT = "deploy/systemd/walfeed.service"
EXEC_START = "ExecStart=/usr/local/bin/walfeed"
# Lines the unit must hold as they are: how it runs walfeed, and its sandbox.
REQUIRED_LINES = [
    "Type=simple", "User=walfeed", "EnvironmentFile=-/etc/walfeed/walfeed.env",
    "Restart=on-failure", "KillSignal=SIGTERM", "StateDirectory=walfeed", "NoNewPrivileges=yes",
    "ProtectSystem=strict", "CapabilityBoundingSet=", "SystemCallFilter=@system-service",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute=yes",
]
# Exposure is 0 (locked down) to 10 (unprotected); the unit scores 1.2.
MAX_EXPOSURE = "2.0"


def check(ctx):
    ctx.say(f"systemd-analyze verify {UNIT}")
    with open(ctx.path(UNIT)) as f:
        text = f.read()
    lines = text.splitlines()
    if lines.count(EXEC_START) != 1:
        ctx.fail(UNIT, f"expected exactly one '{EXEC_START}'")
    # The unit runs /usr/local/bin/walfeed, which is not installed here: verify a copy that runs
    # the built binary instead, so that every other complaint still counts.
    unit_dir = os.path.join(ctx.scratch, "unit")
    os.makedirs(unit_dir, exist_ok=True)
    copy = os.path.join(unit_dir, "walfeed.service")
    with open(copy, "w") as f:
        f.write("\n".join(f"ExecStart={ctx.walfeed_bin}" if line == EXEC_START else line
                          for line in lines) + "\n")
    # verify exits 0 on warnings (an unknown key, a value it ignores): any output is a failure.
    verified = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True)
    report = (verified.stdout + verified.stderr).replace(unit_dir + "/", "").strip()
    if verified.returncode != 0 or report:
        ctx.fail(UNIT, f"systemd-analyze verify reports:\n{report}")
    for setting in REQUIRED_LINES:
        if setting not in lines:
            ctx.fail(UNIT, f"no line '{setting}'")
    if not any(line.startswith("TimeoutStopSec=") for line in lines):
        ctx.fail(UNIT, "no TimeoutStopSec=")
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes",
         f"--threshold={MAX_EXPOSURE.replace('.', '')}", copy],
        capture_output=True, text=True)
    if security.returncode != 0:
        last = (security.stdout + security.stderr).strip().splitlines()[-1:]
        ctx.fail(UNIT, f"systemd-analyze security rates the sandbox weaker than {MAX_EXPOSURE}: "
                 f"{' '.join(last)}")
    with open(ctx.path("deploy", "systemd", "walfeed.env.example")) as f:
        ctx.check_env_names("deploy/systemd/walfeed.env.example",
                            re.findall(r"^#?\s*(WALFEED_\w+)=", f.read(), re.M))
