"""Is diagnostics-otel really there?  The patch tool asks the real OpenClaw CLI (``plugins list --json``).

2026.9.6 from npm has no diagnostics-otel; 2026.4.26 bundles it; a copy loaded through ``plugins.load.paths``
loads but gets no diagnostic events (OpenClaw hands them only to a bundled or officially installed copy).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.components.gateway.configs import spec_for
from tests.components.gateway.support import ToolEnv, assert_ok, copy_plugin

FLAG = "/tmp/openclaw-budget-exceeded"
CONFIG = """\
// a gateway without OTLP yet
{
  gateway: {mode: "local"},
  models: {providers: {fake: {baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-fake", api: "openai-completions",
                              models: [{id: "fake-model", name: "Fake"}]}}},
}
"""


def plugin_spec(gate_dir: Path, **otel_plugin: object) -> dict:
    spec = spec_for(str(gate_dir), FLAG)
    spec["prices"] = {"fake": {"fake-model": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}}}
    spec["otelPlugin"] = {"check": True, **otel_plugin}
    return spec


@pytest.fixture
def gate_dir(tmp_path: Path) -> Path:
    return copy_plugin(tmp_path / "plugins" / "openclaw-budget-gate")


def test_npm_build_without_the_plugin_fails_with_the_command_to_run(tmp_path: Path, gate_dir: Path) -> None:
    env = ToolEnv(tmp_path / "npm", CONFIG)
    before = env.bytes()
    proc = env.tool("apply", "--no-verify", spec=plugin_spec(gate_dir))
    assert proc.returncode == 1
    assert "the gateway has no diagnostics-otel plugin" in proc.stderr
    assert f"{env.openclaw_command()} plugins install clawhub:@openclaw/diagnostics-otel" in proc.stderr
    assert "gateway.installOtelPlugin: true" in proc.stderr
    assert env.bytes() == before and not env.state.exists()


def test_a_copy_loaded_from_a_path_is_refused(tmp_path: Path, gate_dir: Path) -> None:
    copy = copy_plugin(tmp_path / "vendored" / "diagnostics-otel", plugin_id="diagnostics-otel")
    config = CONFIG.replace('gateway: {mode: "local"},',
                            f'gateway: {{mode: "local"}}, plugins: {{load: {{paths: ["{copy}"]}}}},')
    env = ToolEnv(tmp_path / "vendored-env", config)
    before = env.bytes()
    proc = env.tool("apply", "--no-verify", spec=plugin_spec(gate_dir))
    assert proc.returncode == 1
    assert f"diagnostics-otel is loaded from {copy}" in proc.stderr and "origin config" in proc.stderr
    assert "would export no metrics" in proc.stderr and "plugins install clawhub:@openclaw/diagnostics-otel" in proc.stderr
    assert env.bytes() == before


def test_the_bundled_plugin_of_2026_4_26_is_accepted(tmp_path: Path, gate_dir: Path) -> None:
    env = ToolEnv(tmp_path / "bundled", CONFIG, version="2026.4.26")
    proc = env.tool("apply", "--no-verify", spec=plugin_spec(gate_dir))
    assert_ok(proc)
    assert "diagnostics-otel: present (origin bundled)" in proc.stdout
    assert json.loads(env.config.read_text())["plugins"]["entries"]["diagnostics-otel"] == {"enabled": True}
    env.validate()


@pytest.mark.slow
def test_install_the_official_way_and_report_its_failure(tmp_path: Path, gate_dir: Path) -> None:
    """With installOtelPlugin the tool runs `plugins install clawhub:@openclaw/diagnostics-otel`; here ClawHub is
    unreachable (no internet), so it must fail with OpenClaw's own message and change nothing."""
    env = ToolEnv(tmp_path / "install", CONFIG)
    before = env.bytes()
    proc = env.tool("apply", "--no-verify", spec=plugin_spec(gate_dir, install=True))
    assert proc.returncode == 1
    assert "diagnostics-otel: missing; installing:" in proc.stdout
    assert "installing diagnostics-otel failed" in proc.stderr
    assert "plugins install clawhub:@openclaw/diagnostics-otel" in proc.stderr
    assert "clawhub" in proc.stderr.lower() and ("ENOTFOUND" in proc.stderr or "fetch failed" in proc.stderr)
    assert env.bytes() == before
