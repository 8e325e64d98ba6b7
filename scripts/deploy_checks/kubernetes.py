"""The Kubernetes manifests of deploy/k8s: every field known (a typo is a failure), and what
walfeed needs of them: a StatefulSet with a volume claim at its data directory, gRPC probes on its
health service, memory requests and limits, a locked-down security context, secrets from secret
references only, replicas that follow the stream walfeed publishes, a NATS cluster able to hold
it, and a Service that reaches every pod. Renders the kustomization when kubectl is installed."""

import os
import re
import shutil
import subprocess

from common import holds_password, strings_in

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


def unknown_keys(ctx, where, node, allowed):
    if not isinstance(node, dict):
        ctx.fail(where, f"expected a mapping, found {type(node).__name__}")
        return
    for key in sorted(set(node) - allowed):
        ctx.fail(where, f"unknown field '{key}' (a typo?)")


def collect_manifests(ctx):
    """The manifests of deploy/k8s by kind, each checked for the basics on the way."""
    k8s = {}
    for path, docs in ctx.documents.items():
        if os.sep + "k8s" + os.sep not in path:
            continue
        for doc in docs:
            where = ctx.rel(path)
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                ctx.fail(where, "a document without kind and apiVersion")
                continue
            if doc["kind"] == "Kustomization":
                for resource in doc.get("resources", []):
                    if not os.path.exists(os.path.join(os.path.dirname(path), resource)):
                        ctx.fail(where, f"resource '{resource}' does not exist")
                continue
            name = (doc.get("metadata") or {}).get("name")
            if not name:
                ctx.fail(where, f"{doc['kind']} without metadata.name")
            k8s.setdefault(doc["kind"], []).append((where, doc))
            if doc["kind"] == "Secret" and (doc.get("data") or doc.get("stringData")):
                ctx.fail(where, f"Secret '{name}' holds values in a manifest; reference it, create it apart")
            for text in strings_in(doc):
                if holds_password(text):
                    ctx.fail(where, f"a plaintext password in {doc['kind']} '{name}' (value not shown)")

    return k8s


def check_nats(ctx, k8s):
    # The NATS JetStream cluster walfeed replicates into: three nodes, each with its own volume, the
    # config with JetStream on and a max_payload that takes any walfeed change (up to about 1 MiB in a
    # log stored before replication was on; 512 KiB once replicated).
    nats_sets = [(w, d) for w, d in k8s.get("StatefulSet", []) if d["metadata"]["name"] == "nats"]
    for where, sts in nats_sets:
        spec = sts.get("spec") or {}
        unknown_keys(ctx, f"{where} spec", spec, STATEFULSET_KEYS)
        if spec.get("replicas") != 3:
            ctx.fail(where, "the NATS cluster needs 3 nodes for a 3-replica stream")
        if not spec.get("volumeClaimTemplates"):
            ctx.fail(where, "NATS nodes without volumes lose the stream with the pod")
    for where, cm in k8s.get("ConfigMap", []):
        if cm["metadata"]["name"] != "nats-config":
            continue
        conf = (cm.get("data") or {}).get("nats.conf", "")
        if "jetstream" not in conf:
            ctx.fail(where, "nats.conf does not turn JetStream on")
        payload = re.search(r"max_payload:\s*(\d+)MB", conf)
        if not payload or int(payload.group(1)) < 2:
            ctx.fail(where, "nats.conf needs max_payload of 2MB or more (a walfeed change is up to ~1 MiB)")


def check_walfeed_set(ctx, where, sts, configmaps, services):
    """The StatefulSet walfeed (one ingester, or an ingest group) or walfeed-replica."""
    replica = sts["metadata"]["name"] == "walfeed-replica"
    spec = sts.get("spec") or {}
    unknown_keys(ctx, f"{where} spec", spec, STATEFULSET_KEYS)
    if not replica:
        # One walfeed per slot, or an ingest group of them: then the members take turns on the
        # slot (--ingest=auto), confirm only what JetStream has, and can bootstrap from each
        # other by the headless Service's pod names.
        count = spec.get("replicas")
        settings = (configmaps.get("walfeed-config") or {}).get("data") or {}
        if not isinstance(count, int) or count < 1:
            ctx.fail(where, f"replicas is {count!r}: expected a number of walfeeds")
        elif count > 1:
            if settings.get("WALFEED_INGEST") != "auto":
                ctx.fail(where, f"{count} walfeeds on one slot need WALFEED_INGEST=auto")
            if settings.get("WALFEED_CONFIRM_AFTER") != "replicated" or \
                    not settings.get("WALFEED_REPLICATE_TO"):
                ctx.fail(where, "an ingest group needs WALFEED_REPLICATE_TO and "
                     "WALFEED_CONFIRM_AFTER=replicated")
            pods = {f"walfeed-{i}.{spec.get('serviceName')}:50051" for i in range(count)}
            named = set(filter(None, settings.get("WALFEED_BOOTSTRAP_FROM", "").split(",")))
            if named != pods:
                ctx.fail(where, f"WALFEED_BOOTSTRAP_FROM names {sorted(named)}, not the pods "
                     f"{sorted(pods)}")
    if replica and not (isinstance(spec.get("replicas"), int) and spec["replicas"] >= 1):
        ctx.fail(where, f"replicas is {spec.get('replicas')!r}: expected a number of replicas")
    pod_labels = (spec.get("template", {}).get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
        ctx.fail(where, "selector.matchLabels does not match the pod template's labels")
    if spec.get("serviceName") not in {d["metadata"]["name"] for _, d in services}:
        ctx.fail(where, f"serviceName '{spec.get('serviceName')}' names no Service in deploy/k8s")
    claims = {(c.get("metadata") or {}).get("name") for c in spec.get("volumeClaimTemplates") or []}
    if not claims:
        ctx.fail(where, "no volumeClaimTemplates: the change log would not survive the pod")
    pod = spec.get("template", {}).get("spec") or {}
    unknown_keys(ctx, f"{where} pod spec", pod, POD_KEYS)
    pod_security = pod.get("securityContext") or {}
    unknown_keys(ctx, f"{where} pod securityContext", pod_security, POD_SECURITY_KEYS)
    if pod_security.get("runAsNonRoot") is not True:
        ctx.fail(where, "pod securityContext.runAsNonRoot is not true")
    if not pod_security.get("fsGroup"):
        ctx.fail(where, "pod securityContext.fsGroup is not set: the new volume is not writable")
    containers = pod.get("containers") or []
    walfeed = [c for c in containers if c.get("name") == "walfeed"]
    if len(walfeed) != 1:
        ctx.fail(where, "no container named walfeed")
        return
    container = walfeed[0]
    unknown_keys(ctx, f"{where} container", container, CONTAINER_KEYS)
    mounts = {m.get("name"): m.get("mountPath") for m in container.get("volumeMounts") or []}
    data_dir = "/var/lib/walfeed"
    if not any(mounts.get(claim) == data_dir for claim in claims):
        ctx.fail(where, f"no volumeClaimTemplate is mounted at {data_dir}")
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        if not probe:
            ctx.fail(where, f"no {probe_name}")
            continue
        unknown_keys(ctx, f"{where} {probe_name}", probe, PROBE_KEYS)
        if (probe.get("grpc") or {}).get("port") != 50051:
            ctx.fail(where, f"{probe_name} is not the native gRPC probe on port 50051")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        if not (resources.get(part) or {}).get("memory"):
            ctx.fail(where, f"resources.{part}.memory is not set")
    security = container.get("securityContext") or {}
    unknown_keys(ctx, f"{where} container securityContext", security, CONTAINER_SECURITY_KEYS)
    if security.get("readOnlyRootFilesystem") is not True:
        ctx.fail(where, "container securityContext.readOnlyRootFilesystem is not true")
    if security.get("allowPrivilegeEscalation") is not False:
        ctx.fail(where, "container securityContext.allowPrivilegeEscalation is not false")
    env = {e.get("name"): e for e in container.get("env") or []}
    password = env.get("PGPASSWORD") or {}
    if not replica and not (password.get("valueFrom") or {}).get("secretKeyRef"):
        ctx.fail(where, "PGPASSWORD does not come from a secretKeyRef")
    if replica:
        # A replica follows exactly what the walfeed StatefulSet publishes and reads no PostgreSQL.
        settings = {}
        for source in container.get("envFrom") or []:
            settings.update((configmaps.get((source.get("configMapRef") or {}).get("name")) or {})
                            .get("data") or {})
        published = (configmaps.get("walfeed-config") or {}).get("data") or {}
        if not settings.get("WALFEED_FOLLOW") or \
                settings.get("WALFEED_FOLLOW") != published.get("WALFEED_REPLICATE_TO"):
            ctx.fail(where, "WALFEED_FOLLOW is not the NATS servers walfeed-config publishes to")
        if settings.get("WALFEED_REPLICATION_STREAM") != published.get("WALFEED_REPLICATION_STREAM"):
            ctx.fail(where, "WALFEED_REPLICATION_STREAM is not the stream walfeed-config publishes")
        for name in ("WALFEED_PG", "WALFEED_REPLICATE_TO", "PGPASSWORD"):
            if name in settings or name in env:
                ctx.fail(where, f"a replica sets {name}")
    for name, entry in env.items():
        if re.search(r"PASS|TOKEN|SECRET", name or "") and "value" in entry:
            ctx.fail(where, f"env {name} has a literal value; use a secretKeyRef")
    ctx.check_env_names(f"{where} env", env)
    for source in container.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        if ref and ref not in configmaps:
            ctx.fail(where, f"envFrom names ConfigMap '{ref}', which deploy/k8s does not define")
    for port in container.get("ports") or []:
        if port.get("containerPort") == 50051 and port.get("name") != "grpc":
            ctx.fail(where, "container port 50051 is not named grpc")


def check_configmaps(ctx, configmaps):
    for name, cm in configmaps.items():
        data = cm.get("data") or {}
        ctx.check_env_names(f"deploy/k8s ConfigMap {name}", data)
        if "WALFEED_PG" in data and data.get("WALFEED_LISTEN", "").split(":")[0] not in ("0.0.0.0", "[::]", ""):
            ctx.fail(f"deploy/k8s ConfigMap {name}", "WALFEED_LISTEN must listen on every interface in a pod")


def check_services(ctx, services, walfeed_sets):
    clusterip = [d for _, d in services if (d.get("spec") or {}).get("type", "ClusterIP") == "ClusterIP"
                 and (d.get("spec") or {}).get("clusterIP") != "None"]
    # The consumers' Service reaches the walfeed pod and the replicas alike.
    feed_service = [d for d in clusterip if d["metadata"]["name"] == "walfeed"]
    for where, sts in walfeed_sets:
        labels = ((sts.get("spec") or {}).get("template", {}).get("metadata") or {}).get("labels") or {}
        selector = ((feed_service[0].get("spec") or {}).get("selector") or {}) if feed_service else {}
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            ctx.fail(where, "the Service walfeed does not select its pods")
    if not any(p.get("name") == "grpc" and p.get("port") == 50051
               for s in clusterip for p in (s.get("spec") or {}).get("ports") or []):
        ctx.fail("deploy/k8s", "no ClusterIP Service with port 50051 named grpc")


def check(ctx):
    k8s = collect_manifests(ctx)
    statefulsets = [(w, d) for w, d in k8s.get("StatefulSet", []) if d["metadata"]["name"] == "walfeed"]
    if len(statefulsets) != 1:
        ctx.fail("deploy/k8s", f"expected one StatefulSet named walfeed, found {len(statefulsets)}")
    configmaps = {d["metadata"]["name"]: d for _, d in k8s.get("ConfigMap", [])}
    services = k8s.get("Service", [])
    # Replicas (--follow): a StatefulSet named walfeed-replica, any number of pods.
    replica_sets = [(w, d) for w, d in k8s.get("StatefulSet", [])
                    if d["metadata"]["name"] == "walfeed-replica"]
    if len(replica_sets) != 1:
        ctx.fail("deploy/k8s", f"expected one StatefulSet named walfeed-replica, found {len(replica_sets)}")
    check_nats(ctx, k8s)
    for where, sts in statefulsets + replica_sets:
        check_walfeed_set(ctx, where, sts, configmaps, services)
    check_configmaps(ctx, configmaps)
    check_services(ctx, services, statefulsets + replica_sets)


def render_kustomization(ctx):
    if shutil.which("kubectl") is None:
        ctx.say("kubectl not installed: skipped rendering deploy/k8s with kustomize")
        return
    ctx.say("kubectl kustomize deploy/k8s")
    rendered = subprocess.run(["kubectl", "kustomize", ctx.path("deploy", "k8s")],
                              capture_output=True, text=True)
    if rendered.returncode != 0:
        ctx.fail("kubectl kustomize deploy/k8s", rendered.stderr.strip())
