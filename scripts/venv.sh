#!/usr/bin/env bash
# Create .venv with sevflow and its development tools installed (editable); reinstalls only
# when pyproject.toml changed. Prints nothing else on a warm run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
root=$(dirname "$here")
venv="$root/.venv"
python=${PYTHON:-python3}

need "$python" "install Python 3.11 or later"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$python is $("$python" -V 2>&1); sevflow needs Python 3.11 or later (set PYTHON=...)"
stamp="$venv/.installed-$(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ -f "$stamp" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$python" -m venv "$venv" || die "python -m venv failed (Debian: apt-get install python3-venv)"
fi
say "installing sevflow and its dependencies into $venv (from PyPI)"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q -e "$root[dev]" || die "pip install failed: is PyPI reachable?"
rm -f "$venv"/.installed-*
touch "$stamp"
