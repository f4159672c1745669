#!/usr/bin/env bash
# Creates ./venv (the one Pulumi.yaml names) and installs requirements-dev.txt into it.
# Idempotent: reinstalls only when a requirements file changed.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "python.sh: Python 3.11+ is required")'
[ -x venv/bin/python ] || "$PYTHON" -m venv venv
stamp=venv/.requirements.sha256
want="$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "python.sh: installing requirements-dev.txt into venv"
  venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
else
  echo "python.sh: venv up to date"
fi
