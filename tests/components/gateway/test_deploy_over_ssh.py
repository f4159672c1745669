"""The gateway component's commands, run for real over SSH (Debian sshd on loopback) against a real OpenClaw.

The commands, connection and stdin are exactly what the component gives pulumi-command (captured under Pulumi
mocks); only the file copies of ``remote.CopyToRemote`` are done by the test, with the provider's semantics (a
directory source without trailing slash lands as ``<remotePath>/<name>``).  The gateway host is a sandbox:
``HOME`` of each session points into tmp_path, and the OpenClaw CLI (2026.4.26, which bundles diagnostics-otel,
so the plugin check passes for real) uses the sandboxed config directory as its state dir, the way the
official image uses its bind-mounted ``/home/node/.openclaw``.
"""
from __future__ import annotations

import json
import shlex
import shutil
import stat
from pathlib import Path
from typing import Any

import json5
import pulumi
import pytest

from components.gateway import GatewayConfig
from tests.components.gateway.stack_configs import BEARER, build
from tests.support import tools
from tests.support.pulumi_mocks import RecordingMocks, ResourceTracker, unwrap_secrets
from tests.support.sshd import SshServer, sshd_server  # noqa: F401  (the fixture)

VERSION = "2026.4.26"
CONFIG_TEXT = """\
// the gateway's config, as its owner wrote it
{
  gateway: {mode: "local"},
  models: {providers: {fake: {
    baseUrl: "http://127.0.0.1:9/v1", apiKey: "sk-fake-0001", api: "openai-completions",
    models: [{id: "fake-model", name: "Fake", contextWindow: 32000}],
  }}},
}
"""


class Host:
    """The sandboxed gateway host, reached over real SSH."""

    def __init__(self, server: SshServer, root: Path):
        self.server = server
        self.home = root / "home"
        self.gateway_dir = root / "gateway"  # bind-mounted into the "container" (here: the same path)
        self.home.mkdir(parents=True)
        self.gateway_dir.mkdir(parents=True)
        self.config = self.gateway_dir / "openclaw.json"
        self.config.write_text(CONFIG_TEXT)

    def sh(self, script: str, stdin: str = "") -> Any:
        return self.server.run(f"env HOME={shlex.quote(str(self.home))} sh -c {shlex.quote(script)}", stdin=stdin)

    def cli(self) -> str:
        node_bin = tools.node_bin_dir()
        return " ".join(shlex.quote(word) for word in [
            "env", f"HOME={self.home}", f"OPENCLAW_STATE_DIR={self.gateway_dir}", f"PATH={node_bin}:/usr/bin:/bin",
            "NO_COLOR=1", *tools.openclaw_cli(VERSION)])

    def copy(self, resource: Any) -> None:
        """What remote.CopyToRemote does on this host (SFTP starts in $HOME; a directory lands by its name)."""
        target = Path(resource.inputs["remotePath"])
        target = target if target.is_absolute() else self.home / target
        source = resource.inputs["source"]
        if isinstance(source, pulumi.FileArchive):
            shutil.copytree(source.path, target / Path(source.path).name)
        else:
            shutil.copyfile(source.path, target)


def stack(host: Host, server: SshServer) -> Any:
    return build(
        hosts={"muletto": {"address": server.host, "port": server.port, "user": server.user,
                           "privateKey": server.private_key, "hostKey": server.host_key}},
        gateway={"configPath": str(host.config), "cli": host.cli(), "verify": False,
                 "mounts": [{"hostPath": str(host.gateway_dir), "containerPath": str(host.gateway_dir)}]},
        gate={"hostDir": str(host.gateway_dir / "plugins" / "openclaw-budget-gate")},
        enforcer={"flagFile": str(host.gateway_dir / "budget" / "openclaw-budget-exceeded")},
        otlp={"bearerToken": BEARER},
        # 2026.4.26 still requires baseUrl on built-in providers (OpenClaw says so, naming each key), so price
        # only the provider the file declares.
        prices={"anthropic": None, "google": None, "openrouter": None,
                "fake": {"fake-model": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}}},
    )


def ok(result: Any, what: str) -> str:
    assert result.returncode == 0, f"{what} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.mark.slow
@pulumi.runtime.test
def test_up_and_destroy_over_ssh(pulumi_mocks: RecordingMocks, resources: ResourceTracker, tmp_path: Path,
                                 sshd_server: SshServer) -> pulumi.Output:  # noqa: F811
    host = Host(sshd_server, tmp_path)
    cfg = stack(host, sshd_server)
    GatewayConfig("gateway", cfg)

    def scenario() -> None:
        by_name = {r.name: r for r in pulumi_mocks.resources}
        for resource in by_name.values():
            if resource.typ.startswith("command:remote:"):
                connection = unwrap_secrets(resource.inputs["connection"])
                assert (connection["host"], connection["port"]) == (sshd_server.host, sshd_server.port)
                assert connection["hostKey"] == sshd_server.host_key
        apply = by_name["gateway-apply"].inputs
        spec_text = unwrap_secrets(apply["stdin"])

        # `pulumi up`, in dependency order.
        ok(host.sh(by_name["gateway-work-dir"].inputs["create"]), "work dir")
        for resource in by_name.values():
            if resource.name.startswith("gateway-tool-"):
                host.copy(resource)
        ok(host.sh(by_name["gateway-gate-stage"].inputs["create"]), "gate stage")
        host.copy(by_name["gateway-gate-files"])
        ok(host.sh(by_name["gateway-gate-install"].inputs["create"]), "gate install")
        gate_dir = host.gateway_dir / "plugins" / "openclaw-budget-gate"
        assert (gate_dir / "openclaw.plugin.json").is_file()
        assert not gate_dir.with_name("openclaw-budget-gate.upload").exists()
        for path in gate_dir.rglob("*"):
            assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path

        out = ok(host.sh(apply["create"], stdin=spec_text), "apply")
        assert "diagnostics-otel: present (origin bundled)" in out
        assert "OpenClaw accepted the change" in out
        assert BEARER not in out
        patched = json.loads(host.config.read_text())
        assert patched["diagnostics"]["otel"]["headers"] == {"Authorization": f"Bearer {BEARER}"}
        assert patched["plugins"]["load"]["paths"] == [str(gate_dir)]
        assert patched["plugins"]["entries"]["openclaw-budget-gate"]["config"] == {
            "flagFile": str(host.gateway_dir / "budget" / "openclaw-budget-exceeded"), "blockToolCalls": True}
        fake = patched["models"]["providers"]["fake"]
        assert fake["apiKey"] == "sk-fake-0001" and fake["models"][0]["contextWindow"] == 32000
        assert fake["models"][0]["cost"] == {"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75}
        work = host.home / ".openclaw-usage"
        assert stat.S_IMODE((work / "openclaw-patch.json").stat().st_mode) == 0o600  # holds the token
        assert stat.S_IMODE(work.stat().st_mode) == 0o700
        backups = sorted((work / "backups").iterdir())
        assert len(backups) == 1 and backups[0].read_text() == CONFIG_TEXT  # comments kept in the backup

        # A second `up` (same inputs) changes nothing.
        before = host.config.read_bytes()
        out = ok(host.sh(apply["update"], stdin=spec_text), "second apply")
        assert "already up to date" in out and host.config.read_bytes() == before

        # `pulumi destroy`: revert, then the plugin directory goes.
        out = ok(host.sh(apply["delete"]), "revert")
        assert "reverted" in out and BEARER not in out
        assert json5.loads(host.config.read_text()) == json5.loads(CONFIG_TEXT)
        ok(host.sh(by_name["gateway-gate-install"].inputs["delete"]), "gate remove")
        assert not gate_dir.exists()

    return resources.when_registered(scenario)


@pytest.mark.slow
@pulumi.runtime.test
def test_missing_otel_plugin_fails_up_and_changes_nothing(pulumi_mocks: RecordingMocks, resources: ResourceTracker,
                                                          tmp_path: Path,
                                                          sshd_server: SshServer) -> pulumi.Output:  # noqa: F811
    """An npm install of 2026.9.6 has no diagnostics-otel: `up` fails, saying what to run."""
    host = Host(sshd_server, tmp_path)
    cfg = stack(host, sshd_server)
    cfg = cfg.model_copy(update={"gateway": cfg.gateway.model_copy(update={"cli": host.cli().replace(VERSION, "2026.9.6")})})
    GatewayConfig("gateway", cfg)

    def scenario() -> None:
        by_name = {r.name: r for r in pulumi_mocks.resources}
        ok(host.sh(by_name["gateway-work-dir"].inputs["create"]), "work dir")
        for resource in by_name.values():
            if resource.name.startswith("gateway-tool-"):
                host.copy(resource)
        apply = by_name["gateway-apply"].inputs
        result = host.sh(apply["create"], stdin=unwrap_secrets(apply["stdin"]))
        assert result.returncode == 1
        assert "the gateway has no diagnostics-otel plugin" in result.stderr
        assert "plugins install clawhub:@openclaw/diagnostics-otel" in result.stderr
        assert "gateway.installOtelPlugin: true" in result.stderr
        assert host.config.read_text() == CONFIG_TEXT

    return resources.when_registered(scenario)
