#!/usr/bin/env bash
# Installs matrix-synapse (PyPI) into its own venv at $CACHE/synapse-venv, so its many pinned deps never
# clash with the project's venv. The enforcer tests run it with sqlite on a loopback port.
# Idempotent: a warm cache (venv present and synapse importable) returns at once.
set -euo pipefail

cache="${OPENCLAW_USAGE_CACHE:-$HOME/.cache/openclaw-usage}"
venv="$cache/synapse-venv"
# Pinned so a new Synapse release cannot silently change behaviour under the tests.
synapse_version="${SYNAPSE_VERSION:-1.163.2}"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import synapse' >/dev/null 2>&1 \
    && [ -x "$venv/bin/register_new_matrix_user" ]; then
    exit 0
fi

mkdir -p "$cache"
python="${PYTHON:-python3}"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "matrix-synapse==${synapse_version}"
"$venv/bin/python" -c 'import synapse; print("synapse", synapse.__version__)'
