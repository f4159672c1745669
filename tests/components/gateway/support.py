"""Helpers for the patch tool's tests: an isolated OpenClaw environment and a way to run the tool.

:class:`ToolEnv` is one openclaw.json under a temporary directory with its own ``HOME``,
``OPENCLAW_STATE_DIR`` and ``OPENCLAW_CONFIG_PATH``, so the real OpenClaw CLI (``--openclaw``, a local
``node openclaw.mjs`` command line) reads exactly the file the tool edits, as ``docker exec`` does on a
gateway host where openclaw.json is bind-mounted.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import json5

from tests.support import tools

PATCH_TOOL = tools.REPO_ROOT / "components" / "gateway" / "openclaw_patch.py"
GATE_SOURCE = tools.REPO_ROOT / "components" / "gateway" / "budget_gate"
#: Fake secrets present in the test configs' environment (the gateway would have them).
FAKE_ENV = {"ANTHROPIC_API_KEY": "sk-ant-FAKE-env", "OPENAI_API_KEY": "sk-FAKE-env"}


class ToolEnv:
    """A config file, a state dir and an isolated OpenClaw CLI environment under ``root``."""

    def __init__(self, root: Path, text: str, version: str = "2026.9.6"):
        self.root = root
        self.home = root / "home"
        self.state_dir = root / "openclaw-state"
        self.work = root / "work"
        self.config = root / "gateway" / "openclaw.json"
        for directory in (self.home, self.state_dir, self.work, self.config.parent):
            directory.mkdir(parents=True, exist_ok=True)
        self.config.write_text(text, encoding="utf-8")
        self.spec_path = self.work / "spec.json"
        self.state = self.work / "state.json"
        self.version = version

    @property
    def env(self) -> dict[str, str]:
        env = {
            "PATH": f"{tools.node_bin_dir()}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "OPENCLAW_STATE_DIR": str(self.state_dir),
            "OPENCLAW_CONFIG_PATH": str(self.config),
            "NO_COLOR": "1",
            "TMPDIR": str(self.root),
            **FAKE_ENV,
        }
        for passthrough in ("LANG", "LC_ALL", "TZ"):
            if passthrough in os.environ:
                env[passthrough] = os.environ[passthrough]
        return env

    def openclaw_command(self) -> str:
        return " ".join(shlex.quote(part) for part in tools.openclaw_cli(self.version))

    def write_spec(self, spec: dict[str, Any]) -> Path:
        self.spec_path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
        return self.spec_path

    def tool(self, command: str, *extra: str, spec: Optional[dict[str, Any]] = None,
             openclaw: Optional[str] = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run ``openclaw_patch.py <command>`` with this env's config, state and CLI."""
        args = [sys.executable, str(PATCH_TOOL), command, "--config", str(self.config), "--state", str(self.state),
                "--openclaw", openclaw if openclaw is not None else self.openclaw_command()]
        if spec is not None:
            args += ["--spec", str(self.write_spec(spec))]
        args += list(extra)
        return subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout,
                              cwd=str(self.root))

    def openclaw(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return subprocess.run([*tools.openclaw_cli(self.version), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=str(self.root))

    def validate(self) -> dict[str, Any]:
        """``openclaw config validate --json`` of the config file as it is now."""
        proc = self.openclaw("config", "validate", "--json")
        answer = json.loads(proc.stdout)
        assert proc.returncode == 0 and answer.get("valid") is True, (
            f"openclaw config validate rejected {self.config}:\n{proc.stdout}\n{proc.stderr}\n"
            f"{self.config.read_text()}"
        )
        return answer

    def parsed(self) -> dict[str, Any]:
        return json5.loads(self.config.read_text(encoding="utf-8"))

    def bytes(self) -> bytes:
        return self.config.read_bytes()

    def backups(self) -> list[Path]:
        return sorted((self.work / "backups").glob("*.bak"))


def copy_plugin(target: Path, plugin_id: Optional[str] = None, source: Path = GATE_SOURCE) -> Path:
    """A copy of the budget-gate plugin directory (optionally under another id) at ``target``."""
    shutil.copytree(source, target)
    if plugin_id is not None:
        manifest_path = target / "openclaw.plugin.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest["id"] = plugin_id
        manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return target


def assert_ok(proc: subprocess.CompletedProcess, what: str = "openclaw_patch.py") -> None:
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def assert_no_secret(texts: Sequence[str], secrets: Sequence[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"secret {secret[:6]}... printed:\n{text}"
