"""Every rendered unit variant through systemd's own checker (systemd-analyze, systemd 252 here).

``verify`` needs the units' dependencies (multi-user.target, ...) and the ExecStart binary to exist, so
each variant is verified inside a temp root (``--root``) holding a copy of systemd's own units and an
executable stand-in at the venv's python path.  Any output at all (a warning for an unknown or unparsable
directive is not an error to systemd) fails the test.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Callable

import pytest

from components.config import StackConfig
from components.enforcer_service.layout import SERVICE_UNIT, layout
from components.enforcer_service.units import render_units
from tests.components.enforcer_service.support import make_config
from tests.support.tools import systemd_analyze_bin

#: The exposure score `systemd-analyze security` gives the service must stay at or under this ("OK").
MAX_EXPOSURE = 2.0

VARIANTS: dict[str, Callable[[], StackConfig]] = {
    "reference-watch": lambda: make_config(),
    "watch-as-sam": lambda: make_config({"user": "sam"}),
    "watch-flag-in-tmp": lambda: make_config({"flagFile": "/tmp/openclaw-budget-exceeded"}, gate={"enabled": False}),
    "watch-metrics-file": lambda: make_config({"metricsFile": "/var/lib/node-exporter/openclaw_budget.prom"}),
    "watch-install-under-home": lambda: make_config({"installDir": "/home/sam/.local/openclaw-budget", "user": "sam"}),
    "timer-5min": lambda: make_config({"runAs": "timer", "intervalSeconds": 300}),
    "timer-10s": lambda: make_config({"runAs": "timer", "intervalSeconds": 10}),
    "timer-daily": lambda: make_config({"runAs": "timer", "intervalSeconds": 86400}),
}


@pytest.fixture(scope="module")
def systemd_units_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("systemd-units") / "system"
    shutil.copytree("/usr/lib/systemd/system", target, symlinks=True)
    return target


def make_root(tmp_path: Path, units_copy: Path, cfg: StackConfig, units: dict[str, str] | None = None) -> Path:
    root = tmp_path / "root"
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree(units_copy, root / "usr/lib/systemd/system", symlinks=True)
    python = root / layout(cfg).python.lstrip("/")
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for name, text in (units if units is not None else render_units(cfg)).items():
        (unit_dir / name).write_text(text)
    return root


def verify(root: Path, names: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(systemd_analyze_bin()), "verify", f"--root={root}", *(f"/etc/systemd/system/{n}" for n in names)],
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_units_verify_clean(variant: str, tmp_path: Path, systemd_units_copy: Path) -> None:
    cfg = VARIANTS[variant]()
    units = render_units(cfg)
    result = verify(make_root(tmp_path, systemd_units_copy, cfg), list(units))
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        f"{variant}: systemd-analyze verify said:\n{result.stdout}{result.stderr}"
    )


def test_verify_catches_a_broken_unit(tmp_path: Path, systemd_units_copy: Path) -> None:
    """The check above can fail: a misspelled directive or a missing binary is reported."""
    cfg = make_config()
    broken = render_units(cfg)[SERVICE_UNIT].replace("ProtectHome=", "ProtectHomes=")
    result = verify(make_root(tmp_path, systemd_units_copy, cfg, {SERVICE_UNIT: broken}), [SERVICE_UNIT])
    assert "Unknown key" in result.stderr and "ProtectHomes" in result.stderr
    missing = tmp_path / "missing"
    missing.mkdir()
    root = make_root(missing, systemd_units_copy, cfg)
    (root / layout(cfg).python.lstrip("/")).unlink()
    result = verify(root, [SERVICE_UNIT])
    assert result.returncode != 0 and "is not executable" in result.stderr


@pytest.mark.parametrize("seconds", [1, 10, 30, 60, 300, 1800, 3600, 21600, 86400])
def test_timer_fires_every_interval(seconds: int) -> None:
    spec = make_config({"runAs": "timer", "intervalSeconds": seconds}).enforcer.on_calendar
    assert spec is not None
    result = subprocess.run(
        [str(systemd_analyze_bin()), "calendar", "--iterations=4", spec], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    stamps = re.findall(r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", result.stdout)
    assert len(stamps) == 4, result.stdout
    times = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in stamps]
    gaps = {(b - a).total_seconds() for a, b in zip(times, times[1:])}
    assert gaps == {seconds}, f"{spec}: gaps {gaps}"


@pytest.mark.parametrize("variant", ["reference-watch", "watch-as-sam", "timer-5min"])
def test_security_exposure_is_low(variant: str, tmp_path: Path, systemd_units_copy: Path) -> None:
    cfg = VARIANTS[variant]()
    root = make_root(tmp_path, systemd_units_copy, cfg)
    result = subprocess.run(
        [
            str(systemd_analyze_bin()),
            "security",
            "--offline=yes",
            f"--root={root}",
            f"--threshold={int(MAX_EXPOSURE * 10)}",
            f"/etc/systemd/system/{SERVICE_UNIT}",
        ],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
    assert result.returncode == 0, f"over threshold:\n{result.stdout}{result.stderr}"
