#!/usr/bin/env bash
# Tools for the enforcer-deployment tests (tests/components/enforcer_service, and the e2e `pulumi up`):
#   - Debian's OpenSSH server: tests start their own `sshd -D` on a free loopback port (tests/support/sshd.py);
#   - systemd-analyze (Debian `systemd`): `verify` and `security` on the rendered units;
#   - python3 with the venv module: the install script builds the enforcer's virtualenv with it;
#   - shellcheck: lints the rendered install/uninstall scripts;
#   - a wheel directory with `requests` and its dependencies, so the install tests exercise the offline
#     path (`pip install --no-index --find-links DIR`) instead of depending on PyPI at test time.
# Idempotent: a warm machine and cache return at once.
set -euo pipefail
cd "$(dirname "$0")/../.."

cache="${OPENCLAW_USAGE_CACHE:-$HOME/.cache/openclaw-usage}"
wheels="$cache/wheels/enforcer"
# Same range as requirements.txt: what the install script installs on the enforcer host.
requests_spec='requests>=2.31,<3'

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
/usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)

if [ "${#missing[@]}" -gt 0 ]; then
    . "$(dirname "$0")/lib/apt.sh"
    apt_install_quietly "${missing[@]}"
fi

if [ ! -f "$wheels/.complete" ]; then
    rm -rf "$wheels"
    mkdir -p "$wheels"
    # Pure-Python wheels only (py3-none-any): they install on whatever Python 3.9+ the test host's
    # python3 is, like a wheel directory an operator would carry to an offline enforcer host.
    venv/bin/pip download --quiet --disable-pip-version-check --dest "$wheels" \
        --only-binary=:all: --implementation py --abi none --platform any --python-version 3.9 \
        "$requests_spec"
    touch "$wheels/.complete"
fi

/usr/sbin/sshd -V 2>&1 | head -1 || true
systemd-analyze --version | head -1
shellcheck --version | sed -n 2p
