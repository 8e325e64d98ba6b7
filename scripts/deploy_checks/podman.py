"""Podman as these machines run it (../shared/CONTAINERS.md): a containers.conf without default
ulimits and with the cgroupfs manager, the runc runtime, a Debian 12 base image made with
debootstrap from Debian's packages (no registry is reachable), kept between runs, and walfeed's
image built from deploy/Dockerfile on it."""

import os
import shutil
import subprocess
import time

BASE_IMAGE = "localhost/walfeed-debian-base:bookworm"
IMAGE = "localhost/walfeed:deploy-check"
CONF = """[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""


class Podman:
    def __init__(self, ctx):
        self.ctx = ctx
        self.conf = os.path.join(ctx.scratch, "containers.conf")
        with open(self.conf, "w") as f:
            f.write(CONF)
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf)
        self.last_kube_state = ""  # kube_run.py: the pods' containers and logs, for a report

    def run(self, *args, timeout=600, check=True, cwd=None):
        """`podman ARGS`; its standard output. Raises with it and the errors when it fails and
        `check` says so."""
        done = subprocess.run(["podman", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, cwd=cwd)
        if check and done.returncode != 0:
            raise RuntimeError(f"podman {' '.join(args)} exited {done.returncode}: "
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        return done.stdout

    def logs(self, name):
        """What container `name` wrote (walfeed logs to stderr, which podman logs passes on)."""
        done = subprocess.run(["podman", "logs", name], env=self.env, capture_output=True,
                              text=True, timeout=60)
        return done.stdout + done.stderr

    def ok(self, *args, timeout=600):
        return subprocess.run(["podman", *args], env=self.env, capture_output=True,
                              timeout=timeout).returncode == 0

    def ensure_base_image(self):
        """Debian 12 (minbase) from Debian's packages, made once and kept."""
        if self.ok("image", "exists", BASE_IMAGE):
            return
        mirror = "http://deb.debian.org/debian"
        sources = "/etc/apt/sources.list.d/debian.sources"
        if os.path.exists(sources):
            with open(sources) as f:
                uris = [line.split()[1] for line in f if line.startswith("URIs:")]
            mirror = uris[0] if uris else mirror
        rootfs = os.path.join(self.ctx.scratch, "rootfs")
        started = time.monotonic()
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", rootfs, mirror],
                       check=True, capture_output=True, timeout=900)
        tar = subprocess.Popen(["tar", "-C", rootfs, "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, env=self.env,
                       check=True, capture_output=True, timeout=600)
        tar.wait()
        shutil.rmtree(rootfs, ignore_errors=True)
        self.ctx.say(f"containers: made the base image {BASE_IMAGE} with debootstrap in "
                     f"{time.monotonic() - started:.0f} s")

    def configure_build_stage(self):
        """deploy/Dockerfile's build stage up to its configure step (target build-configured):
        what the default build needs, without compiling walfeed a second time."""
        started = time.monotonic()
        try:
            subprocess.run(["podman", "build", "--format", "docker", "--network=host", "-f",
                            "deploy/Dockerfile", "--build-arg", f"DEBIAN_IMAGE={BASE_IMAGE}",
                            "--target", "build-configured", "-t",
                            "localhost/walfeed-build-configured:deploy-check", "."],
                           cwd=self.ctx.root, env=self.env, check=True, capture_output=True,
                           text=True, timeout=1800)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"the build stage does not configure: {error.stdout[-3000:]}"
                               f"{error.stderr[-3000:]}")
        return time.monotonic() - started

    def build_walfeed_image(self, from_source):
        """deploy/Dockerfile on the base image: compiling walfeed in its build stage, or (the
        default here) with the binaries of BUILD_DIR as deploy/prebuilt/."""
        args = ["build", "--format", "docker", "--network=host", "-f", "deploy/Dockerfile",
                "--build-arg", f"DEBIAN_IMAGE={BASE_IMAGE}",
                "--build-arg", f"RUNTIME_IMAGE={BASE_IMAGE}", "-t", IMAGE]
        prebuilt = self.ctx.path("deploy", "prebuilt")
        if not from_source:
            os.makedirs(prebuilt, exist_ok=True)
            for binary in (self.ctx.walfeed_bin, self.ctx.walfeedctl_bin):
                shutil.copy2(binary, prebuilt)
            args += ["--target", "prebuilt"]
        started = time.monotonic()
        try:
            subprocess.run(["podman", *args, "."], cwd=self.ctx.root, env=self.env, check=True,
                           capture_output=True, text=True, timeout=1800)
        except subprocess.CalledProcessError as error:
            raise RuntimeError(f"podman build failed: {error.stdout[-3000:]}{error.stderr[-3000:]}")
        finally:
            shutil.rmtree(prebuilt, ignore_errors=True)
        return time.monotonic() - started
