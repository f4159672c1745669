"""Helpers for the enforcer-deployment tests: stack configs, a sandbox root, a stand-in for systemctl.

The sandbox is what ``enforcer.rootDir`` points at: a directory that plays ``/`` for the install script.
systemd can't run units there, so ``enforcer.systemctl`` points at :func:`write_fake_systemctl`'s script,
which records every call and answers like systemctl: unit-file verbs (``enable``, ``disable``,
``is-enabled``) go to the real ``systemctl --root=<sandbox>`` (it works offline and creates the real
``*.wants/`` symlinks from the units' ``[Install]`` sections); runtime verbs (``start``, ``stop``,
``restart``, ``is-active``, ``daemon-reload``) are recorded in a state directory, a oneshot unit never
staying active.
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.config import StackConfig, parse_stack_config
from tests.support.pulumi_mocks import FAKE_SECRETS, stack_file_config
from tests.support.tools import cache_dir


def workstation_raw() -> dict[str, Any]:
    """The reference stack's raw config (with fake secrets), as the stack file holds it."""
    config, _ = stack_file_config("workstation")
    return {key.split(":", 1)[1]: json.loads(value) for key, value in config.items()}


def make_config(enforcer: dict[str, Any] | None = None, **sections: Any) -> StackConfig:
    """The reference stack with ``enforcer`` keys (camelCase) and whole sections overridden."""
    raw = copy.deepcopy(workstation_raw())
    # The tests were written for (and keep covering) the dedicated service user; the reference stack itself
    # runs as sam because its flag lives under sam's 0700 home.
    raw["enforcer"]["user"] = "openclaw-budget"
    raw["enforcer"].update(enforcer or {})
    for key, value in sections.items():
        raw[key] = value
    return parse_stack_config(raw, secret_paths_ok=lambda path: True)


def wheels_dir() -> Path:
    """Pure-Python wheels of ``requests`` and its deps (tests/setup/sshd.sh), for offline pip installs."""
    path = cache_dir() / "wheels" / "enforcer"
    if not (path / ".complete").exists():
        import pytest

        pytest.fail("wheel dir for the enforcer install tests missing; run `bash tests/setup/sshd.sh`", pytrace=False)
    return path


FAKE_SYSTEMCTL = r"""#!/bin/sh
# Stand-in for systemctl in the sandbox @ROOT@ (written by tests/components/enforcer_service/support.py).
ROOT=@ROOT@
STATE=@STATE@
printf '%s\n' "$*" >> @LOG@
verb=''
units=''
quiet=0
for arg in "$@"; do
    case "$arg" in
        --quiet|-q) quiet=1 ;;
        --no-block) ;;
        -*) echo "fake systemctl: unsupported option $arg" >&2; exit 2 ;;
        *) if [ -z "$verb" ]; then verb=$arg; else units="$units $arg"; fi ;;
    esac
done
case "$verb" in
    enable|disable|is-enabled)
        exec systemctl --root="$ROOT" "$@" ;;
    daemon-reload)
        exit 0 ;;
    start|restart)
        for unit in $units; do
            file="$ROOT/etc/systemd/system/$unit"
            [ -f "$file" ] || { echo "Failed to start $unit: Unit $unit not found." >&2; exit 5; }
            grep -q '^Type=oneshot' "$file" || touch "$STATE/$unit.active"
        done ;;
    stop)
        for unit in $units; do rm -f "$STATE/$unit.active"; done ;;
    is-active)
        for unit in $units; do
            if [ -e "$STATE/$unit.active" ]; then [ "$quiet" = 1 ] || echo active; exit 0; fi
            [ "$quiet" = 1 ] || echo inactive
            exit 3
        done ;;
    *)
        echo "fake systemctl: unsupported verb $verb" >&2; exit 2 ;;
esac
"""


@dataclass
class Sandbox:
    """A fake root for the install script, and the record of its systemctl calls."""

    root: Path
    home: Path
    systemctl: Path
    systemctl_log: Path
    systemctl_state: Path

    def path(self, host_path: str) -> Path:
        return self.root / host_path.lstrip("/")

    def systemctl_calls(self) -> list[str]:
        if not self.systemctl_log.exists():
            return []
        return self.systemctl_log.read_text().splitlines()

    def reset_calls(self) -> None:
        self.systemctl_log.write_text("")

    def is_active(self, unit: str) -> bool:
        return (self.systemctl_state / f"{unit}.active").exists()

    def remove(self) -> None:
        shutil.rmtree(self.root.parent, ignore_errors=True)

    def clone(self) -> "Sandbox":
        """A copy of this sandbox in its current state (owners kept: ``cp -a``), with its own systemctl."""
        base = Path(tempfile.mkdtemp(prefix="oc-enforcer-sandbox-", dir="/tmp"))
        os.rmdir(base)
        subprocess.run(["cp", "-a", str(self.root.parent), str(base)], check=True)
        return _with_fake_systemctl(base)


def make_sandbox(mount_dirs: tuple[str, ...] = ()) -> Sandbox:
    """A world-traversable sandbox (the service user must reach its dirs, like on a real host).

    It gets copies of the host's user database (so ``useradd --root`` has one to add to), systemd's own
    units (so ``systemctl --root`` knows multi-user.target and timers.target), and the gateway's mount
    directories ``mount_dirs`` (which on a real host exist before the enforcer is installed).
    """
    base = Path(tempfile.mkdtemp(prefix="oc-enforcer-sandbox-", dir="/tmp"))
    os.chmod(base, 0o755)
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        if Path("/etc", name).exists():
            shutil.copy2(Path("/etc", name), root / "etc" / name)
    system_units = Path("/usr/lib/systemd/system")
    if system_units.is_dir():
        (root / "usr/lib/systemd").mkdir(parents=True)
        shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    for mount in mount_dirs:
        (root / mount.lstrip("/")).mkdir(parents=True, exist_ok=True)
    home = base / "home"  # the SSH user's $HOME for the upload dir, kept out of the real one
    home.mkdir(mode=0o700)
    (base / "systemctl-state").mkdir()
    return _with_fake_systemctl(base)


def _with_fake_systemctl(base: Path) -> Sandbox:
    root, state, log, fake = base / "root", base / "systemctl-state", base / "systemctl.log", base / "systemctl"
    fake.write_text(
        FAKE_SYSTEMCTL.replace("@ROOT@", str(root)).replace("@STATE@", str(state)).replace("@LOG@", str(log))
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return Sandbox(root=root, home=base / "home", systemctl=fake, systemctl_log=log, systemctl_state=state)


def sandbox_user_ids(sandbox: Sandbox, user: str) -> tuple[int, int] | None:
    for line in sandbox.path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    return None


def mode_owner(path: Path) -> tuple[str, int, int]:
    info = path.lstat()
    return oct(stat.S_IMODE(info.st_mode)), info.st_uid, info.st_gid


def fake_token() -> str:
    return FAKE_SECRETS["accessToken"]
