"""Our program on the real Pulumi engine (CLI built from Go modules by tests/e2e/toolchain.sh), offline.

The engine runs ``__main__.py`` through its Python language host exactly as ``pulumi preview`` does for a
user. What it cannot do here is load the command provider: the Go module proxy refuses
github.com/pulumi/pulumi-command (see toolchain.sh), so a preview that reaches our first remote command
stops there. These tests check everything up to that point for real, and turn into plain passes (strict
xfail) the day the provider can be built.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.pulumi_env import offline_env
from tests.support.tools import REPO_ROOT

pytestmark = pytest.mark.slow

MISSING_COMMAND_PROVIDER = "no resource plugin 'pulumi-resource-command' found"


def project_copy(tmp_path: Path) -> Path:
    """The project as a user has it (no state), its venv a link to the test venv (already installed)."""
    project = tmp_path / "project"
    shutil.copytree(
        REPO_ROOT,
        project,
        ignore=shutil.ignore_patterns("venv", ".git", ".pulumi-state", "__pycache__", "render", "node_modules"),
    )
    (project / "venv").symlink_to(REPO_ROOT / "venv")
    return project


def main_job(project: Path, tmp_path: Path, stack: str = "demo") -> subprocess.CompletedProcess[str]:
    env = offline_env(tmp_path)
    env["PULUMI_LOCAL_STATE_DIR"] = str(tmp_path / "state")
    # As a user runs it: no venv on PATH or chosen for the program; the wrapper must point at its own.
    for name in ("PULUMI_PYTHON_CMD", "VIRTUAL_ENV"):
        env.pop(name)
    venv_bin = str(REPO_ROOT / "venv" / "bin")
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    return subprocess.run(
        [str(project / "scripts" / "pulumi-local"), stack, "preview", "--non-interactive"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_bad_config_stops_the_real_preview_with_one_line_per_problem(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    demo = project / "Pulumi.demo.yaml"
    demo.write_text(
        demo.read_text()
        .replace("dailyCapUsd: 5.00", "dailyCapUsd: -1")
        .replace("timezone: UTC", "timezone: Mars/Olympus")
    )
    result = main_job(project, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "enforcer.dailyCapUsd: Input should be greater than 0 (got -1)" in output, output
    assert "enforcer.timezone: unknown time zone 'Mars/Olympus'" in output, output
    assert "Traceback" not in output, output
    assert "demo-not-a-real-token" not in output and "PRIVATE KEY" not in output


def test_readme_main_job_previews_the_demo_stack(tmp_path: Path) -> None:
    project = project_copy(tmp_path)
    result = main_job(project, tmp_path)
    output = result.stdout + result.stderr
    # The wrapper set the throwaway secrets as secrets, never in the committed file or in the output.
    assert (tmp_path / "state" / "Pulumi.demo.yaml").read_text().count("secure:") == 2
    assert "privateKey" not in (project / "Pulumi.demo.yaml").read_text()
    assert "demo-not-a-real-token" not in output and "PRIVATE KEY" not in output
    if result.returncode != 0:
        # The program ran and registered resources; only the provider binary is missing.
        assert MISSING_COMMAND_PROVIDER in output, output
        assert "invalid stack configuration" not in output, output
        pytest.xfail("pulumi-resource-command can't be built offline (Go proxy 403); the preview stops at it")
    assert "openclaw-usage:gateway:GatewayConfig" in output or "gateway" in output, output
