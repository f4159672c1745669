"""The patch spec rendered from the stack config, and the files the component renders for review."""
from __future__ import annotations

import json

from components.config import MASKED
from components.gateway import render_files
from components.gateway.host_files import gate_sha256
from components.gateway.spec import masked_patch_spec, render_patch_spec, spec_is_secret, spec_json
from tests.components.gateway.stack_configs import BEARER, build


def test_workstation_spec() -> None:
    spec = render_patch_spec(build())
    assert spec["diagnostics"] == {"enabled": True, "otel": {
        "enabled": True, "endpoint": "http://192.168.1.111:4318", "protocol": "http/protobuf",
        "serviceName": "openclaw-gateway", "metrics": True, "traces": False, "logs": False, "flushIntervalMs": 30000}}
    assert spec["plugins"] == {
        "diagnostics-otel": {"enabled": True},
        "openclaw-budget-gate": {
            "enabled": True,
            "hooks": {"allowConversationAccess": True},
            "config": {"flagFile": "/home/node/.openclaw/budget/openclaw-budget-exceeded", "blockToolCalls": True},
            "loadPath": "/home/node/.openclaw/plugins/openclaw-budget-gate",
        },
    }
    assert spec["pluginRevisions"] == {"openclaw-budget-gate": gate_sha256()}
    assert spec["prices"]["anthropic"]["claude-sonnet-4"] == {
        "name": "Claude Sonnet 4", "input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75}
    assert spec["prices"]["google"]["gemini-2.5-flash"]["input"] == 0  # free tier: allowed, see README
    assert spec["otelPlugin"] == {"check": True, "install": False, "installSpec": "clawhub:@openclaw/diagnostics-otel"}
    assert spec["apply"] == {}  # hot reload
    assert spec["verify"]["logCommand"] == "docker logs --since {since} openclaw-gateway"
    assert not spec_is_secret(build())


def test_the_tool_accepts_the_rendered_spec() -> None:
    from components.gateway import openclaw_patch

    openclaw_patch.validate_spec(render_patch_spec(build(otlp={"bearerToken": BEARER},
                                                          gateway={"apply": "restart", "logCommand": ""})))


def test_bearer_token_header_and_its_masked_copy() -> None:
    cfg = build(otlp={"bearerToken": BEARER})
    spec = render_patch_spec(cfg)
    assert spec_is_secret(cfg)
    assert spec["diagnostics"]["otel"]["headers"] == {"Authorization": f"Bearer {BEARER}"}
    shown = masked_patch_spec(spec)
    assert shown["diagnostics"]["otel"]["headers"] == {"Authorization": MASKED}
    assert spec["diagnostics"]["otel"]["headers"]["Authorization"] == f"Bearer {BEARER}"  # the original is intact
    assert BEARER not in spec_json(shown)


def test_restart_mode_and_custom_commands() -> None:
    spec = render_patch_spec(build(gateway={"apply": "restart", "container": "claw", "logCommand": "",
                                            "verifyTimeoutSeconds": 300, "installOtelPlugin": True}))
    assert spec["apply"] == {"restartCommand": "docker restart claw"}
    assert spec["verify"]["logCommand"] is None and spec["verify"]["timeoutSeconds"] == 300
    assert spec["otelPlugin"]["install"] is True


def test_gate_disabled() -> None:
    spec = render_patch_spec(build(gate={"enabled": False}))
    assert list(spec["plugins"]) == ["diagnostics-otel"] and spec["pluginRevisions"] == {}


def test_spec_json_is_stable() -> None:
    assert spec_json(render_patch_spec(build())) == spec_json(render_patch_spec(build()))


def test_render_files_for_review() -> None:
    files = render_files(build(otlp={"bearerToken": BEARER}))
    muletto = files["muletto"]
    assert json.loads(muletto["openclaw-patch.json"])["diagnostics"]["otel"]["headers"]["Authorization"] == MASKED
    assert set(muletto) == {
        "openclaw-patch.json", "_commands/gateway-work-dir.sh", "_commands/gateway-apply.sh",
        "_commands/gateway-revert.sh", "_commands/gateway-gate-stage.sh", "_commands/gateway-gate-install.sh",
        "_commands/gateway-gate-remove.sh"}
    assert BEARER not in json.dumps(files)


def test_gate_can_leave_tool_calls_alone() -> None:
    """``gate.blockToolCalls: false`` keeps only the new-run stop (runs in progress finish their work)."""
    spec = render_patch_spec(build(gate={"blockToolCalls": False}))
    assert spec["plugins"]["openclaw-budget-gate"]["config"]["blockToolCalls"] is False
