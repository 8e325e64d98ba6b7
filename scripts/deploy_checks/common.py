"""What every deployment check shares: where things are, how a failure is reported, the settings
walfeed knows (from its own --help), and the YAML documents of deploy/."""

import glob
import os
import re
import subprocess

import yaml

PASSWORD_IN_TEXT = [re.compile(r"password\s*=", re.I), re.compile(r"://[^/@\s:]*:[^/@\s]*@")]


class Context:
    """The repository, the built binaries, a scratch directory, and the failures found so far."""

    def __init__(self, root, build_dir, scratch):
        self.root = root
        self.walfeed_bin = os.path.join(build_dir, "bin", "walfeed")
        self.walfeedctl_bin = os.path.join(build_dir, "bin", "walfeedctl")
        self.build_dir = build_dir
        self.scratch = scratch
        self.failures = []
        self.known_env = set()
        self.documents = {}  # path -> the YAML documents in it

    def fail(self, where, message):
        self.failures.append(f"{where}: {message}")

    def say(self, message):
        print(f"check-deploy: {message}", flush=True)

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def check_env_names(self, where, names):
        """Every WALFEED_* name in `names` must be a setting walfeed knows."""
        for name in names:
            if name.startswith("WALFEED_") and name not in self.known_env:
                self.fail(where, f"{name} is not a walfeed setting "
                          f"(walfeed --help lists {len(self.known_env)})")


def holds_password(text):
    return isinstance(text, str) and any(p.search(text) for p in PASSWORD_IN_TEXT)


def strings_in(node):
    """Every string anywhere in a parsed YAML document."""
    if isinstance(node, dict):
        for value in node.values():
            yield from strings_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings_in(value)
    elif isinstance(node, str):
        yield node


def env_mapping(environment):
    """A compose `environment` (a mapping or a list of NAME=value) as a mapping."""
    if isinstance(environment, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in environment)
    return environment or {}


def load_known_settings(ctx, help_text):
    """The settings walfeed lists in --help: "--pg (WALFEED_PG, default ...)"."""
    ctx.known_env = set(re.findall(r"^\s+--[a-z-]+ \((WALFEED_[A-Z_]+),", help_text, re.M))
    if "WALFEED_PG" not in ctx.known_env:
        ctx.fail("walfeed --help", "lists no WALFEED_PG setting; cannot check variable names")


def load_yaml_documents(ctx):
    """Every YAML file of deploy/ must parse; keeps their documents in ctx.documents."""
    pattern = os.path.join(ctx.root, "deploy", "**", "*.y*ml")
    for path in sorted(glob.glob(pattern, recursive=True)):
        try:
            with open(path) as f:
                ctx.documents[path] = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as error:
            ctx.fail(ctx.rel(path), f"does not parse as YAML: {error}")
    if not ctx.documents:
        ctx.fail("deploy/", "no YAML files found")
    # Style and mistakes a parser lets through (duplicate keys, bad indentation, trailing spaces).
    config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "yamllint.yaml")
    linted = subprocess.run(["yamllint", "-f", "parsable", "-c", config, *sorted(ctx.documents)],
                            capture_output=True, text=True)
    for line in linted.stdout.splitlines():
        ctx.fail("yamllint", os.path.relpath(line, ctx.root) if line.startswith("/") else line)
