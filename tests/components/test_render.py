"""``python -m components render``: every file a stack puts on its hosts, with no CLI and no network."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.tools import REPO_ROOT


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "components", "render", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def files_under(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("stack", ["workstation", "demo"])
def test_render_writes_one_folder_per_host(stack: str, tmp_path: Path) -> None:
    out = tmp_path / "render"
    result = render("--stack", stack, "--out", str(out))
    assert result.returncode == 0, result.stderr
    written = [Path(line) for line in result.stdout.splitlines()]
    assert written and all(p.is_file() for p in written)
    hosts = {p.name for p in out.iterdir()}
    assert hosts, "nothing rendered"
    assert "secret" in result.stderr and "not set yet" in result.stderr


def test_workstation_render_contents(tmp_path: Path) -> None:
    out = tmp_path / "render"
    assert render("--stack", "workstation", "--out", str(out)).returncode == 0
    files = files_under(out)
    assert "muletto/openclaw-patch.json" in files
    assert "workstation/otel-collector.yaml" in files
    units = [name for name in files if name.startswith("muletto/etc/systemd/system/")]
    assert any(name.endswith(".service") for name in units), units
    for name, content in files.items():
        assert "BEGIN OPENSSH PRIVATE KEY" not in content, name


def test_rerender_replaces_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "render"
    out.mkdir()
    (out / "stale.txt").write_text("left over from an older render")
    assert render("--stack", "workstation", "--out", str(out)).returncode == 0
    assert not (out / "stale.txt").exists()


def test_invalid_stack_renders_nothing_and_names_the_key(tmp_path: Path) -> None:
    text = (REPO_ROOT / "Pulumi.workstation.yaml").read_text().replace("dailyCapUsd: 5.00", "dailyCapUsd: -5")
    stack_file = tmp_path / "Pulumi.broken.yaml"
    stack_file.write_text(text)
    out = tmp_path / "render"
    result = render("--stack", "broken", "--stack-file", str(stack_file), "--out", str(out))
    assert result.returncode == 1
    assert "enforcer.dailyCapUsd: Input should be greater than 0 (got -5)" in result.stderr
    assert not out.exists()


def test_unknown_stack_is_an_error(tmp_path: Path) -> None:
    result = render("--stack", "nope", "--out", str(tmp_path / "x"))
    assert result.returncode == 2
    assert "Pulumi.nope.yaml" in result.stderr
