"""The budget gate plugin's files: its JS unit tests (node --test), its manifest, and OpenClaw's own verdict
on the config the gateway component writes for it. The real-gateway behaviour is in
test_budget_gate_e2e.py."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support import tools
from tests.support.openclaw_gateway import OpenClawGateway, merged

PLUGIN_DIR = tools.REPO_ROOT / "components" / "gateway" / "budget_gate"
JS_TESTS = Path(__file__).parent / "budget_gate_js"
PLUGIN_ID = "openclaw-budget-gate"


def test_js_unit_tests_pass() -> None:
    files = sorted(str(p) for p in JS_TESTS.glob("*.test.mjs"))
    assert files, f"no JS tests in {JS_TESTS}"
    node = tools.node_bin_dir() / "node"
    proc = subprocess.run([str(node), "--test", "--test-reporter=spec", *files], cwd=str(tools.REPO_ROOT),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"node --test failed:\n{proc.stdout}\n{proc.stderr}"
    assert "# fail 0" in proc.stdout or "ℹ fail 0" in proc.stdout, proc.stdout


def test_manifest_package_and_entry_agree() -> None:
    manifest = json.loads((PLUGIN_DIR / "openclaw.plugin.json").read_text(encoding="utf-8"))
    package = json.loads((PLUGIN_DIR / "package.json").read_text(encoding="utf-8"))
    assert manifest["id"] == PLUGIN_ID
    # Without onStartup the gateway no longer loads the plugin at startup (openclaw.md §7).
    assert manifest["activation"] == {"onStartup": True}
    flag_schema = manifest["configSchema"]["properties"]["flagFile"]
    assert flag_schema["type"] == "string" and flag_schema["default"] == "/tmp/openclaw-budget-exceeded"
    assert manifest["configSchema"]["additionalProperties"] is False
    assert package["openclaw"] == {"extensions": ["./index.js"]}
    assert package["type"] == "module"
    assert not package.get("dependencies"), "the plugin must stay dependency-free"
    assert (PLUGIN_DIR / "index.js").is_file()
    assert f'id: "{PLUGIN_ID}"' in (PLUGIN_DIR / "index.js").read_text(encoding="utf-8")


def _gate_entry(flag_file: str) -> dict:
    return {"plugins": {"load": {"paths": [str(PLUGIN_DIR)]},
                        "entries": {PLUGIN_ID: {"enabled": True, "hooks": {"allowConversationAccess": True},
                                                "config": {"flagFile": flag_file}}}}}


def test_openclaw_accepts_the_gate_config(tmp_path: Path) -> None:
    gateway = OpenClawGateway(tmp_path / "gw", "http://127.0.0.1:9/v1")
    gateway.config = merged(gateway.config, _gate_entry("/tmp/openclaw-budget-exceeded"))
    gateway.write_config()
    proc = gateway.run_cli("config", "validate")
    assert proc.returncode == 0 and "Config valid" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.parametrize("config, complaint", [
    ({"flagFile": "relative/flag"}, 'config.flagFile: invalid config: must match pattern "^/"'),
    ({"flagFile": 5}, "config.flagFile: invalid config: must be string"),
    ({"flagFile": "/tmp/f", "flag": "/tmp/typo"}, 'config: invalid config: must not have additional properties: "flag"'),
])
def test_openclaw_rejects_a_bad_gate_config_by_our_schema(tmp_path: Path, config: dict, complaint: str) -> None:
    gateway = OpenClawGateway(tmp_path / "gw", "http://127.0.0.1:9/v1")
    gateway.config = merged(gateway.config, _gate_entry("/unused"))
    gateway.config["plugins"]["entries"][PLUGIN_ID]["config"] = config
    gateway.write_config()
    proc = gateway.run_cli("config", "validate")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f"plugins.entries.{PLUGIN_ID}.{complaint}" in out
