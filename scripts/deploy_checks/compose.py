"""The compose file deploy/compose.yaml: PostgreSQL 15 with logical WAL and a healthcheck, its
init SQL, walfeed built from deploy/Dockerfile waiting for it with its log on a named volume and
its password apart from the conninfo, an ingest group of three members that share PostgreSQL, slot
and stream but not a volume or a name, and a consumer reading them all through walfeedctl."""

import os
import re
import shlex

from common import env_mapping, holds_password


def mounts_of(service):
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            parts = volume.split(":")
            yield parts[0], parts[1] if len(parts) > 1 else parts[0]
        else:
            yield volume.get("source"), volume.get("target")


def check(ctx):
    compose_path = ctx.path("deploy", "compose.yaml")
    compose = (ctx.documents.get(compose_path) or [None])[0]
    if not isinstance(compose, dict):
        ctx.fail("deploy/compose.yaml", "missing or empty")
        compose = {}
    compose_dir = os.path.dirname(compose_path)
    svc = compose.get("services") or {}
    for needed in ("postgres", "walfeed", "consumer"):
        if needed not in svc:
            ctx.fail("deploy/compose.yaml", f"no service '{needed}'")
    declared_volumes = set((compose.get("volumes") or {}).keys())


    postgres = svc.get("postgres") or {}
    # The image names are variables whose defaults are the public images.
    if not re.fullmatch(r"\$\{\w+:-postgres:15\}|postgres:15.*", str(postgres.get("image", ""))):
        ctx.fail("deploy/compose.yaml", "postgres is not the postgres:15 image (by default)")
    command = postgres.get("command") or []
    command = " ".join(command) if isinstance(command, list) else str(command)
    if "wal_level=logical" not in command:
        ctx.fail("deploy/compose.yaml", "postgres does not run with wal_level=logical")
    if not postgres.get("healthcheck"):
        ctx.fail("deploy/compose.yaml", "postgres has no healthcheck for walfeed to wait on")
    init_sql = None
    for source, target in mounts_of(postgres):
        if str(target).startswith("/docker-entrypoint-initdb.d"):
            init_sql = os.path.normpath(os.path.join(compose_dir, source))
    if not init_sql or not os.path.isfile(init_sql):
        ctx.fail("deploy/compose.yaml", f"the init SQL mounted into postgres does not exist: {init_sql}")
        init_text = ""
    else:
        with open(init_sql) as f:
            init_text = f.read()
        for needed in ("REPLICATION", "CREATE TABLE", "CREATE PUBLICATION"):
            if needed not in init_text:
                ctx.fail(ctx.rel(init_sql), f"does not contain {needed}")

    walfeed_svc = svc.get("walfeed") or {}
    build = walfeed_svc.get("build") or {}
    context = os.path.normpath(os.path.join(compose_dir, build.get("context", ".")))
    dockerfile = os.path.normpath(os.path.join(context, build.get("dockerfile", "Dockerfile")))
    if context != ctx.root or dockerfile != ctx.path("deploy", "Dockerfile"):
        ctx.fail("deploy/compose.yaml", f"walfeed is not built from deploy/Dockerfile with the repository "
             f"as context (context {context}, dockerfile {dockerfile})")
    if ((walfeed_svc.get("depends_on") or {}).get("postgres") or {}).get("condition") != "service_healthy":
        ctx.fail("deploy/compose.yaml", "walfeed does not wait for postgres to be healthy")
    walfeed_mounts = dict((t, s) for s, t in mounts_of(walfeed_svc))
    if walfeed_mounts.get("/var/lib/walfeed") not in declared_volumes:
        ctx.fail("deploy/compose.yaml", "no named volume mounted at /var/lib/walfeed for the log")
    environment = env_mapping(walfeed_svc.get("environment"))
    ctx.check_env_names("deploy/compose.yaml walfeed", environment)
    if not environment.get("WALFEED_PG"):
        ctx.fail("deploy/compose.yaml", "walfeed has no WALFEED_PG")
    if holds_password(environment.get("WALFEED_PG")):
        ctx.fail("deploy/compose.yaml", "WALFEED_PG holds a password; use PGPASSWORD")
    role_password = re.search(r"ROLE\s+walfeed\b[^;]*PASSWORD\s+'([^']*)'", init_text, re.I)
    if role_password and environment.get("PGPASSWORD") != role_password.group(1):
        ctx.fail("deploy/compose.yaml", "walfeed's PGPASSWORD is not the password init.sql gives the role")
    consumer = svc.get("consumer") or {}
    entry = consumer.get("entrypoint")
    entry = entry if isinstance(entry, list) else shlex.split(str(entry or ""))
    args = consumer.get("command")
    args = args if isinstance(args, list) else shlex.split(str(args or ""))
    if entry[:1] != ["walfeedctl"] or "subscribe" not in args:
        ctx.fail("deploy/compose.yaml", "consumer does not run walfeedctl subscribe")
    if "walfeed:50051" not in " ".join(args):
        ctx.fail("deploy/compose.yaml", "consumer does not subscribe to walfeed:50051")
    if consumer.get("image") != walfeed_svc.get("image"):
        ctx.fail("deploy/compose.yaml", "consumer does not use walfeed's image")
    # The ingest group (--ingest=auto): walfeed and at least two more members with the same
    # PostgreSQL, slot and stream, each with a volume of its own and a name of its own, all listed by
    # the consumer and by WALFEED_BOOTSTRAP_FROM.
    members = {name: service for name, service in svc.items()
               if name == "walfeed" or re.fullmatch(r"walfeed-\d+", name)}
    if len(members) < 3:
        ctx.fail("deploy/compose.yaml", f"expected an ingest group of 3 walfeeds, found {len(members)}")
    member_volumes = set()
    member_names = set()
    shared = ("WALFEED_PG", "WALFEED_REPLICATE_TO", "WALFEED_REPLICATION_STREAM", "WALFEED_SLOT",
              "WALFEED_BOOTSTRAP_FROM")
    for name, member in members.items():
        env = env_mapping(member.get("environment"))
        ctx.check_env_names(f"deploy/compose.yaml {name}", env)
        if env.get("WALFEED_INGEST") != "auto" or env.get("WALFEED_CONFIRM_AFTER") != "replicated":
            ctx.fail("deploy/compose.yaml", f"{name} is not an ingest group member (WALFEED_INGEST=auto, "
                 "WALFEED_CONFIRM_AFTER=replicated)")
        for setting in shared:
            if env.get(setting) != environment.get(setting):
                ctx.fail("deploy/compose.yaml", f"{name}'s {setting} differs from walfeed's")
        member_names.add(env.get("WALFEED_INSTANCE_NAME"))
        if member.get("image") != walfeed_svc.get("image"):
            ctx.fail("deploy/compose.yaml", f"{name} does not use walfeed's image")
        volume = dict((t, s) for s, t in mounts_of(member)).get("/var/lib/walfeed")
        if volume not in declared_volumes:
            ctx.fail("deploy/compose.yaml", f"{name} has no named volume at /var/lib/walfeed")
        member_volumes.add(volume)
        if f"{name}:50051" not in " ".join(args):
            ctx.fail("deploy/compose.yaml", f"the consumer does not list {name}:50051")
        if f"{name}:50051" not in environment.get("WALFEED_BOOTSTRAP_FROM", ""):
            ctx.fail("deploy/compose.yaml", f"WALFEED_BOOTSTRAP_FROM does not list {name}:50051")
    if len(member_volumes) != len(members):
        ctx.fail("deploy/compose.yaml", "two members share a volume")
    if None in member_names or len(member_names) != len(members):
        ctx.fail("deploy/compose.yaml", "the members need WALFEED_INSTANCE_NAME, each its own")
