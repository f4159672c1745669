"""The gateway section of the stack config: the fields the gateway component adds, and their checks."""
from __future__ import annotations

import pytest

from components.config import ConfigError
from tests.components.gateway.stack_configs import build


def problems(**gateway: object) -> list[str]:
    try:
        build(gateway=gateway)
    except ConfigError as error:
        return error.problems
    raise AssertionError(f"accepted: {gateway!r}")


def test_defaults() -> None:
    gateway = build().gateway
    assert gateway.python == "python3" and gateway.verify is True and gateway.verify_timeout_seconds == 120
    assert gateway.effective_log_command == "docker logs --since {since} openclaw-gateway"
    assert gateway.effective_restart_command == "docker restart openclaw-gateway"
    assert build(gateway={"logCommand": ""}).gateway.effective_log_command is None
    assert build(gateway={"restartCommand": "systemctl restart openclaw"}).gateway.effective_restart_command == (
        "systemctl restart openclaw")


def test_single_file_bind_mount_of_openclaw_json_is_refused() -> None:
    lines = problems(mounts=[
        {"hostPath": "/home/sam/moltbot-infra/clawdbot-config/openclaw.json",
         "containerPath": "/home/node/.openclaw/openclaw.json"},
        {"hostPath": "/home/sam/moltbot-infra/clawdbot-config/budget", "containerPath": "/home/node/.openclaw/budget"},
        {"hostPath": "/home/sam/moltbot-infra/clawdbot-config/plugins",
         "containerPath": "/home/node/.openclaw/plugins"},
    ])
    assert any("bind-mounted as a single file" in line and "Mount its directory instead" in line for line in lines)


@pytest.mark.parametrize("work_dir", ["relative/dir", "~", "/tmp/x y", "~/../etc", "/tmp/$(id)", "/x/"])
def test_work_dir_must_be_a_plain_path(work_dir: str) -> None:
    assert any(line.startswith("gateway.workDir:") for line in problems(workDir=work_dir))


@pytest.mark.parametrize("work_dir", ["~/.openclaw-usage", "/var/lib/openclaw-usage", "~/a/b.c"])
def test_work_dir_accepted(work_dir: str) -> None:
    assert build(gateway={"workDir": work_dir}).gateway.work_dir == work_dir


@pytest.mark.parametrize("key", ["cli", "logCommand", "restartCommand"])
def test_commands_must_split_like_a_shell_line(key: str) -> None:
    assert any(line.startswith(f"gateway.{key}:") for line in problems(**{key: "docker logs 'unterminated"}))
    assert any(line.startswith(f"gateway.{key}:") for line in problems(**{key: "a\nb"}))


def test_python_is_a_plain_word() -> None:
    assert any(line.startswith("gateway.python:") for line in problems(python="python3; rm -rf /"))
