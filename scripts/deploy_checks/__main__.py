"""Checks the deployment files in deploy/ as far as a machine without a container engine can:
every YAML file parses; the Kubernetes manifests, the compose file and the Dockerfile hold what
walfeed relies on (and the image's runtime packages provide every library the built binaries
link); the systemd unit passes `systemd-analyze verify` and its sandboxing scores as intended; the
entrypoint passes sh -n, dash -n and shellcheck, and behaves as promised when run directly against
the built walfeed. With --containers it also builds the image with podman and runs it for real
(image_run.py).

    /usr/bin/python3 scripts/deploy_checks [BUILD_DIR] [--containers]
    (scripts/check-deploy.sh runs this)

BUILD_DIR (default: build/) holds bin/walfeed. Needs these Debian packages: python3-yaml, yamllint,
systemd (systemd-analyze), dash, shellcheck, binutils (objdump) and util-linux (setpriv). kubectl, when
installed, also renders deploy/k8s with its built-in kustomize. Exits 1 after listing every failed
check; each module checks one kind of file and says in its docstring what."""

import os
import shutil
import subprocess
import sys
import tempfile

import common
import compose
import dockerfile
import entrypoint
import image_run
import kubernetes
import systemd

TOOLS = {
    "systemd-analyze": "systemd",
    "dash": "dash",
    "shellcheck": "shellcheck",
    "objdump": "binutils",
    "setpriv": "util-linux",
    "yamllint": "yamllint",
}


# What --containers needs besides.
CONTAINER_TOOLS = {"podman": "podman", "debootstrap": "debootstrap", "runc": "runc"}


def missing_tools(walfeed_bin, walfeedctl_bin, containers):
    """A missing tool is an install problem, not a finding about deploy/."""
    missing = [f"{b} (build it: scripts/build.sh)" for b in (walfeed_bin, walfeedctl_bin)
               if not os.access(b, os.X_OK)]
    tools = dict(TOOLS, **(CONTAINER_TOOLS if containers else {}))
    missing += [f"{tool} (apt-get install {package})" for tool, package in tools.items()
                if shutil.which(tool) is None]
    return missing


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    containers = "--containers" in argv[1:]
    positional = [a for a in argv[1:] if a != "--containers"]
    # A relative BUILD_DIR is taken from the current directory, as scripts/build.sh does.
    build_dir = os.path.abspath(positional[0]) if positional else os.path.join(root, "build")
    if not os.path.isdir(build_dir):
        print(f"check-deploy: build directory '{build_dir}' not found; build first "
              "(scripts/build.sh)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as scratch:
        ctx = common.Context(root, build_dir, scratch)
        missing = missing_tools(ctx.walfeed_bin, ctx.walfeedctl_bin, containers)
        for entry in missing:
            print(f"check-deploy: missing: {entry}", file=sys.stderr)
        if missing:
            return 1
        help_text = subprocess.run([ctx.walfeed_bin, "--help"], capture_output=True,
                                   text=True).stdout
        common.load_known_settings(ctx, help_text)
        ctx.say("YAML files, Kubernetes manifests, compose file, Dockerfile")
        common.load_yaml_documents(ctx)
        for module in (kubernetes, compose, dockerfile, systemd, entrypoint):
            module.check(ctx)
        if containers and not ctx.failures:
            image_run.check(ctx)
        for failure in ctx.failures:
            print(f"check-deploy: FAIL: {failure}", file=sys.stderr)
        if ctx.failures:
            print(f"check-deploy: {len(ctx.failures)} check(s) failed", file=sys.stderr)
            return 1
        ctx.say("all deployment checks passed")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
