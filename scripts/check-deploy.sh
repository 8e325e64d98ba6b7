#!/usr/bin/env bash
# Checks the deployment files in deploy/ (scripts/deploy_checks/, one module per kind of file):
#   scripts/check-deploy.sh [BUILD_DIR] [--containers]   BUILD_DIR (default: build/) holds bin/walfeed;
#   --containers also builds the image with podman and runs it (scripts/deploy_checks/image_run.py)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec /usr/bin/python3 "$here/scripts/deploy_checks" "$@"
