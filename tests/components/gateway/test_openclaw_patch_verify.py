"""Apply-and-verify against a running OpenClaw gateway (2026.9.6 from npm, started by the test on loopback).

That build has no diagnostics-otel, so the exporter never starts: the tool must see the change arrive
(``config get diagnostics``), then fail with the evidence (no telemetry.exporter event from the gateway, and
the gateway's own log lines about the reload), instead of reporting success.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.components.gateway.support import PATCH_TOOL, copy_plugin
from tests.support.fake_openai import FakeOpenAI
from tests.support.openclaw_gateway import OpenClawGateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenClawGateway]:
    root = tmp_path_factory.mktemp("verify-gateway")
    with FakeOpenAI() as fake, OpenClawGateway(root / "gw", fake.base_url) as running:
        yield running


def run_tool(gateway: OpenClawGateway, work: Path, spec: dict[str, Any], *extra: str) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return subprocess.run(
        [sys.executable, str(PATCH_TOOL), "apply", "--config", str(gateway.config_path), "--spec", str(spec_path),
         "--state", str(work / "state.json"), "--openclaw", gateway.openclaw_command(), *extra],
        env=gateway.env, capture_output=True, text=True, timeout=900,
    )


@pytest.mark.slow
def test_verification_fails_with_evidence_when_the_exporter_does_not_start(gateway: OpenClawGateway,
                                                                          tmp_path: Path) -> None:
    gate = copy_plugin(tmp_path / "plugins" / "openclaw-budget-gate")
    spec = {
        "version": 1,
        "diagnostics": {"enabled": True, "otel": {"enabled": True, "endpoint": "http://127.0.0.1:9",
                                                  "protocol": "http/protobuf", "serviceName": "openclaw-gateway",
                                                  "metrics": True, "flushIntervalMs": 5000}},
        "plugins": {"diagnostics-otel": {"enabled": True},
                    "openclaw-budget-gate": {"enabled": True, "hooks": {"allowConversationAccess": True},
                                             "config": {"flagFile": str(tmp_path / "flag")}, "loadPath": str(gate)}},
        "prices": {"fake": {"fake-model": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}}},
        "verify": {"enabled": True, "timeoutSeconds": 45, "intervalSeconds": 3,
                   "logCommand": f"cat {shlex.quote(str(gateway.console_log))}"},
    }
    # The plugin check would stop this earlier (see test_openclaw_patch_plugin.py); skip it to reach verify.
    proc = run_tool(gateway, tmp_path / "work", spec, "--skip-plugin-check")
    assert proc.returncode == 1, proc.stdout
    # The change was accepted, written, and seen by the gateway's CLI ...
    assert "OpenClaw accepted the change" in proc.stdout
    assert re.search(r"verify: `config get diagnostics` shows otel enabled: .*http://127\.0\.0\.1:9", proc.stdout)
    # ... but no exporter started, and the error says so with the gateway's own words.
    assert "verification failed after 45s" in proc.stderr
    assert "no telemetry.exporter event from diagnostics-otel for metrics" in proc.stderr
    assert "gateway log (cat " in proc.stderr
    assert "config reload: diagnostics.otel" in proc.stderr, proc.stderr  # the gateway restarted for it
    listening = re.search(r"http server listening \(\d+ plugins: ([^;]*);", proc.stderr)
    assert listening and "openclaw-budget-gate" in listening.group(1) and "diagnostics-otel" not in listening.group(1)
    # The gateway is healthy and running the patched config (the gate loaded from its load path).
    gateway.wait_for_console(lambda text: "budget gate active" in text, timeout=120, what="the gate loading")
    assert gateway.read_config()["diagnostics"]["otel"]["endpoint"] == "http://127.0.0.1:9"


@pytest.mark.slow
def test_second_apply_verifies_without_writing(gateway: OpenClawGateway, tmp_path: Path) -> None:
    """Verification also runs when nothing changed (a failed `up` retried), and never rewrites the file."""
    spec = {"version": 1, "prices": {"fake": {"fake-model": {"input": 1, "output": 2, "cacheRead": 0, "cacheWrite": 0}}},
            "verify": {"enabled": True, "timeoutSeconds": 20, "logCommand": f"cat {shlex.quote(str(gateway.console_log))}",
                       "logReady": [r"\[gateway\] ready"]}}
    first = run_tool(gateway, tmp_path / "work", spec, "--skip-plugin-check")
    assert first.returncode == 0, first.stderr
    assert "verify: gateway log:" in first.stdout
    before = gateway.config_path.read_bytes()
    second = run_tool(gateway, tmp_path / "work", spec, "--skip-plugin-check")
    assert second.returncode == 0, second.stderr
    assert "already up to date" in second.stdout and "verify: gateway log:" in second.stdout
    assert gateway.config_path.read_bytes() == before
