"""The Dockerfile deploy/Dockerfile: Debian bookworm stages, a build stage that builds walfeed
and walfeedctl without the tests from packages that bring everything the build uses, a runtime
stage without development packages whose packages provide every library the binaries link, an
unprivileged user, the health check, entrypoint, port, volume and settings the image promises,
and COPY sources that exist and that .dockerignore keeps."""

import fnmatch
import glob
import os
import re
import subprocess

WHERE = "deploy/Dockerfile"


def of(stage, keyword):
    """`keyword`'s instructions in `stage`, those of the stages it continues first."""
    return [rest for k, rest in stage.get("effective", stage["instructions"]) if k == keyword]


def apt_packages(stage):
    packages = []
    for run in of(stage, "RUN"):
        for match in re.finditer(r"apt-get install ((?:[^&;|]|\\\n)*)", run):
            packages += [w for w in match.group(1).split() if not w.startswith("-")]
    return packages


def dpkg(*args):
    return subprocess.run(["dpkg-query", *args], capture_output=True, text=True)




def closure(packages, depends_of):
    """`packages` and everything they depend on."""
    found = set()
    queue = list(packages)
    while queue:
        package = queue.pop()
        if package not in found:
            found.add(package)
            queue += depends_of.get(package, ())
    return found


def parse_stages(ctx):
    """The Dockerfile's stages, by a tiny parser (continuations, comments); at least two."""
    dockerfile_path = ctx.path("deploy", "Dockerfile")
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
    where = WHERE
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
            ctx.fail(where, f"{keyword} before the first FROM")
    if len(stages) < 2:
        ctx.fail(where, f"expected a build stage and a runtime stage, found {len(stages)} stage(s)")
        stages += [{"name": None, "base": "", "instructions": []}] * (2 - len(stages))
    by_name = {}
    for stage in stages:
        # A stage may continue an earlier one (`FROM runtime-base AS runtime`): it has that one's
        # instructions before its own, and its base image.
        parent = by_name.get(stage["base"])
        stage["effective"] = (parent["effective"] if parent else []) + stage["instructions"]
        if parent:
            stage["base"] = parent["base"]
        elif not re.fullmatch(r"debian:bookworm(-slim)?", stage["base"]):
            ctx.fail(where, f"stage {stage['name']} is based on '{stage['base']}', not Debian bookworm")
        by_name[stage["name"]] = stage
    return stages


def check_build_stage(ctx, build_stage):
    where = WHERE
    build_runs = " ".join(of(build_stage, "RUN"))
    with open(ctx.path("CMakeLists.txt")) as f:
        cmake_options = set(re.findall(r"option\((\w+)", f.read()))
    for option in re.findall(r"-D(WALFEED_\w+)=", build_runs):
        if option not in cmake_options:
            ctx.fail(where, f"-D{option}: CMakeLists.txt has no such option ({sorted(cmake_options)})")
    if "-DWALFEED_BUILD_TESTS=OFF" not in build_runs:
        ctx.fail(where, "the build stage does not turn the tests off")
    if not re.search(r"--target walfeed walfeedctl", build_runs):
        ctx.fail(where, "the build stage does not build the targets walfeed and walfeedctl")


def check_packages_known(ctx, build_stage, runtime_packages):
    """Every package the stages install is a real one, and the runtime has no -dev package."""
    where = WHERE
    for package in runtime_packages:
        if package.endswith("-dev"):
            ctx.fail(where, f"the runtime stage installs the development package {package}")





    for package in apt_packages(build_stage) + runtime_packages:
        if "install ok installed" not in dpkg("-W", "-f=${Status}", package).stdout:
            ctx.fail(where, f"package '{package}' is not installed on this machine, so its name is "
                 "unverified (check it with apt-cache policy)")


def dependency_graph():
    # Every library the built binaries link must come from a runtime package or its dependencies.
    # One dpkg-query for the whole dependency graph and one dpkg -S for every library keep it fast.
    depends_of = {}
    for line in dpkg("-W", "-f=${Package}\t${Depends},${Pre-Depends}\n").stdout.splitlines():
        package, _, depends = line.partition("\t")
        names = [alt.split("|")[0].strip().split(" ")[0] for alt in depends.split(",")]
        depends_of.setdefault(package, set()).update(n.split(":")[0] for n in names if n)
    return depends_of


def check_runtime_libraries(ctx, runtime_packages, depends_of):
    """Every library the built binaries link comes from a runtime package or its dependencies."""
    where = WHERE
    provided = closure(list(runtime_packages) + ["libc6", "libgcc-s1", "libstdc++6"], depends_of)
    needed = {}  # library -> the binaries that link it
    for binary in (ctx.walfeed_bin, ctx.walfeedctl_bin):
        dump = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True).stdout
        for library in re.findall(r"NEEDED\s+(\S+)", dump):
            needed.setdefault(library, []).append(os.path.basename(binary))
    # Where the loader finds each library (ldd: the right architecture), then who ships that file:
    # under merged /usr a package may list it as /lib/... or /usr/lib/..., so ask by pattern.
    found = {}
    for binary in (ctx.walfeed_bin, ctx.walfeedctl_bin):
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
            ctx.fail(where, f"{', '.join(binaries)} links {library}, which no Debian package owns here")
        elif owner not in provided:
            ctx.fail(where, f"{', '.join(binaries)} links {library} from {owner}, which the runtime "
                 "stage does not install")


def check_build_packages(ctx, build_stage, depends_of):
    """Every package that CMake found when it configured BUILD_DIR comes with the build stage's
    packages (Depends only: the stage installs no Recommends), tests' own packages aside."""
    where = WHERE
    build_closure = closure(apt_packages(build_stage), depends_of)
    cmake_cache = os.path.join(ctx.build_dir, "CMakeCache.txt")
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
                ctx.fail(where, f"the build uses {path} from {package}, which the build stage's packages "
                     "do not bring")
    else:
        ctx.say(f"no {ctx.rel(cmake_cache)}: skipped the build stage's package check")


def check_runtime_stage(ctx, runtime, build_stage):
    where = WHERE
    users = of(runtime, "USER")
    if not users:
        ctx.fail(where, "the runtime stage sets no USER: the container would run as root")
    elif users[-1].split(":")[0] in ("root", "0"):
        ctx.fail(where, f"the runtime stage's USER is {users[-1]}")
    healthchecks = of(runtime, "HEALTHCHECK")
    if not healthchecks or "walfeedctl" not in healthchecks[-1] or "health" not in healthchecks[-1]:
        ctx.fail(where, "no HEALTHCHECK running walfeedctl health")
    entrypoints = of(runtime, "ENTRYPOINT")
    if not entrypoints or "docker-entrypoint.sh" not in entrypoints[-1]:
        ctx.fail(where, "the ENTRYPOINT is not docker-entrypoint.sh")
    if not any("50051" in e.split() for e in of(runtime, "EXPOSE")):
        ctx.fail(where, "does not EXPOSE 50051")
    if not any("/var/lib/walfeed" in v for v in of(runtime, "VOLUME")):
        ctx.fail(where, "/var/lib/walfeed is not a VOLUME")
    runtime_env = " ".join(of(runtime, "ENV"))
    for setting in ("WALFEED_DATA_DIR=/var/lib/walfeed", "WALFEED_LISTEN=0.0.0.0:50051"):
        if setting not in runtime_env:
            ctx.fail(where, f"the runtime stage does not set {setting}")
    ctx.check_env_names(where, re.findall(r"(WALFEED_\w+)=", runtime_env))
    if not any(f"--from={build_stage['name']}" in c for c in of(runtime, "COPY")):
        ctx.fail(where, "the runtime stage copies nothing from the build stage")


def check_copy_sources(ctx, stages):
    where = WHERE
    # COPY sources from the context must exist and not be excluded by .dockerignore.
    ignore_path = ctx.path(".dockerignore")
    ignored = []
    if os.path.isfile(ignore_path):
        with open(ignore_path) as f:
            ignored = [l.strip().strip("/") for l in f if l.strip() and not l.startswith("#")]
    for must_skip in (".git", "build*"):
        if must_skip not in ignored:
            ctx.fail(".dockerignore", f"does not exclude {must_skip}")
    for stage in stages:
        for copy in [rest for k, rest in stage["instructions"] if k == "COPY"]:
            words = [w for w in copy.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in copy.split()) or len(words) < 2:
                continue
            for source in words[:-1]:
                # "." and the binaries the container check puts in deploy/prebuilt/.
                if source == "." or source.startswith("deploy/prebuilt/"):
                    continue
                if not os.path.exists(ctx.path(source)):
                    ctx.fail(where, f"COPY source '{source}' does not exist in the repository")
                if any(fnmatch.fnmatch(source, p) or fnmatch.fnmatch(source.split("/")[0], p)
                       for p in ignored):
                    ctx.fail(where, f"COPY source '{source}' is excluded by .dockerignore")



def check(ctx):
    stages = parse_stages(ctx)
    # The stage named build (with the stages it continues), else the first; the last runs.
    build_stage = next((s for s in stages if s["name"] == "build"), stages[0])
    runtime = stages[-1]
    check_build_stage(ctx, build_stage)
    runtime_packages = apt_packages(runtime)
    check_packages_known(ctx, build_stage, runtime_packages)
    depends_of = dependency_graph()
    check_runtime_libraries(ctx, runtime_packages, depends_of)
    check_build_packages(ctx, build_stage, depends_of)
    check_runtime_stage(ctx, runtime, build_stage)
    check_copy_sources(ctx, stages)
