"""The gateway component's resource graph under Pulumi mocks: what runs where, with which secrets."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pulumi
import pytest

from components.config import StackConfig
from components.gateway import GatewayConfig, host_files, render_files
from tests.components.gateway.stack_configs import BEARER, PRIVATE_KEY, build
from tests.support.pulumi_mocks import (
    FAKE_SECRETS,
    RecordedResource,
    RecordingMocks,
    ResourceTracker,
    plaintext_leaks,
    unwrap_secrets,
)

COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
SECRET_SIG = "4dabf18193072939515e22adb298388d"


def deploy(cfg: StackConfig, resources: ResourceTracker, check: Callable[[], None]) -> pulumi.Output:
    GatewayConfig("gateway", cfg)
    return resources.when_registered(check)


def named(mocks: RecordingMocks, name: str) -> RecordedResource:
    return mocks.named(name)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def remote_resources(mocks: RecordingMocks) -> list[RecordedResource]:
    return [r for r in mocks.resources if r.typ in (COMMAND, COPY)]


@pulumi.runtime.test
def test_every_command_runs_on_the_gateway_host_with_the_key_as_a_secret(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    def check() -> None:
        remote = remote_resources(pulumi_mocks)
        assert len(remote) >= 10, [r.name for r in remote]
        for resource in remote:
            connection = resource.inputs["connection"]
            assert is_secret(connection), f"{resource.name}: connection is not a secret"
            plain = unwrap_secrets(connection)
            assert plain["host"] == "192.168.1.100" and plain["user"] == "sam" and plain["port"] == 22
            assert plain["privateKey"] == PRIVATE_KEY
            assert plaintext_leaks(resource.inputs, list(FAKE_SECRETS.values())) == [], resource.name

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_apply_runs_the_tool_and_delete_reverts(pulumi_mocks: RecordingMocks,
                                                 resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        apply = named(pulumi_mocks, "gateway-apply").inputs
        assert apply["create"] == apply["update"]
        create = apply["create"]
        assert 'python3 "$HOME"/.openclaw-usage/openclaw_patch.py apply' in create
        assert "--config /home/sam/moltbot-infra/clawdbot-config/openclaw.json" in create
        assert "--openclaw 'docker exec -i openclaw-gateway node /app/dist/entry.js'" in create
        assert '--spec "$HOME"/.openclaw-usage/openclaw-patch.json' in create
        assert f"openclaw-patch sha256 {host_files.tools_sha256()}" in create
        delete = apply["delete"]
        assert "openclaw_patch.py revert" in delete and "apply" not in delete.split("openclaw_patch.py")[1]
        assert "--state \"$HOME\"/.openclaw-usage/openclaw-patch.state.json" in delete
        spec = json.loads(apply["stdin"])  # no bearer token in this stack: the spec is not a secret
        assert spec["diagnostics"]["otel"]["endpoint"] == "http://192.168.1.111:4318"
        assert "headers" not in spec["diagnostics"]["otel"]
        assert spec["plugins"]["openclaw-budget-gate"]["loadPath"] == "/home/node/.openclaw/plugins/openclaw-budget-gate"
        # Where the patch applies is a replacement (reverting the old place first); anything else an update.
        assert apply["triggers"] == ["192.168.1.100", 22, "sam", "/home/sam/moltbot-infra/clawdbot-config/openclaw.json",
                                     "~/.openclaw-usage"]

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_bearer_token_travels_only_as_a_secret(pulumi_mocks: RecordingMocks,
                                               resources: ResourceTracker) -> pulumi.Output:
    cfg = build(otlp={"bearerToken": BEARER})

    def check() -> None:
        stdin = named(pulumi_mocks, "gateway-apply").inputs["stdin"]
        assert is_secret(stdin)
        spec = json.loads(unwrap_secrets(stdin))
        assert spec["diagnostics"]["otel"]["headers"] == {"Authorization": f"Bearer {BEARER}"}
        for resource in pulumi_mocks.resources:
            assert plaintext_leaks(resource.inputs, [BEARER, PRIVATE_KEY]) == [], resource.name
            assert BEARER not in resource.name
        rendered = render_files(cfg)
        assert BEARER not in json.dumps(rendered)
        assert '"Authorization": "********"' in rendered["muletto"]["openclaw-patch.json"]

    return deploy(cfg, resources, check)


@pulumi.runtime.test
def test_tool_files_and_gate_are_shipped(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        copies = {r.inputs["remotePath"]: r for r in pulumi_mocks.by_type(COPY)}
        for target in ("openclaw_patch.py", "json5/__init__.py", "json5/lib.py", "json5/parser.py",
                       "json5/version.py", "json5/LICENSE"):
            source = copies[f".openclaw-usage/{target}"].inputs["source"]
            assert isinstance(source, pulumi.FileAsset) and Path(source.path).is_file()
        gate = copies["/home/sam/moltbot-infra/clawdbot-config/plugins/openclaw-budget-gate.upload"].inputs
        assert isinstance(gate["source"], pulumi.FileArchive)
        assert Path(gate["source"].path) == host_files.GATE_SOURCE and not gate["source"].path.endswith("/")
        install = named(pulumi_mocks, "gateway-gate-install").inputs
        assert "chmod -R u=rwX,go=rX" in install["create"]  # SFTP keeps no modes
        assert "mv /home/sam/moltbot-infra/clawdbot-config/plugins/openclaw-budget-gate.upload/budget_gate " \
               "/home/sam/moltbot-infra/clawdbot-config/plugins/openclaw-budget-gate" in install["create"]
        assert install["delete"].rstrip().endswith(
            "rm -rf /home/sam/moltbot-infra/clawdbot-config/plugins/openclaw-budget-gate "
            "/home/sam/moltbot-infra/clawdbot-config/plugins/openclaw-budget-gate.upload "
            "/home/sam/moltbot-infra/clawdbot-config/plugins/openclaw-budget-gate.old")
        work_dir = named(pulumi_mocks, "gateway-work-dir").inputs["create"]
        assert 'mkdir -p "$HOME"/.openclaw-usage/json5' in work_dir and "umask 077" in work_dir

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_gate_disabled_ships_no_plugin(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    cfg = build(gate={"enabled": False})

    def check() -> None:
        names = {r.name for r in pulumi_mocks.resources}
        assert not {n for n in names if n.startswith("gateway-gate-")}, names
        spec = json.loads(named(pulumi_mocks, "gateway-apply").inputs["stdin"])
        assert list(spec["plugins"]) == ["diagnostics-otel"] and spec["pluginRevisions"] == {}

    return deploy(cfg, resources, check)


# ----------------------------------------------------------------------- re-runs on spec or script change


@pulumi.runtime.test
def test_a_price_change_changes_only_the_stdin(pulumi_mocks: RecordingMocks,
                                               resources: ResourceTracker) -> pulumi.Output:
    """A new stdin is an update (Pulumi runs ``update`` again); the command text and triggers stay."""
    GatewayConfig("before", build())
    GatewayConfig("after", build(prices={"anthropic": {"claude-sonnet-4": {
        "name": "S", "input": 4, "output": 20, "cacheRead": 0.4, "cacheWrite": 5}}}))

    def check() -> None:
        old, new = named(pulumi_mocks, "before-apply").inputs, named(pulumi_mocks, "after-apply").inputs
        assert old["stdin"] != new["stdin"]
        assert json.loads(new["stdin"])["prices"]["anthropic"]["claude-sonnet-4"]["input"] == 4
        assert (old["create"], old["update"], old["delete"], old["triggers"]) == (
            new["create"], new["update"], new["delete"], new["triggers"])

    return resources.when_registered(check)


ORIGINAL_TOOLS_SHA256 = host_files.tools_sha256()


@pytest.fixture
def changed_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The patch tool with one more line: as if the repository's openclaw_patch.py had changed."""
    copy = tmp_path / "openclaw_patch.py"
    shutil.copy(host_files.PATCH_TOOL, copy)
    with open(copy, "a", encoding="utf-8") as handle:
        handle.write("# changed\n")
    monkeypatch.setattr(host_files, "PATCH_TOOL", copy)
    return copy


@pulumi.runtime.test
def test_a_tool_change_changes_the_command_text(pulumi_mocks: RecordingMocks, resources: ResourceTracker,
                                                changed_tool: Path) -> pulumi.Output:
    """New tool code is a new ``create``/``update`` text, so the apply runs again as an update."""
    cfg = build()

    def check() -> None:
        apply = named(pulumi_mocks, "gateway-apply").inputs
        assert host_files.tools_sha256() != ORIGINAL_TOOLS_SHA256
        assert f"openclaw-patch sha256 {host_files.tools_sha256()}" in apply["create"]
        assert ORIGINAL_TOOLS_SHA256 not in apply["create"]
        assert apply["create"] == apply["update"]
        copy = [r for r in pulumi_mocks.by_type(COPY) if r.inputs["remotePath"].endswith("openclaw_patch.py")][0]
        assert Path(copy.inputs["source"].path) == changed_tool

    return deploy(cfg, resources, check)


def test_tool_hash_follows_the_tool_content(changed_tool: Path) -> None:
    changed = host_files.tools_sha256()
    changed_tool.write_text(changed_tool.read_text() + "# again\n")
    assert host_files.tools_sha256() != changed


def test_gate_hash_ignores_caches(tmp_path: Path) -> None:
    gate = tmp_path / "budget_gate"
    shutil.copytree(host_files.GATE_SOURCE, gate)
    digest = host_files.gate_sha256(gate)
    (gate / "node_modules").mkdir()
    (gate / "node_modules" / "x.js").write_text("x")
    (gate / ".DS_Store").write_text("x")
    assert host_files.gate_sha256(gate) == digest
    (gate / "index.js").write_text((gate / "index.js").read_text() + "\n// change\n")
    assert host_files.gate_sha256(gate) != digest


# --------------------------------------------------------------------------------------------- outputs


@pulumi.runtime.test
def test_whole_program_wires_the_gateway_last(pulumi_mocks: RecordingMocks, resources: ResourceTracker,
                                              workstation_config: Any) -> pulumi.Output:
    from tests.support.pulumi_mocks import run_program

    run_program()

    def check() -> None:
        names = [r.name for r in pulumi_mocks.resources]
        assert "gateway-apply" in names
        for resource in pulumi_mocks.resources:
            assert plaintext_leaks(resource.inputs, list(FAKE_SECRETS.values())) == [], resource.name

    return resources.when_registered(check)
