#!/usr/bin/env bash
# Create .venv with sevflow and its development tools installed (editable). The dependencies come
# from requirements/lock.txt, every one pinned and checked against its sha256 (--require-hashes), so
# every developer, CI and the image run the same bytes; reinstalls only when the lock file or
# pyproject.toml changed. Prints nothing else on a warm run. Regenerate the lock: scripts/lock.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
root=$(dirname "$here")
venv="$root/.venv"
lock="$root/requirements/lock.txt"
python=${PYTHON:-python3}

need "$python" "install Python 3.11 or later"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$python is $("$python" -V 2>&1); sevflow needs Python 3.11 or later (set PYTHON=...)"
stamp="$venv/.installed-$(cat "$lock" "$root/pyproject.toml" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv" || die "python -m venv failed (Debian: apt-get install python3-venv)"
fi
say "installing sevflow's locked dependencies into $venv (from PyPI, hashes checked)"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q --require-hashes -r "$lock" \
  || die "pip install -r requirements/lock.txt failed: is PyPI reachable?"
# sevflow itself, editable and without dependencies: the lock already holds them all.
"$venv/bin/python" -m pip install -q --no-deps -e "$root" || die "pip install -e . failed"
rm -f "$venv"/.installed-*
touch "$stamp"
