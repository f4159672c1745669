"""The rendered systemd units: what each mode runs, and the hardening that keeps the flag reachable."""
from __future__ import annotations

import re

import pytest

from components.config import ConfigError
from components.enforcer_service.layout import SERVICE_UNIT, TIMER_UNIT, unit_names
from components.enforcer_service.units import render_service, render_timer, render_units, unit_paths
from tests.components.enforcer_service.support import fake_token, make_config

FLAG_DIR = "/home/sam/moltbot-infra/clawdbot-config/budget"


def directives(unit: str) -> dict[str, list[str]]:
    """``{key: [values...]}`` of a unit's non-comment lines (a key may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def no_tmp_gate_disabled(**enforcer: object):
    """Flag at the default /tmp path: only valid when the gate is off (the container can't see /tmp)."""
    return make_config({"flagFile": "/tmp/openclaw-budget-exceeded", **enforcer}, gate={"enabled": False})


class TestWatchService:
    def test_reference_stack_runs_a_fast_watch_loop(self) -> None:
        unit = directives(render_service(make_config()))
        assert unit["Type"] == ["simple"]
        assert unit["ExecStart"] == ["/opt/openclaw-budget/venv/bin/python -m enforcer watch --interval 10"]
        assert unit["Restart"] == ["always"]
        assert unit["StartLimitIntervalSec"] == ["0"], "a crash loop must never make systemd give up"
        assert unit["WantedBy"] == ["multi-user.target"]
        assert unit["EnvironmentFile"] == ["/etc/openclaw-budget/enforcer.env"]
        assert unit["Environment"][0] == "PYTHONPATH=/opt/openclaw-budget/current"

    def test_interval_comes_from_config(self) -> None:
        unit = directives(render_service(make_config({"intervalSeconds": 5})))
        assert unit["ExecStart"] == ["/opt/openclaw-budget/venv/bin/python -m enforcer watch --interval 5"]

    def test_runs_as_configured_user(self) -> None:
        assert directives(render_service(make_config({"user": "sam"})))["User"] == ["sam"]
        assert directives(render_service(make_config({"user": "openclaw-budget"})))["User"] == ["openclaw-budget"]

    def test_hardening(self) -> None:
        unit = directives(render_service(make_config()))
        for key, value in {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "PrivateDevices": "yes",
            "CapabilityBoundingSet": "",
            "RestrictSUIDSGID": "yes",
            "SystemCallArchitectures": "native",
            "UMask": "0022",
        }.items():
            assert unit[key] == [value], key

    def test_writable_paths_are_exactly_state_and_flag_dirs(self) -> None:
        unit = directives(render_service(make_config()))
        assert unit["ReadWritePaths"] == [f"/var/lib/openclaw-budget {FLAG_DIR}"]
        metrics = directives(render_service(make_config({"metricsFile": "/var/lib/node-exporter/budget.prom"})))
        assert metrics["ReadWritePaths"] == [f"/var/lib/openclaw-budget {FLAG_DIR} /var/lib/node-exporter"]

    def test_flag_under_home_is_bind_mounted_into_an_empty_home(self) -> None:
        unit = directives(render_service(make_config()))
        assert unit["ProtectHome"] == ["tmpfs"], "ProtectHome=yes would hide the flag under /home/sam"
        assert unit["BindPaths"] == [FLAG_DIR]
        assert "BindReadOnlyPaths" not in unit

    def test_install_dir_under_home_is_bound_read_only(self) -> None:
        unit = directives(render_service(make_config({"installDir": "/home/sam/.local/openclaw-budget"})))
        assert unit["BindPaths"] == [FLAG_DIR]
        assert unit["BindReadOnlyPaths"] == ["/home/sam/.local/openclaw-budget"]

    def test_homes_hidden_when_nothing_lives_there(self) -> None:
        unit = directives(render_service(no_tmp_gate_disabled()))
        assert unit["ProtectHome"] == ["yes"]
        assert "BindPaths" not in unit

    def test_no_private_tmp_when_the_flag_is_in_tmp(self) -> None:
        text = render_service(no_tmp_gate_disabled())
        unit = directives(text)
        assert unit["PrivateTmp"] == ["no"], "a private /tmp would hide the flag from the gateway"
        assert unit["ReadWritePaths"] == ["/var/lib/openclaw-budget /tmp"]
        assert "# No PrivateTmp: /tmp must be the host's own" in text

    def test_private_tmp_otherwise(self) -> None:
        assert directives(render_service(make_config()))["PrivateTmp"] == ["yes"]

    def test_remove_ipc_only_for_the_dedicated_user(self) -> None:
        assert directives(render_service(make_config({"user": "openclaw-budget"})))["RemoveIPC"] == ["yes"]
        # For a login user it would delete that user's other IPC objects whenever the service stops.
        assert "RemoveIPC" not in directives(render_service(make_config({"user": "sam"})))

    def test_no_secret_in_units(self) -> None:
        for text in render_units(make_config()).values():
            assert fake_token() not in text
            assert "MATRIX_ACCESS_TOKEN" not in text


class TestTimer:
    def cfg(self, seconds: int = 300):
        return make_config({"runAs": "timer", "intervalSeconds": seconds})

    def test_service_is_a_oneshot_check_without_install_section(self) -> None:
        text = render_service(self.cfg())
        unit = directives(text)
        assert unit["Type"] == ["oneshot"]
        assert unit["ExecStart"] == ["/opt/openclaw-budget/venv/bin/python -m enforcer check"]
        assert "Restart" not in unit
        assert "[Install]" not in text, "the timer starts it; enabling it too would run it at boot"

    def test_timer(self) -> None:
        unit = directives(render_timer(self.cfg()))
        assert unit["OnCalendar"] == ["*-*-* *:00/5:00"]
        assert unit["Persistent"] == ["true"]
        assert unit["AccuracySec"] == ["1s"]
        assert unit["Unit"] == [SERVICE_UNIT]
        assert unit["WantedBy"] == ["timers.target"]

    def test_unit_files_by_mode(self) -> None:
        assert list(render_units(self.cfg())) == [SERVICE_UNIT, TIMER_UNIT]
        assert list(render_units(make_config())) == [SERVICE_UNIT]
        assert unit_names(self.cfg()) == [SERVICE_UNIT, TIMER_UNIT]
        assert unit_names(make_config()) == [SERVICE_UNIT]
        assert set(unit_paths(self.cfg())) == {f"/etc/systemd/system/{n}" for n in (SERVICE_UNIT, TIMER_UNIT)}

    @pytest.mark.parametrize(
        ("seconds", "spec"),
        [
            (1, "*-*-* *:*:00/1"),
            (10, "*-*-* *:*:00/10"),
            (30, "*-*-* *:*:00/30"),
            (60, "*-*-* *:00/1:00"),
            (300, "*-*-* *:00/5:00"),
            (1800, "*-*-* *:00/30:00"),
            (3600, "*-*-* 00/1:00:00"),
            (21600, "*-*-* 00/6:00:00"),
            (86400, "*-*-* 00:00:00"),
        ],
    )
    def test_calendar_specs(self, seconds: int, spec: str) -> None:
        assert self.cfg(seconds).enforcer.on_calendar == spec

    @pytest.mark.parametrize("seconds", [7, 45, 90, 5000, 25200])
    def test_uneven_intervals_are_rejected_for_the_timer(self, seconds: int) -> None:
        with pytest.raises(ConfigError) as caught:
            self.cfg(seconds)
        pattern = r"enforcer\.intervalSeconds: with runAs 'timer' it must divide"
        assert any(re.match(pattern, p) for p in caught.value.problems)

    def test_uneven_intervals_are_fine_for_watch(self) -> None:
        assert make_config({"intervalSeconds": 7}).enforcer.interval_seconds == 7
