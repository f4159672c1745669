"""The flag must reach the gate: configs where the enforcer's flag can't be the gate's file are rejected
before any resource exists (so `pulumi preview` fails), each with a message that says how to fix it."""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pulumi
import pytest

from components.config import ConfigError, parse_stack_config
from tests.components.enforcer_service.support import workstation_raw
from tests.support.pulumi_mocks import PROJECT, RecordingMocks, run_program, set_config, stack_file_config

MOUNT = "/home/sam/moltbot-infra/clawdbot-config"


def problems(mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    raw = copy.deepcopy(workstation_raw())
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, secret_paths_ok=lambda path: True)
    return caught.value.problems


def one_problem(mutate: Callable[[dict[str, Any]], None], key: str) -> str:
    found = [p for p in problems(mutate) if p.startswith(key + ":")]
    assert len(found) == 1, f"expected one {key} problem, got {found}"
    return found[0]


def test_reference_stack_places_the_flag_where_the_gate_reads_it() -> None:
    cfg = parse_stack_config(workstation_raw(), secret_paths_ok=lambda path: True)
    assert cfg.enforcer.host == cfg.gateway.host == "muletto"
    assert cfg.enforcer.flag_file == f"{MOUNT}/budget/openclaw-budget-exceeded"
    assert cfg.gate_flag_path == "/home/node/.openclaw/budget/openclaw-budget-exceeded"


def test_enforcer_on_another_host() -> None:
    message = one_problem(lambda raw: raw["enforcer"].update(host="workstation"), "enforcer.host")
    assert "set enforcer.host to 'muletto'" in message


def test_flag_outside_every_mount() -> None:
    message = one_problem(
        lambda raw: raw["enforcer"].update(flagFile="/tmp/openclaw-budget-exceeded"), "enforcer.flagFile"
    )
    assert "not inside any directory the gateway container mounts" in message
    assert MOUNT in message, "the message names the mounts that would work"


def test_flag_as_a_single_file_bind_mount() -> None:
    def mutate(raw: dict[str, Any]) -> None:
        flag = "/srv/openclaw-budget-exceeded"
        raw["enforcer"]["flagFile"] = flag
        raw["gateway"]["mounts"].append({"hostPath": flag, "containerPath": "/run/budget-flag"})

    message = one_problem(mutate, "enforcer.flagFile")
    assert "single file" in message and "Mount its directory instead" in message


def test_flag_inside_the_gate_plugin_dir() -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["enforcer"]["flagFile"] = raw["gate"]["hostDir"] + "/flag"

    assert "gate.hostDir" in one_problem(mutate, "enforcer.flagFile")


def test_flag_is_the_gateway_config() -> None:
    def mutate(raw: dict[str, Any]) -> None:
        raw["enforcer"]["flagFile"] = raw["gateway"]["configPath"]

    assert "openclaw.json" in one_problem(mutate, "enforcer.flagFile")


def test_flag_inside_install_or_state_dir() -> None:
    found = problems(lambda raw: raw["enforcer"].update(installDir=MOUNT, stateDir=f"{MOUNT}/budget"))
    assert any(p.startswith("enforcer.flagFile:") and "installDir" in p for p in found), found
    assert any(p.startswith("enforcer.flagFile:") and "stateDir" in p and "0700" in p for p in found), found


@pytest.mark.parametrize("path", ["/opt", "/var/lib", "/home/sam", "/"])
def test_install_dir_must_be_dedicated(path: str) -> None:
    message = one_problem(lambda raw: raw["enforcer"].update(installDir=path), "enforcer.installDir")
    assert "a directory of its own" in message


@pytest.mark.parametrize("path", ["/srv/my flag", "/srv/100%", "/srv/it's"])
def test_paths_must_be_unit_safe(path: str) -> None:
    message = one_problem(lambda raw: raw["enforcer"].update(stateDir=path), "enforcer.stateDir")
    assert "may only contain" in message


def test_metrics_file_must_be_prom() -> None:
    message = one_problem(
        lambda raw: raw["enforcer"].update(metricsFile="/var/lib/x/budget.txt"), "enforcer.metricsFile"
    )
    assert ".prom" in message


def test_gate_disabled_lifts_the_placement_rules() -> None:
    raw = copy.deepcopy(workstation_raw())
    raw["enforcer"].update(host="workstation", flagFile="/tmp/openclaw-budget-exceeded")
    raw["gate"] = {"enabled": False}
    cfg = parse_stack_config(raw, secret_paths_ok=lambda path: True)
    assert cfg.enforcer.host == "workstation"


def test_preview_stops_before_any_resource(pulumi_mocks: RecordingMocks) -> None:
    """What `pulumi preview` runs: the real __main__.py, under mocks, with a flag the gate can't see."""
    config, secret_keys = stack_file_config("workstation")
    enforcer = json.loads(config[f"{PROJECT}:enforcer"])
    enforcer["flagFile"] = "/tmp/openclaw-budget-exceeded"
    config[f"{PROJECT}:enforcer"] = json.dumps(enforcer)
    set_config(config, secret_keys)
    with pytest.raises(pulumi.RunError) as caught:
        run_program()
    expected = "enforcer.flagFile: /tmp/openclaw-budget-exceeded is not inside any directory the gateway container"
    assert expected in str(caught.value)
    assert pulumi_mocks.resources == []
