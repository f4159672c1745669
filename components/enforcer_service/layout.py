"""Where the enforcer's files live on its host: one place, so the units, the env file, the install and the
uninstall scripts can't disagree about a path.

Paths here are the *real* paths on the host (what the unit files name).  ``root_dir`` (a sandbox prefix
for tests) is applied only by the install and uninstall scripts when they touch the file system.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Optional

from components.config import StackConfig

#: The default service user (config.Enforcer.user): a system user of its own, created by the install.
DEDICATED_USER = "openclaw-budget"
SERVICE_UNIT = "openclaw-budget-enforcer.service"
TIMER_UNIT = "openclaw-budget-enforcer.timer"
UNIT_DIR = "/etc/systemd/system"
CONFIG_DIR = "/etc/openclaw-budget"
ENV_FILE = f"{CONFIG_DIR}/enforcer.env"
#: Where the package archive is uploaded, relative to the SSH user's home (the upload runs as that user).
UPLOAD_DIR_FROM_HOME = ".openclaw-usage/enforcer-upload"
UPLOAD_FILE = "enforcer.tar"
UPLOAD_PATH_FROM_HOME = f"{UPLOAD_DIR_FROM_HOME}/{UPLOAD_FILE}"
#: Marker file in the install dir: uninstall deletes the directory only when it finds it.
INSTALL_MARKER = ".openclaw-budget-enforcer"
#: Directories the install created (one per line), so uninstall removes only those (when empty).
CREATED_DIRS_FILE = f"{CONFIG_DIR}/created-dirs"

#: Parents that systemd's ProtectHome= hides.
HOME_ROOTS = ("/home", "/root", "/run/user")
#: Parents that PrivateTmp= replaces with a private copy.
TMP_ROOTS = ("/tmp", "/var/tmp")


def is_within(path: str, directory: str) -> bool:
    """True if ``path`` is ``directory`` or below it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


@dataclass(frozen=True)
class Layout:
    """Every host path of one enforcer deployment."""

    install_dir: str
    state_dir: str
    flag_file: str
    metrics_file: Optional[str]
    #: The gateway mount that holds the flag (must already exist on the host), or None without a gate.
    flag_mount_dir: Optional[str]

    @property
    def flag_dir(self) -> str:
        return posixpath.dirname(self.flag_file)

    @property
    def metrics_dir(self) -> Optional[str]:
        return posixpath.dirname(self.metrics_file) if self.metrics_file else None

    @property
    def venv_dir(self) -> str:
        return f"{self.install_dir}/venv"

    @property
    def python(self) -> str:
        return f"{self.venv_dir}/bin/python"

    @property
    def releases_dir(self) -> str:
        return f"{self.install_dir}/releases"

    @property
    def current_dir(self) -> str:
        """Symlink to the active release; it holds the ``enforcer`` package (it is the PYTHONPATH)."""
        return f"{self.install_dir}/current"

    @property
    def wrapper(self) -> str:
        """Operator command: runs the enforcer CLI with the service's settings and user."""
        return f"{self.install_dir}/bin/openclaw-budget"

    @property
    def writable_dirs(self) -> tuple[str, ...]:
        """Exactly the directories the service writes: state, flag (and the textfile-metrics dir)."""
        dirs = [self.state_dir, self.flag_dir]
        if self.metrics_dir:
            dirs.append(self.metrics_dir)
        return tuple(dict.fromkeys(dirs))

    @property
    def service_paths(self) -> tuple[str, ...]:
        """Every path the running service touches (for ProtectHome=/PrivateTmp= decisions)."""
        return (self.install_dir,) + self.writable_dirs


def layout(cfg: StackConfig) -> Layout:
    enforcer = cfg.enforcer
    mount_dir = None
    if cfg.gate.enabled:
        mounts = [m.host_path for m in cfg.gateway.mounts if is_within(enforcer.flag_file, m.host_path)]
        # The innermost mount is the one the container sees the flag through.
        mount_dir = max(mounts, key=len) if mounts else None
    return Layout(
        install_dir=enforcer.install_dir,
        state_dir=enforcer.state_dir,
        flag_file=enforcer.flag_file,
        metrics_file=enforcer.metrics_file,
        flag_mount_dir=mount_dir,
    )


def unit_names(cfg: StackConfig) -> list[str]:
    """The unit files this deployment installs, the one to enable last."""
    if cfg.enforcer.run_as == "timer":
        return [SERVICE_UNIT, TIMER_UNIT]
    return [SERVICE_UNIT]


def main_unit(cfg: StackConfig) -> str:
    """The unit that is enabled and started: the timer, or the long-running service."""
    return TIMER_UNIT if cfg.enforcer.run_as == "timer" else SERVICE_UNIT


def under_root(root_dir: str, path: str) -> str:
    """``path`` as seen from a sandbox rooted at ``root_dir`` ("/" leaves it unchanged)."""
    return path if root_dir == "/" else root_dir.rstrip("/") + path
