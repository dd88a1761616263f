#!/usr/bin/env bash
# Regenerate the lock files from pyproject.toml: exact versions with the sha256 of every wheel and
# sdist, for Python 3.11 on Linux x86_64 (the image's and CI's platform).
#   requirements/lock.txt     dependencies + the dev extra: scripts/venv.sh installs it
#   requirements/runtime.txt  dependencies only, the same pins: deploy/Dockerfile installs it
# Run it after changing a dependency in pyproject.toml. Existing pins are kept where the bounds
# allow; pass --upgrade to move every pin to the newest allowed version.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
root=$(dirname "$here")
python=${PYTHON:-python3}
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$python" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q uv || die "pip install uv failed: is PyPI reachable?"
uv=("$tools/venv/bin/uv" pip compile pyproject.toml --generate-hashes --python-version 3.11
  --python-platform x86_64-manylinux_2_28 --custom-compile-command scripts/lock.sh --quiet)
cd "$root"
"${uv[@]}" --extra dev -o requirements/lock.txt "$@"
# The runtime lock is constrained by the full one, so both name the same version of every package.
"${uv[@]}" -c requirements/lock.txt -o requirements/runtime.txt "$@"
