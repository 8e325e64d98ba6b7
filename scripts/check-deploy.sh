#!/usr/bin/env bash
# Checks the deployment files in deploy/ as far as a machine without a container engine can:
# every YAML file parses; the Kubernetes manifests, the compose file and the Dockerfile hold what
# walfeed relies on (and the image's runtime packages provide every library the built binaries
# link); the systemd unit passes `systemd-analyze verify` and its sandboxing scores as intended;
# the entrypoint passes sh -n, dash -n and shellcheck, and behaves as promised when run directly
# against the built walfeed. It builds no image and runs no compose or Kubernetes.
#
#   scripts/check-deploy.sh [BUILD_DIR]     BUILD_DIR (default: build/) holds bin/walfeed
#
# Needs these Debian packages: python3-yaml (for /usr/bin/python3), systemd (systemd-analyze),
# dash, shellcheck, binutils (objdump) and util-linux (setpriv). kubectl, when installed, also
# renders deploy/k8s with its built-in kustomize. Exits 1 after listing every failed check.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# A relative BUILD_DIR is taken from the current directory, as scripts/build.sh does.
build_dir="$(cd "${1:-$here/build}" 2>/dev/null && pwd)" || {
  echo "check-deploy: build directory '${1:-$here/build}' not found; build first (scripts/build.sh)" >&2
  exit 1
}
cd "$here"
walfeed_bin="$build_dir/bin/walfeed"
walfeedctl_bin="$build_dir/bin/walfeedctl"
entrypoint="deploy/docker-entrypoint.sh"
python=/usr/bin/python3

failures=0
say() { printf 'check-deploy: %s\n' "$*"; }
fail() {
  printf 'check-deploy: FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}

# Tools first: a missing one is an install problem, not a finding about deploy/.
missing=()
for binary in "$walfeed_bin" "$walfeedctl_bin"; do
  [ -x "$binary" ] || missing+=("$binary (build it: scripts/build.sh)")
done
"$python" -c 'import yaml' 2>/dev/null || missing+=("$python with PyYAML (apt-get install python3-yaml)")
command -v systemd-analyze >/dev/null || missing+=("systemd-analyze (apt-get install systemd)")
command -v dash >/dev/null || missing+=("dash (apt-get install dash)")
command -v shellcheck >/dev/null || missing+=("shellcheck (apt-get install shellcheck)")
command -v objdump >/dev/null || missing+=("objdump (apt-get install binutils)")
command -v setpriv >/dev/null || missing+=("setpriv (apt-get install util-linux)")
if [ "${#missing[@]}" -gt 0 ]; then
  for m in "${missing[@]}"; do echo "check-deploy: missing: $m" >&2; done
  exit 1
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
chmod 0755 "$scratch"  # the unprivileged entrypoint run below must reach its directories

# --- YAML, Kubernetes, compose, Dockerfile: one Python pass --------------------------------------
say "YAML files, Kubernetes manifests, compose file, Dockerfile"
"$walfeed_bin" --help >"$scratch/walfeed-help.txt"
if ! "$python" - "$here" "$walfeed_bin" "$walfeedctl_bin" "$scratch/walfeed-help.txt" <<'PYTHON'; then
import fnmatch
import glob
import os
import re
import shlex
import subprocess
import sys

import yaml

root, walfeed_bin, walfeedctl_bin, help_file = sys.argv[1:5]
failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


def rel(path):
    return os.path.relpath(path, root)


# Settings walfeed knows, from its own --help: "--pg (WALFEED_PG, default ...)".
with open(help_file) as f:
    known_env = set(re.findall(r"^\s+--[a-z-]+ \((WALFEED_[A-Z_]+),", f.read(), re.M))
if "WALFEED_PG" not in known_env:
    fail("walfeed --help", "lists no WALFEED_PG setting; cannot check variable names")


def check_env_names(where, names):
    for name in names:
        if name.startswith("WALFEED_") and name not in known_env:
            fail(where, f"{name} is not a walfeed setting (walfeed --help lists {len(known_env)})")


PASSWORD_IN_TEXT = [re.compile(r"password\s*=", re.I), re.compile(r"://[^/@\s:]*:[^/@\s]*@")]


def holds_password(text):
    return isinstance(text, str) and any(p.search(text) for p in PASSWORD_IN_TEXT)


def strings_in(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)
    elif isinstance(node, str):
        yield node


# 1. Every YAML file parses.
documents = {}
for path in sorted(glob.glob(os.path.join(root, "deploy", "**", "*.y*ml"), recursive=True)):
    try:
        with open(path) as f:
            documents[path] = [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as error:
        fail(rel(path), f"does not parse as YAML: {error}")
if not documents:
    fail("deploy/", "no YAML files found")

# 2. Kubernetes manifests.
CONTAINER_KEYS = {"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
                  "resources", "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices",
                  "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                  "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
                  "securityContext", "stdin", "stdinOnce", "tty"}
PROBE_KEYS = {"exec", "httpGet", "tcpSocket", "grpc", "initialDelaySeconds", "timeoutSeconds",
              "periodSeconds", "successThreshold", "failureThreshold",
              "terminationGracePeriodSeconds"}
POD_KEYS = {"volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
            "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
            "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
            "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
            "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName",
            "tolerations", "hostAliases", "priorityClassName", "priority", "dnsConfig",
            "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy",
            "overhead", "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
            "schedulingGates", "resourceClaims", "resources"}
STATEFULSET_KEYS = {"replicas", "selector", "template", "volumeClaimTemplates", "serviceName",
                    "podManagementPolicy", "updateStrategy", "revisionHistoryLimit",
                    "minReadySeconds", "persistentVolumeClaimRetentionPolicy", "ordinals"}
POD_SECURITY_KEYS = {"seLinuxOptions", "windowsOptions", "runAsUser", "runAsGroup",
                     "runAsNonRoot", "supplementalGroups", "supplementalGroupsPolicy", "fsGroup",
                     "sysctls", "fsGroupChangePolicy", "seccompProfile", "appArmorProfile",
                     "seLinuxChangePolicy"}
CONTAINER_SECURITY_KEYS = {"capabilities", "privileged", "seLinuxOptions", "windowsOptions",
                           "runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                           "allowPrivilegeEscalation", "procMount", "seccompProfile",
                           "appArmorProfile"}


def unknown_keys(where, node, allowed):
    if not isinstance(node, dict):
        fail(where, f"expected a mapping, found {type(node).__name__}")
        return
    for key in sorted(set(node) - allowed):
        fail(where, f"unknown field '{key}' (a typo?)")


k8s = {}
for path, docs in documents.items():
    if os.sep + "k8s" + os.sep not in path:
        continue
    for doc in docs:
        where = rel(path)
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            fail(where, "a document without kind and apiVersion")
            continue
        if doc["kind"] == "Kustomization":
            for resource in doc.get("resources", []):
                if not os.path.exists(os.path.join(os.path.dirname(path), resource)):
                    fail(where, f"resource '{resource}' does not exist")
            continue
        name = (doc.get("metadata") or {}).get("name")
        if not name:
            fail(where, f"{doc['kind']} without metadata.name")
        k8s.setdefault(doc["kind"], []).append((where, doc))
        if doc["kind"] == "Secret" and (doc.get("data") or doc.get("stringData")):
            fail(where, f"Secret '{name}' holds values in a manifest; reference it, create it apart")
        for text in strings_in(doc):
            if holds_password(text):
                fail(where, f"a plaintext password in {doc['kind']} '{name}' (value not shown)")

statefulsets = [(w, d) for w, d in k8s.get("StatefulSet", []) if d["metadata"]["name"] == "walfeed"]
if len(statefulsets) != 1:
    fail("deploy/k8s", f"expected one StatefulSet named walfeed, found {len(statefulsets)}")
# The NATS JetStream cluster walfeed replicates into: three nodes, each with its own volume, the
# config with JetStream on and a max_payload that takes any walfeed change (up to about 1 MiB in a
# log stored before replication was on; 512 KiB once replicated).
nats_sets = [(w, d) for w, d in k8s.get("StatefulSet", []) if d["metadata"]["name"] == "nats"]
for where, sts in nats_sets:
    spec = sts.get("spec") or {}
    unknown_keys(f"{where} spec", spec, STATEFULSET_KEYS)
    if spec.get("replicas") != 3:
        fail(where, "the NATS cluster needs 3 nodes for a 3-replica stream")
    if not spec.get("volumeClaimTemplates"):
        fail(where, "NATS nodes without volumes lose the stream with the pod")
for where, cm in k8s.get("ConfigMap", []):
    if cm["metadata"]["name"] != "nats-config":
        continue
    conf = (cm.get("data") or {}).get("nats.conf", "")
    if "jetstream" not in conf:
        fail(where, "nats.conf does not turn JetStream on")
    payload = re.search(r"max_payload:\s*(\d+)MB", conf)
    if not payload or int(payload.group(1)) < 2:
        fail(where, "nats.conf needs max_payload of 2MB or more (a walfeed change is up to ~1 MiB)")
configmaps = {d["metadata"]["name"]: d for _, d in k8s.get("ConfigMap", [])}
services = k8s.get("Service", [])
# Replicas (--follow): a StatefulSet named walfeed-replica, any number of pods.
replica_sets = [(w, d) for w, d in k8s.get("StatefulSet", [])
                if d["metadata"]["name"] == "walfeed-replica"]
if len(replica_sets) != 1:
    fail("deploy/k8s", f"expected one StatefulSet named walfeed-replica, found {len(replica_sets)}")
for where, sts in statefulsets + replica_sets:
    replica = sts["metadata"]["name"] == "walfeed-replica"
    spec = sts.get("spec") or {}
    unknown_keys(f"{where} spec", spec, STATEFULSET_KEYS)
    if not replica:
        # One walfeed per slot, or an ingest group of them: then the members take turns on the
        # slot (--ingest=auto), confirm only what JetStream has, and can bootstrap from each
        # other by the headless Service's pod names.
        count = spec.get("replicas")
        settings = (configmaps.get("walfeed-config") or {}).get("data") or {}
        if not isinstance(count, int) or count < 1:
            fail(where, f"replicas is {count!r}: expected a number of walfeeds")
        elif count > 1:
            if settings.get("WALFEED_INGEST") != "auto":
                fail(where, f"{count} walfeeds on one slot need WALFEED_INGEST=auto")
            if settings.get("WALFEED_CONFIRM_AFTER") != "replicated" or \
                    not settings.get("WALFEED_REPLICATE_TO"):
                fail(where, "an ingest group needs WALFEED_REPLICATE_TO and "
                     "WALFEED_CONFIRM_AFTER=replicated")
            pods = {f"walfeed-{i}.{spec.get('serviceName')}:50051" for i in range(count)}
            named = set(filter(None, settings.get("WALFEED_BOOTSTRAP_FROM", "").split(",")))
            if named != pods:
                fail(where, f"WALFEED_BOOTSTRAP_FROM names {sorted(named)}, not the pods "
                     f"{sorted(pods)}")
    if replica and not (isinstance(spec.get("replicas"), int) and spec["replicas"] >= 1):
        fail(where, f"replicas is {spec.get('replicas')!r}: expected a number of replicas")
    pod_labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        fail(where, "selector.matchLabels does not match the pod template's labels")
    if spec.get("serviceName") not in {d["metadata"]["name"] for _, d in services}:
        fail(where, f"serviceName '{spec.get('serviceName')}' names no Service in deploy/k8s")
    claims = {(c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
    if not claims:
        fail(where, "no volumeClaimTemplates: the change log would not survive the pod")
    pod = spec.get("template", {}).get("spec") or {}
    unknown_keys(f"{where} pod spec", pod, POD_KEYS)
    pod_security = pod.get("securityContext") or {}
    unknown_keys(f"{where} pod securityContext", pod_security, POD_SECURITY_KEYS)
    if pod_security.get("runAsNonRoot") is not True:
        fail(where, "pod securityContext.runAsNonRoot is not true")
    if not pod_security.get("fsGroup"):
        fail(where, "pod securityContext.fsGroup is not set: the new volume is not writable")
    containers = pod.get("containers") or []
    walfeed = [c for c in containers if c.get("name") == "walfeed"]
    if len(walfeed) != 1:
        fail(where, "no container named walfeed")
        continue
    container = walfeed[0]
    unknown_keys(f"{where} container", container, CONTAINER_KEYS)
    mounts = {m.get("name"): m.get("mountPath") for m in container.get("volumeMounts") or []}
    data_dir = "/var/lib/walfeed"
    if not any(mounts.get(claim) == data_dir for claim in claims):
        fail(where, f"no volumeClaimTemplate is mounted at {data_dir}")
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if not probe:
            fail(where, f"no {probe_name}")
            continue
        unknown_keys(f"{where} {probe_name}", probe, PROBE_KEYS)
        if (probe.get("grpc") or {}).get("port") != 50051:
            fail(where, f"{probe_name} is not the native gRPC probe on port 50051")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        if not (resources.get(part) or {}).get("memory"):
            fail(where, f"resources.{part}.memory is not set")
    security = container.get("securityContext") or {}
    unknown_keys(f"{where} container securityContext", security, CONTAINER_SECURITY_KEYS)
    if security.get("readOnlyRootFilesystem") is not True:
        fail(where, "container securityContext.readOnlyRootFilesystem is not true")
    if security.get("allowPrivilegeEscalation") is not False:
        fail(where, "container securityContext.allowPrivilegeEscalation is not false")
    env = {e.get("name"): e for e in container.get("env") or []}
    password = env.get("PGPASSWORD") or {}
    if not replica and not (password.get("valueFrom") or {}).get("secretKeyRef"):
        fail(where, "PGPASSWORD does not come from a secretKeyRef")
    if replica:
        # A replica follows exactly what the walfeed StatefulSet publishes and reads no PostgreSQL.
        settings = {}
        for source in container.get("envFrom") or []:
            settings.update((configmaps.get((source.get("configMapRef") or {}).get("name")) or {})
                            .get("data") or {})
        published = (configmaps.get("walfeed-config") or {}).get("data") or {}
        if not settings.get("WALFEED_FOLLOW") or \
                settings.get("WALFEED_FOLLOW") != published.get("WALFEED_REPLICATE_TO"):
            fail(where, "WALFEED_FOLLOW is not the NATS servers walfeed-config publishes to")
        if settings.get("WALFEED_REPLICATION_STREAM") != published.get("WALFEED_REPLICATION_STREAM"):
            fail(where, "WALFEED_REPLICATION_STREAM is not the stream walfeed-config publishes")
        for name in ("WALFEED_PG", "WALFEED_REPLICATE_TO", "PGPASSWORD"):
            if name in settings or name in env:
                fail(where, f"a replica sets {name}")
    for name, entry in env.items():
        if re.search(r"PASS|TOKEN|SECRET", name or "") and "value" in entry:
            fail(where, f"env {name} has a literal value; use a secretKeyRef")
    check_env_names(f"{where} env", env)
    for source in container.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        if ref and ref not in configmaps:
            fail(where, f"envFrom names ConfigMap '{ref}', which deploy/k8s does not define")
    for port in container.get("ports") or []:
        if port.get("containerPort") == 50051 and port.get("name") != "grpc":
            fail(where, "container port 50051 is not named grpc")
for name, cm in configmaps.items():
    data = cm.get("data") or {}
    check_env_names(f"deploy/k8s ConfigMap {name}", data)
    if "WALFEED_PG" in data and data.get("WALFEED_LISTEN", "").split(":")[0] not in ("0.0.0.0", "[::]", ""):
        fail(f"deploy/k8s ConfigMap {name}", "WALFEED_LISTEN must listen on every interface in a pod")
clusterip = [d for _, d in services if (d.get("spec") or {}).get("type", "ClusterIP") == "ClusterIP"
             and (d.get("spec") or {}).get("clusterIP") != "None"]
# The consumers' Service reaches the walfeed pod and the replicas alike.
feed_service = [d for d in clusterip if d["metadata"]["name"] == "walfeed"]
for where, sts in statefulsets + replica_sets:
    labels = ((sts.get("spec") or {}).get("template", {}).get("metadata") or {}).get("labels") or {}
    selector = ((feed_service[0].get("spec") or {}).get("selector") or {}) if feed_service else {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        fail(where, "the Service walfeed does not select its pods")
if not any(p.get("name") == "grpc" and p.get("port") == 50051
           for s in clusterip for p in (s.get("spec") or {}).get("ports") or []):
    fail("deploy/k8s", "no ClusterIP Service with port 50051 named grpc")

# 3. The compose file.
compose_path = os.path.join(root, "deploy", "compose.yaml")
compose = (documents.get(compose_path) or [None])[0]
if not isinstance(compose, dict):
    fail("deploy/compose.yaml", "missing or empty")
    compose = {}
compose_dir = os.path.dirname(compose_path)
svc = compose.get("services") or {}
for needed in ("postgres", "walfeed", "consumer"):
    if needed not in svc:
        fail("deploy/compose.yaml", f"no service '{needed}'")
declared_volumes = set((compose.get("volumes") or {}).keys())


def mounts_of(service):
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            yield parts[0], parts[1] if len(parts) > 1 else parts[0]
        else:
            yield volume.get("source"), volume.get("target")


postgres = svc.get("postgres") or {}
if not str(postgres.get("image", "")).startswith("postgres:15"):
    fail("deploy/compose.yaml", "postgres is not the postgres:15 image")
command = postgres.get("command") or []
command = " ".join(command) if isinstance(command, list) else str(command)
if "wal_level=logical" not in command:
    fail("deploy/compose.yaml", "postgres does not run with wal_level=logical")
if not postgres.get("healthcheck"):
    fail("deploy/compose.yaml", "postgres has no healthcheck for walfeed to wait on")
init_sql = None
for source, target in mounts_of(postgres):
    if str(target).startswith("/docker-entrypoint-initdb.d"):
        init_sql = os.path.normpath(os.path.join(compose_dir, source))
if not init_sql or not os.path.isfile(init_sql):
    fail("deploy/compose.yaml", f"the init SQL mounted into postgres does not exist: {init_sql}")
    init_text = ""
else:
    with open(init_sql) as f:
        init_text = f.read()
    for needed in ("REPLICATION", "CREATE TABLE", "CREATE PUBLICATION"):
        if needed not in init_text:
            fail(rel(init_sql), f"does not contain {needed}")

walfeed_svc = svc.get("walfeed") or {}
build = walfeed_svc.get("build") or {}
context = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
dockerfile = os.path.normpath(os.path.join(context, build.get("dockerfile", "Dockerfile")))
if context != root or dockerfile != os.path.join(root, "deploy", "Dockerfile"):
    fail("deploy/compose.yaml", f"walfeed is not built from deploy/Dockerfile with the repository "
         f"as context (context {context}, dockerfile {dockerfile})")
if ((walfeed_svc.get("depends_on") or {}).get("postgres") or {}).get("condition") != "service_healthy":
    fail("deploy/compose.yaml", "walfeed does not wait for postgres to be healthy")
walfeed_mounts = dict((t, s) for s, t in mounts_of(walfeed_svc))
if walfeed_mounts.get("/var/lib/walfeed") not in declared_volumes:
    fail("deploy/compose.yaml", "no named volume mounted at /var/lib/walfeed for the log")
environment = walfeed_svc.get("environment") or {}
if isinstance(environment, list):
    environment = dict(e.split("=", 1) if "=" in e else (e, "") for e in environment)
check_env_names("deploy/compose.yaml walfeed", environment)
if not environment.get("WALFEED_PG"):
    fail("deploy/compose.yaml", "walfeed has no WALFEED_PG")
if holds_password(environment.get("WALFEED_PG")):
    fail("deploy/compose.yaml", "WALFEED_PG holds a password; use PGPASSWORD")
role_password = re.search(r"ROLE\s+walfeed\b[^;]*PASSWORD\s+'([^']*)'", init_text, re.I)
if role_password and environment.get("PGPASSWORD") != role_password.group(1):
    fail("deploy/compose.yaml", "walfeed's PGPASSWORD is not the password init.sql gives the role")
consumer = svc.get("consumer") or {}
entry = consumer.get("entrypoint")
entry = entry if isinstance(entry, list) else shlex.split(str(entry or ""))
args = consumer.get("command")
args = args if isinstance(args, list) else shlex.split(str(args or ""))
if entry[:1] != ["walfeedctl"] or "subscribe" not in args:
    fail("deploy/compose.yaml", "consumer does not run walfeedctl subscribe")
if "walfeed:50051" not in " ".join(args):
    fail("deploy/compose.yaml", "consumer does not subscribe to walfeed:50051")
if consumer.get("image") != walfeed_svc.get("image"):
    fail("deploy/compose.yaml", "consumer does not use walfeed's image")
# The ingest group (--ingest=auto): walfeed and at least two more members with the same
# PostgreSQL, slot and stream, each with a volume of its own and a name of its own, all listed by
# the consumer and by WALFEED_BOOTSTRAP_FROM.
members = {name: service for name, service in svc.items()
           if name == "walfeed" or re.fullmatch(r"walfeed-\d+", name)}
if len(members) < 3:
    fail("deploy/compose.yaml", f"expected an ingest group of 3 walfeeds, found {len(members)}")
member_volumes = set()
member_names = set()
shared = ("WALFEED_PG", "WALFEED_REPLICATE_TO", "WALFEED_REPLICATION_STREAM", "WALFEED_SLOT",
          "WALFEED_BOOTSTRAP_FROM")
for name, member in members.items():
    env = member.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    check_env_names(f"deploy/compose.yaml {name}", env)
    if env.get("WALFEED_INGEST") != "auto" or env.get("WALFEED_CONFIRM_AFTER") != "replicated":
        fail("deploy/compose.yaml", f"{name} is not an ingest group member (WALFEED_INGEST=auto, "
             "WALFEED_CONFIRM_AFTER=replicated)")
    for setting in shared:
        if env.get(setting) != environment.get(setting):
            fail("deploy/compose.yaml", f"{name}'s {setting} differs from walfeed's")
    member_names.add(env.get("WALFEED_INSTANCE_NAME"))
    if member.get("image") != walfeed_svc.get("image"):
        fail("deploy/compose.yaml", f"{name} does not use walfeed's image")
    volume = dict((t, s) for s, t in mounts_of(member)).get("/var/lib/walfeed")
    if volume not in declared_volumes:
        fail("deploy/compose.yaml", f"{name} has no named volume at /var/lib/walfeed")
    member_volumes.add(volume)
    if f"{name}:50051" not in " ".join(args):
        fail("deploy/compose.yaml", f"the consumer does not list {name}:50051")
    if f"{name}:50051" not in environment.get("WALFEED_BOOTSTRAP_FROM", ""):
        fail("deploy/compose.yaml", f"WALFEED_BOOTSTRAP_FROM does not list {name}:50051")
if len(member_volumes) != len(members):
    fail("deploy/compose.yaml", "two members share a volume")
if None in member_names or len(member_names) != len(members):
    fail("deploy/compose.yaml", "the members need WALFEED_INSTANCE_NAME, each its own")

# 4. The Dockerfile: a tiny parser (continuations, comments), then what the image promises.
dockerfile_path = os.path.join(root, "deploy", "Dockerfile")
instructions = []
with open(dockerfile_path) as f:
    pending = ""
    for line in f:
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
where = "deploy/Dockerfile"
global_args = {}
stages = []  # [{"name", "base", "instructions"}]
for keyword, rest in instructions:
    if keyword == "ARG" and not stages:
        name, _, default = rest.partition("=")
        global_args[name] = default
    elif keyword == "FROM":
        words = rest.split()
        words = [w for w in words if not w.startswith("--")]
        base = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                      lambda m: global_args.get(m.group(1) or m.group(2), ""), words[0])
        name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
        stages.append({"name": name, "base": base, "instructions": []})
    elif stages:
        stages[-1]["instructions"].append((keyword, rest))
    else:
        fail(where, f"{keyword} before the first FROM")
if len(stages) < 2:
    fail(where, f"expected a build stage and a runtime stage, found {len(stages)} stage(s)")
    stages += [{"name": None, "base": "", "instructions": []}] * (2 - len(stages))
for stage in stages:
    if not re.fullmatch(r"debian:bookworm(-slim)?", stage["base"]):
        fail(where, f"stage {stage['name']} is based on '{stage['base']}', not Debian bookworm")
build_stage, runtime = stages[0], stages[-1]


def of(stage, keyword):
    return [rest for k, rest in stage["instructions"] if k == keyword]


def apt_packages(stage):
    packages = []
    for run in of(stage, "RUN"):
        for match in re.finditer(r"apt-get install ((?:[^&;|]|\\\n)*)", run):
            packages += [w for w in match.group(1).split() if not w.startswith("-")]
    return packages


build_runs = " ".join(of(build_stage, "RUN"))
with open(os.path.join(root, "CMakeLists.txt")) as f:
    cmake_options = set(re.findall(r"option\((\w+)", f.read()))
for option in re.findall(r"-D(WALFEED_\w+)=", build_runs):
    if option not in cmake_options:
        fail(where, f"-D{option}: CMakeLists.txt has no such option ({sorted(cmake_options)})")
if "-DWALFEED_BUILD_TESTS=OFF" not in build_runs:
    fail(where, "the build stage does not turn the tests off")
if not re.search(r"--target walfeed walfeedctl", build_runs):
    fail(where, "the build stage does not build the targets walfeed and walfeedctl")

runtime_packages = apt_packages(runtime)
for package in runtime_packages:
    if package.endswith("-dev"):
        fail(where, f"the runtime stage installs the development package {package}")


def dpkg(*args):
    return subprocess.run(["dpkg-query", *args], capture_output=True, text=True)


for package in apt_packages(build_stage) + runtime_packages:
    if "install ok installed" not in dpkg("-W", "-f=${Status}", package).stdout:
        fail(where, f"package '{package}' is not installed on this machine, so its name is "
             "unverified (check it with apt-cache policy)")

# Every library the built binaries link must come from a runtime package or its dependencies.
# One dpkg-query for the whole dependency graph and one dpkg -S for every library keep it fast.
depends_of = {}
for line in dpkg("-W", "-f=${Package}\t${Depends},${Pre-Depends}\n").stdout.splitlines():
    package, _, depends = line.partition("\t")
    names = [alt.split("|")[0].strip().split(" ")[0] for alt in depends.split(",")]
    depends_of.setdefault(package, set()).update(n.split(":")[0] for n in names if n)
provided = set()
queue = list(runtime_packages) + ["libc6", "libgcc-s1", "libstdc++6"]  # in every Debian image
while queue:
    package = queue.pop()
    if package not in provided:
        provided.add(package)
        queue += depends_of.get(package, ())
needed = {}  # library -> the binaries that link it
for binary in (walfeed_bin, walfeedctl_bin):
    dump = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True).stdout
    for library in re.findall(r"NEEDED\s+(\S+)", dump):
        needed.setdefault(library, []).append(os.path.basename(binary))
# Where the loader finds each library (ldd: the right architecture), then who ships that file:
# under merged /usr a package may list it as /lib/... or /usr/lib/..., so ask by pattern.
found = {}
for binary in (walfeed_bin, walfeedctl_bin):
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    found.update(re.findall(r"^\s*(\S+) => (/\S+)", ldd, re.M))
patterns = sorted({f"*/{os.path.basename(os.path.dirname(found[l]))}/{l}"
                   for l in needed if l in found})
owner_of = {}
query = subprocess.run(["dpkg", "-S", *patterns], capture_output=True, text=True).stdout
for line in query.splitlines():
    packages, _, path = line.partition(": ")
    owner_of.setdefault(os.path.basename(path), packages.split(",")[0].split(":")[0].strip())
for library, binaries in sorted(needed.items()):
    owner = owner_of.get(library)
    if owner is None:
        fail(where, f"{', '.join(binaries)} links {library}, which no Debian package owns here")
    elif owner not in provided:
        fail(where, f"{', '.join(binaries)} links {library} from {owner}, which the runtime "
             "stage does not install")

# Every package that CMake found when it configured BUILD_DIR must come with the build stage's
# packages (Depends only: the stage installs no Recommends), tests' own packages aside.
build_closure = set()
queue = list(apt_packages(build_stage))
while queue:
    package = queue.pop()
    if package not in build_closure:
        build_closure.add(package)
        queue += depends_of.get(package, ())
cmake_cache = os.path.join(os.path.dirname(os.path.dirname(walfeed_bin)), "CMakeCache.txt")
found_files = set()
if os.path.isfile(cmake_cache):
    with open(cmake_cache) as f:
        for name, kind, value in re.findall(r"^(\w+):(PATH|FILEPATH)=(/usr/\S+)$", f.read(), re.M):
            if kind == "PATH" and name.endswith("_DIR") and "/cmake/" in value:
                found_files.update(glob.glob(os.path.join(value, "*onfig.cmake")))
            elif kind == "FILEPATH":
                found_files.add(value)
TEST_ONLY = {"libgtest-dev", "libgmock-dev", "googletest", "libbenchmark-dev"}
if found_files:
    query = subprocess.run(["dpkg", "-S", *sorted(found_files)], capture_output=True, text=True)
    for line in query.stdout.splitlines():
        package, _, path = line.partition(": ")
        package = package.split(",")[0].split(":")[0].strip()
        if package not in build_closure and package not in TEST_ONLY:
            fail(where, f"the build uses {path} from {package}, which the build stage's packages "
                 "do not bring")
else:
    print(f"check-deploy: no {rel(cmake_cache)}: skipped the build stage's package check")

users = of(runtime, "USER")
if not users:
    fail(where, "the runtime stage sets no USER: the container would run as root")
elif users[-1].split(":")[0] in ("root", "0"):
    fail(where, f"the runtime stage's USER is {users[-1]}")
healthchecks = of(runtime, "HEALTHCHECK")
if not healthchecks or "walfeedctl" not in healthchecks[-1] or "health" not in healthchecks[-1]:
    fail(where, "no HEALTHCHECK running walfeedctl health")
entrypoints = of(runtime, "ENTRYPOINT")
if not entrypoints or "docker-entrypoint.sh" not in entrypoints[-1]:
    fail(where, "the ENTRYPOINT is not docker-entrypoint.sh")
if not any("50051" in e.split() for e in of(runtime, "EXPOSE")):
    fail(where, "does not EXPOSE 50051")
if not any("/var/lib/walfeed" in v for v in of(runtime, "VOLUME")):
    fail(where, "/var/lib/walfeed is not a VOLUME")
runtime_env = " ".join(of(runtime, "ENV"))
for setting in ("WALFEED_DATA_DIR=/var/lib/walfeed", "WALFEED_LISTEN=0.0.0.0:50051"):
    if setting not in runtime_env:
        fail(where, f"the runtime stage does not set {setting}")
check_env_names(where, re.findall(r"(WALFEED_\w+)=", runtime_env))
if not any(f"--from={build_stage['name']}" in c for c in of(runtime, "COPY")):
    fail(where, "the runtime stage copies nothing from the build stage")

# COPY sources from the context must exist and not be excluded by .dockerignore.
ignore_path = os.path.join(root, ".dockerignore")
ignored = []
if os.path.isfile(ignore_path):
    with open(ignore_path) as f:
        ignored = [l.strip().strip("/") for l in f if l.strip() and not l.startswith("#")]
for must_skip in (".git", "build*"):
    if must_skip not in ignored:
        fail(".dockerignore", f"does not exclude {must_skip}")
for stage in stages:
    for copy in of(stage, "COPY"):
        words = [w for w in copy.split() if not w.startswith("--")]
        if any(w.startswith("--from") for w in copy.split()) or len(words) < 2:
            continue
        for source in words[:-1]:
            if source == ".":
                continue
            if not os.path.exists(os.path.join(root, source)):
                fail(where, f"COPY source '{source}' does not exist in the repository")
            if any(fnmatch.fnmatch(source, p) or fnmatch.fnmatch(source.split("/")[0], p)
                   for p in ignored):
                fail(where, f"COPY source '{source}' is excluded by .dockerignore")

# 5. The systemd environment example names only real settings.
with open(os.path.join(root, "deploy", "systemd", "walfeed.env.example")) as f:
    check_env_names("deploy/systemd/walfeed.env.example",
                    re.findall(r"^#?\s*(WALFEED_\w+)=", f.read(), re.M))

for failure in failures:
    print(f"check-deploy: FAIL: {failure}", file=sys.stderr)
sys.exit(1 if failures else 0)
PYTHON
  failures=$((failures + 1))
fi

# --- Kubernetes: kustomize render, when kubectl is installed -------------------------------------
if command -v kubectl >/dev/null; then
  say "kubectl kustomize deploy/k8s"
  if ! kubectl kustomize deploy/k8s >"$scratch/k8s.yaml" 2>"$scratch/k8s.err"; then
    fail "kubectl kustomize deploy/k8s: $(cat "$scratch/k8s.err")"
  fi
else
  say "kubectl not installed: skipped rendering deploy/k8s with kustomize"
fi

# --- systemd --------------------------------------------------------------------------------------
say "systemd-analyze verify deploy/systemd/walfeed.service"
unit="deploy/systemd/walfeed.service"
# The unit runs /usr/local/bin/walfeed, which is not installed here: verify a copy that runs the
# built binary instead, so that every other complaint still counts.
if [ "$(grep -c '^ExecStart=/usr/local/bin/walfeed$' "$unit")" != 1 ]; then
  fail "$unit: expected exactly one 'ExecStart=/usr/local/bin/walfeed'"
fi
mkdir -p "$scratch/unit"
sed "s#^ExecStart=/usr/local/bin/walfeed\$#ExecStart=$walfeed_bin#" "$unit" \
  >"$scratch/unit/walfeed.service"
# verify exits 0 on warnings (an unknown key, a value it ignores): any output is a failure.
if ! systemd-analyze verify "$scratch/unit/walfeed.service" >"$scratch/verify.out" 2>&1 ||
  [ -s "$scratch/verify.out" ]; then
  fail "$unit: systemd-analyze verify reports:
$(sed "s#$scratch/unit/##" "$scratch/verify.out")"
fi
for setting in Type=simple User=walfeed EnvironmentFile=-/etc/walfeed/walfeed.env \
  Restart=on-failure KillSignal=SIGTERM StateDirectory=walfeed NoNewPrivileges=yes \
  ProtectSystem=strict 'CapabilityBoundingSet=' 'SystemCallFilter=@system-service' \
  'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' MemoryDenyWriteExecute=yes; do
  grep -qxF "$setting" "$unit" || fail "$unit: no line '$setting'"
done
grep -q '^TimeoutStopSec=' "$unit" || fail "$unit: no TimeoutStopSec="
# Exposure is 0 (locked down) to 10 (unprotected); the unit scores 1.2. Fail above 2.0.
if ! systemd-analyze security --offline=yes --threshold=20 "$scratch/unit/walfeed.service" \
  >"$scratch/security.out" 2>&1; then
  fail "$unit: systemd-analyze security rates the sandbox weaker than 2.0: $(tail -1 "$scratch/security.out")"
fi

# --- the entrypoint -------------------------------------------------------------------------------
say "$entrypoint: syntax, shellcheck, behaviour"
[ -x "$entrypoint" ] || fail "$entrypoint is not executable"
sh -n "$entrypoint" || fail "$entrypoint: sh -n"
dash -n "$entrypoint" || fail "$entrypoint: dash -n"
shellcheck -s sh "$entrypoint" || fail "$entrypoint: shellcheck"
shellcheck -s bash "scripts/check-deploy.sh" || fail "scripts/check-deploy.sh: shellcheck"

# run_entrypoint NAME [env assignments...] -- [args...]: runs the entrypoint without any WALFEED_*
# or PG* variable of this shell; stdout, stderr and the status go to $scratch/NAME.{out,err,rc}.
run_entrypoint() {
  local name="$1"
  shift
  local assignments=()
  while [ "$1" != "--" ]; do
    assignments+=("$1")
    shift
  done
  shift
  local status=0
  env -i PATH="$PATH" HOME="$scratch" WALFEED_BIN="$walfeed_bin" "${assignments[@]}" \
    timeout 20 "$here/$entrypoint" "$@" >"$scratch/$name.out" 2>"$scratch/$name.err" || status=$?
  echo "$status" >"$scratch/$name.rc"
}
# expect NAME STATUS-PATTERN STDERR-TEXT: the run ended as promised.
expect() {
  local name="$1" status_pattern="$2" text="$3" status
  status="$(cat "$scratch/$name.rc")"
  # shellcheck disable=SC2254 # the pattern is meant to match
  case "$status" in
    $status_pattern) ;;
    *) fail "entrypoint, $name: exit status $status, expected $status_pattern; stderr: $(cat "$scratch/$name.err")" ;;
  esac
  grep -qF -- "$text" "$scratch/$name.err" "$scratch/$name.out" ||
    fail "entrypoint, $name: output lacks '$text'; stderr: $(cat "$scratch/$name.err")"
}

# (a) no PostgreSQL given
run_entrypoint no-pg WALFEED_DATA_DIR="$scratch/a" --
expect no-pg '[1-9]*' "no PostgreSQL to capture"
[ ! -e "$scratch/a" ] || fail "entrypoint, no-pg: created the data directory before failing"
# (b) a data directory whose parent does not exist, and one this user cannot write
run_entrypoint no-parent WALFEED_PG="host=/nonexistent" -- --data-dir "$scratch/missing/data"
expect no-parent '[1-9]*' "does not exist"
mkdir -m 0755 "$scratch/readonly"
if [ "$(id -u)" = 0 ]; then
  # root writes anywhere: run as nobody, for whom the directory is read-only. A copy of the
  # entrypoint in the scratch directory, and /bin/true as walfeed (never reached), so that nobody
  # needs no access to the repository or the build directory.
  cp "$entrypoint" "$scratch/entrypoint.sh"
  status=0
  env -i PATH="$PATH" WALFEED_BIN=/bin/true WALFEED_PG="host=/nonexistent" \
    WALFEED_DATA_DIR="$scratch/readonly" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$scratch/entrypoint.sh" \
    >"$scratch/unwritable.out" 2>"$scratch/unwritable.err" || status=$?
  echo "$status" >"$scratch/unwritable.rc"
else
  chmod 0555 "$scratch/readonly"
  run_entrypoint unwritable WALFEED_PG="host=/nonexistent" WALFEED_DATA_DIR="$scratch/readonly" --
fi
expect unwritable '[1-9]*' "is not writable"
# (c) --help needs nothing: it execs walfeed
run_entrypoint help -- --help
expect help 0 "Usage: walfeed"
# (d) all set: the entrypoint creates the data directory and hands over to walfeed with the flags,
# which opens its log there and then stops at the unreachable PostgreSQL.
run_entrypoint handover WALFEED_PG="host=$scratch/no-socket-here connect_timeout=2" \
  WALFEED_LISTEN=127.0.0.1:0 -- --data-dir "$scratch/data" --log-level warn
expect handover '[1-9]*' "PostgreSQL"
[ -f "$scratch/data/CURRENT" ] || fail "entrypoint, handover: walfeed did not open its log in --data-dir"
if compgen -G "$scratch/data/.walfeed-entrypoint-probe.*" >/dev/null; then
  fail "entrypoint, handover: the write probe was left in the data directory"
fi
# (e) a replica (WALFEED_FOLLOW) needs no PostgreSQL: the entrypoint hands over, and walfeed
# itself judges the setting (here a URL without its scheme, refused at once).
run_entrypoint replica WALFEED_FOLLOW=127.0.0.1:4222 WALFEED_LISTEN=127.0.0.1:0 -- \
  --data-dir "$scratch/replica"
expect replica '[1-9]*' "--follow takes the same URLs"
# (f) another command runs as given (docker run IMAGE walfeedctl ...)
run_entrypoint other -- "$walfeedctl_bin" --help
expect other 0 "walfeedctl subscribe"

# The image's HEALTHCHECK calls `walfeedctl health`; say so when this build does not have it yet.
if "$walfeedctl_bin" health --server 127.0.0.1:1 2>&1 | grep -q "unknown command 'health'"; then
  say "note: this build's walfeedctl has no 'health' command yet; the image's HEALTHCHECK needs it"
fi

if [ "$failures" -gt 0 ]; then
  echo "check-deploy: $failures check(s) failed" >&2
  exit 1
fi
say "all deployment checks passed"
