#!/usr/bin/env bash
# Installs Debian's Prometheus 2.42 (prometheus + promtool) for the enforcer tests.
# Idempotent: a machine that already has both binaries returns at once.
# The Debian package starts its own service on :9090; the tests never use it (they run their own
# instance on a free loopback port with a temp storage dir), so we stop it to free the port and CPU.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi

. "$(dirname "$0")/lib/apt.sh"
apt_install_quietly prometheus

# Belt and braces: if a service manager did start it anyway, stop it (ignored when there is none).
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
fi

command -v prometheus >/dev/null
command -v promtool >/dev/null
prometheus --version 2>&1 | head -1
