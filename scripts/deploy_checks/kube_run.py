"""deploy/k8s run with `podman kube play`, which takes Pods, ConfigMaps, Secrets and
PersistentVolumeClaims but no StatefulSet: the manifests are turned into that form by
`play_form` (not kept twice): the StatefulSet's pod template becomes one Pod per member, its
volumeClaimTemplate one claim each, the ConfigMap's settings are kept with the addresses of this
machine's PostgreSQL and NATS cluster, and the pods share the host's loopback network (each
member on its own ports). What is checked is what the manifests promise: the pods run as uid
10001 under their security context (read-only root filesystem, no capabilities) with PGPASSWORD
from the Secret, form one ingest group with one ingester, serve the same feed on every member,
and when the ingester's pod is stopped within its termination grace period another takes over
and the feed goes on, every row once."""

import base64
import copy
import json
import os
import subprocess

import yaml

import compose_run
import image_run
import podman as podman_module

MEMBERS = 2
# Settings each member needs its own value of on the shared host network.
PER_POD = ("WALFEED_LISTEN", "WALFEED_METRICS_LISTEN", "WALFEED_INSTANCE_NAME")


def manifests(ctx):
    """The StatefulSet named walfeed and the ConfigMap walfeed-config of deploy/k8s."""
    statefulset = configmap = None
    for path, documents in ctx.documents.items():
        if "/k8s/" not in path:
            continue
        for document in documents:
            kind, name = document.get("kind"), document.get("metadata", {}).get("name")
            if kind == "StatefulSet" and name == "walfeed":
                statefulset = document
            if kind == "ConfigMap" and name == "walfeed-config":
                configmap = document
    if statefulset is None or configmap is None:
        raise RuntimeError("deploy/k8s has no StatefulSet walfeed or ConfigMap walfeed-config")
    return statefulset, configmap


def play_form(statefulset, configmap, settings, ports):
    """The documents `podman kube play` runs for the first MEMBERS pods of `statefulset` (the
    Secret is made apart: see secret_json)."""
    config = copy.deepcopy(configmap)
    config["data"].update(settings)
    # Set per pod below: podman 4.3 lets envFrom override env (Kubernetes does the opposite).
    for per_pod in PER_POD:
        config["data"].pop(per_pod, None)
    documents = [config]
    template = statefulset["spec"]["template"]
    claim_template = statefulset["spec"]["volumeClaimTemplates"][0]
    for member in range(MEMBERS):
        name = f"{statefulset['metadata']['name']}-{member}"
        claim = f"{claim_template['metadata']['name']}-{name}"
        documents.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": claim}, "spec": claim_template["spec"]})
        spec = copy.deepcopy(template["spec"])
        spec["hostNetwork"] = True  # PostgreSQL and NATS are on this machine's loopback
        spec.setdefault("volumes", []).append(
            {"name": claim_template["metadata"]["name"],
             "persistentVolumeClaim": {"claimName": claim}})
        container = spec["containers"][0]
        container["image"] = podman_module.IMAGE
        # On the host's network the ports are the host's: podman refuses port mappings there.
        container.pop("ports", None)
        # One network for every member: each listens on ports of its own.
        container.setdefault("env", []).extend([
            {"name": "WALFEED_LISTEN", "value": f"127.0.0.1:{ports[member]}"},
            {"name": "WALFEED_METRICS_LISTEN", "value": "127.0.0.1:0"},
            {"name": "WALFEED_INSTANCE_NAME", "value": name},
        ])
        documents.append({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": name, "labels": template["metadata"]["labels"]},
                          "spec": spec})
    return documents


def secret_json(password):
    """The Secret walfeed-postgres as podman 4.3 reads one for secretKeyRef: a podman secret
    holding its data as JSON, each value base64 (a Secret document in the played YAML is kept as
    YAML, which it then cannot read)."""
    return json.dumps({"password": base64.b64encode(password.encode()).decode()})


def run_scenario(ctx, podman, world, statefulset, configmap, nats_urls):
    fail = lambda message: ctx.fail("deploy/k8s, run", message)
    ports = [image_run.free_port() for _ in range(MEMBERS)]
    addresses = [f"127.0.0.1:{port}" for port in ports]
    settings = {"WALFEED_PG": world.conninfo, "WALFEED_REPLICATE_TO": nats_urls,
                "WALFEED_REPLICATION_STREAM": f"walfeed_k8s_{os.getpid()}",
                "WALFEED_BOOTSTRAP_FROM": ",".join(addresses)}
    play = os.path.join(ctx.scratch, "k8s-play.yaml")
    with open(play, "w") as f:
        yaml.safe_dump_all(play_form(statefulset, configmap, settings, ports), f)
    world.sql("CREATE TABLE orders (id int PRIMARY KEY, customer text); "
              "INSERT INTO orders VALUES (1, 'ada'), (2, 'grace')")
    pods = [f"{statefulset['metadata']['name']}-{member}" for member in range(MEMBERS)]
    remove_volumes = lambda: [
        podman.run("pod", "rm", "-f", "--ignore", *pods, check=False),
        [podman.run("volume", "rm", "-f", f"data-{pod}", check=False) for pod in pods]]
    remove_volumes()  # what an interrupted run left
    podman.run("secret", "rm", "walfeed-postgres", check=False)
    secret = os.path.join(ctx.scratch, "secret.json")
    with open(secret, "w") as f:
        f.write(secret_json("k8s-check"))
    try:
        podman.run("secret", "create", "walfeed-postgres", secret)
        podman.run("kube", "play", "--replace", play, timeout=300)
        roles = lambda: [image_run.role(ctx, a) for a in addresses]
        compose_run.await_condition("the pods served, one of them the ingester",
                                    lambda: sorted(roles()) == ["ingester", "replica"])
        pod = f"{statefulset['metadata']['name']}-0"
        container = f"{pod}-{statefulset['spec']['template']['spec']['containers'][0]['name']}"
        uid = podman.run("exec", container, "id", "-u").strip()
        if uid != "10001":
            fail(f"the pod's container runs as uid {uid}, not 10001")
        if podman.ok("exec", container, "touch", "/var/lib/x") or not podman.ok(
                "exec", container, "touch", "/var/lib/walfeed/probe"):
            fail("the root filesystem is writable, or the data volume is not")
        env = podman.run("exec", container, "printenv", "PGPASSWORD").strip()
        if env != "k8s-check":
            fail(f"PGPASSWORD from the Secret is '{env}'")
        world.sql("INSERT INTO orders VALUES (3, 'linus')")
        ingester = roles().index("ingester")
        grace = statefulset["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        podman.run("pod", "stop", "-t", str(grace), f"{statefulset['metadata']['name']}-{ingester}")
        other = addresses[1 - ingester]
        compose_run.await_condition("the other pod took over",
                                    lambda: image_run.role(ctx, other) == "ingester")
        world.sql("INSERT INTO orders VALUES (4, 'ken')")
        compose_run.await_condition(
            "the surviving pod served the row inserted after the takeover",
            lambda: (("INSERT", 4) in image_run.buf_read(ctx, other)))
        read = image_run.buf_read(ctx, other)
        if sorted(i for _, i in read) != [1, 2, 3, 4]:
            fail(f"after the takeover the feed holds {read}, expected rows 1-4 once each")
    finally:
        # What the pods said, for a failure's report, before they go.
        listed = [line for line in podman.run("ps", "-a", "--format", "{{.Names}} {{.Status}}",
                                              check=False).splitlines()
                  if any(line.startswith(f"{pod}-") for pod in pods)]
        podman.last_kube_state = "\n".join(listed) + "".join(
            f"\n--- {line.split()[0]}\n{podman.logs(line.split()[0])[-1500:]}" for line in listed)
        podman.run("kube", "down", play, check=False, timeout=300)
        podman.run("secret", "rm", "walfeed-postgres", check=False)
        remove_volumes()


def check(ctx, podman):
    statefulset, configmap = manifests(ctx)
    ctx.say("containers: deploy/k8s with podman kube play")
    world = image_run.World(ctx, podman, "pg-k8s")
    nats_dir = os.path.join(ctx.scratch, "nats")
    try:
        world.start_postgres()
        started = subprocess.run(["bash", ctx.path("scripts", "nats-local.sh"), "start", nats_dir,
                                  "3"], capture_output=True, text=True, timeout=120)
        if started.returncode != 0:
            raise RuntimeError(f"NATS did not start: {started.stderr}")
        run_scenario(ctx, podman, world, statefulset, configmap,
                     started.stdout.strip().splitlines()[-1])
    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as error:
        ctx.fail("deploy/k8s, run", str(error))
        ctx.say(podman.last_kube_state)
    finally:
        subprocess.run(["bash", ctx.path("scripts", "nats-local.sh"), "stop", nats_dir],
                       capture_output=True, timeout=120)
        world.stop()
    if not ctx.failures:
        ctx.say("containers: the StatefulSet's pods formed a group, took over, served every row once")
