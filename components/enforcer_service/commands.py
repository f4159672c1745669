"""Shell for the enforcer's host, rendered by pure functions from quoted pieces.

Each script is a header of ``NAME=<shlex-quoted value>`` assignments (and two one-line functions built
from quoted words) followed by a static body kept in ``scripts/*.sh``: the body never interpolates
anything, so no configuration value can change what the shell parses.  The scripts run as root through
``<sudo> /bin/sh -c <script>``; the install reads the environment file (which holds the Matrix token) on
stdin, so the token is never part of a command line, a process list, a log or the Pulumi state in clear.
"""
from __future__ import annotations

import shlex
from importlib import resources

from components.config import StackConfig
from components.enforcer_service.layout import (
    CONFIG_DIR,
    CREATED_DIRS_FILE,
    DEDICATED_USER,
    ENV_FILE,
    INSTALL_MARKER,
    SERVICE_UNIT,
    TIMER_UNIT,
    UNIT_DIR,
    UPLOAD_DIR_FROM_HOME,
    UPLOAD_FILE,
    layout,
    main_unit,
)
from components.enforcer_service.package import PackageArchive
from components.enforcer_service.units import render_service, render_timer

#: The enforcer's only third-party dependency, the same range as the project's requirements.txt.
REQUESTS_SPEC = "requests>=2.31,<3"
REQUESTS_CHECK = (
    'import sys, requests; v = tuple(int(p) for p in requests.__version__.split(".")[:2]); '
    "sys.exit(0 if (2, 31) <= v < (3, 0) else 1)"
)
#: Runs the enforcer's own settings validation on the new environment file before anything restarts.
VALIDATE_SETTINGS = (
    "from enforcer import settings\n"
    "try:\n"
    "    settings.load()\n"
    "except settings.ConfigError as error:\n"
    '    raise SystemExit("enforcer: %s" % error)\n'
)
#: The upload path as the SSH user's login shell expands it (the install runs under sudo, whose $HOME
#: may be root's, so the path is expanded before sudo and passed as $1).
UPLOAD_PATH_SHELL = f'"$HOME"/{UPLOAD_DIR_FROM_HOME}/{UPLOAD_FILE}'


def _body(name: str) -> str:
    return resources.files("components.enforcer_service").joinpath("scripts", name).read_text(encoding="utf-8")


def _words(command: str) -> str:
    """A configured command (``sudo -n``, ``systemctl``) as individually quoted words."""
    return " ".join(shlex.quote(word) for word in shlex.split(command))


def sudo_prefix(cfg: StackConfig) -> str:
    """The configured sudo prefix; by default none for root, ``sudo -n`` (never prompt) for anyone else."""
    if cfg.enforcer.sudo is not None:
        return cfg.enforcer.sudo
    return "" if cfg.hosts[cfg.enforcer.host].user == "root" else "sudo -n"


def _assignments(values: dict[str, str]) -> list[str]:
    for name, value in values.items():
        if "\x00" in value:
            raise ValueError(f"{name}: NUL byte")
    return [f"{name}={shlex.quote(value)}" for name, value in values.items()]


def _common(cfg: StackConfig) -> dict[str, str]:
    """Settings both scripts use."""
    paths = layout(cfg)
    return {
        "ROOT": cfg.enforcer.root_dir,
        "SERVICE_USER": cfg.enforcer.user,
        "SERVICE_UNIT": SERVICE_UNIT,
        "TIMER_UNIT": TIMER_UNIT,
        "UNIT_DIR": UNIT_DIR,
        "CONFIG_DIR": CONFIG_DIR,
        "ENV_FILE": ENV_FILE,
        "CREATED_DIRS_FILE": CREATED_DIRS_FILE,
        "INSTALL_DIR": paths.install_dir,
        "INSTALL_MARKER": INSTALL_MARKER,
        "STATE_DIR": paths.state_dir,
    }


def _systemctl_function(cfg: StackConfig) -> str:
    return f'svc_ctl() {{ {_words(cfg.enforcer.systemctl)} "$@"; }}'


def render_wrapper(cfg: StackConfig) -> str:
    """``<installDir>/bin/openclaw-budget``: the enforcer CLI with the service's settings, as its user."""
    paths = layout(cfg)
    user = shlex.quote(cfg.enforcer.user)
    return "\n".join(
        [
            "#!/bin/sh",
            "# The budget enforcer's command line, with the service's settings and as the service's user:",
            f"#   sudo {paths.wrapper} status | doctor | drill | allow --for 2h | allow --cancel",
            "# Managed by openclaw-usage (`pulumi up`).",
            "set -eu",
            'if [ "$(id -u)" != 0 ]; then',
            f'    echo "run it with sudo: it reads {ENV_FILE} (root only)" >&2',
            "    exit 1",
            "fi",
            "set -a",
            "# shellcheck source=/dev/null",
            f". {shlex.quote(ENV_FILE)}",
            "set +a",
            f"PYTHONPATH={shlex.quote(paths.current_dir)}",
            "PYTHONDONTWRITEBYTECODE=1",
            "export PYTHONPATH PYTHONDONTWRITEBYTECODE",
            f"exec setpriv --reuid={user} --regid=\"$(id -g {user})\" --init-groups -- "
            f"{shlex.quote(paths.python)} -m enforcer \"$@\"",
        ]
    ) + "\n"


def render_install_script(cfg: StackConfig, package: PackageArchive) -> str:
    """The install script: run as root, environment file on stdin, package archive path as ``$1``."""
    paths = layout(cfg)
    values = _common(cfg)
    values.update(
        {
            "RUN_AS": cfg.enforcer.run_as,
            "MAIN_UNIT": main_unit(cfg),
            "FLAG_DIR": paths.flag_dir,
            "FLAG_MOUNT_DIR": paths.flag_mount_dir or "",
            "METRICS_DIR": paths.metrics_dir or "",
            "WRITABLE_DIRS": " ".join(paths.writable_dirs),
            "VENV_DIR": paths.venv_dir,
            "CURRENT_DIR": paths.current_dir,
            "WRAPPER": paths.wrapper,
            "PYTHON": cfg.enforcer.python,
            "REQUESTS_SPEC": REQUESTS_SPEC,
            "REQUESTS_CHECK": REQUESTS_CHECK,
            "VALIDATE_SETTINGS": VALIDATE_SETTINGS,
            "PACKAGE_SHA256": package.sha256,
            "RELEASE_ID": package.release_id,
            "WRAPPER_TEXT": render_wrapper(cfg).rstrip("\n"),
            "SERVICE_TEXT": render_service(cfg).rstrip("\n"),
            "TIMER_TEXT": render_timer(cfg).rstrip("\n") if cfg.enforcer.run_as == "timer" else "",
        }
    )
    pip_args = " ".join(shlex.quote(arg) for arg in cfg.enforcer.pip_args)
    header = [
        "#!/bin/sh",
        "# openclaw-usage: install or update the budget enforcer (rendered by",
        "# components/enforcer_service/commands.py; every value below is shell-quoted).",
        *_assignments(values),
        _systemctl_function(cfg),
        f'pip_install() {{ "$@"{" " + pip_args if pip_args else ""}; }}',
    ]
    return "\n".join(header) + "\n" + _body("install.sh")


def render_uninstall_script(cfg: StackConfig) -> str:
    """The uninstall script: run as root; stops, disables and removes everything the install put there."""
    values = _common(cfg)
    values["FLAG_FILE"] = layout(cfg).flag_file
    values["DEDICATED_USER"] = DEDICATED_USER
    values["KEEP_STATE"] = "yes" if cfg.enforcer.keep_state_on_destroy else "no"
    header = [
        "#!/bin/sh",
        "# openclaw-usage: remove the budget enforcer (rendered by components/enforcer_service/commands.py;",
        "# every value below is shell-quoted).",
        *_assignments(values),
        _systemctl_function(cfg),
    ]
    return "\n".join(header) + "\n" + _body("uninstall.sh")


def _as_root(cfg: StackConfig, script: str, name: str, *args: str) -> str:
    """``<sudo> /bin/sh -c <script> <name> <args>``, for the SSH user's login shell."""
    prefix = _words(sudo_prefix(cfg))
    parts = [prefix] if prefix else []
    parts += ["/bin/sh", "-c", shlex.quote(script), name, *args]
    return " ".join(parts)


def install_command(cfg: StackConfig, package: PackageArchive) -> str:
    """The remote command that installs; its stdin must be the environment file."""
    return _as_root(cfg, render_install_script(cfg, package), "openclaw-budget-install", UPLOAD_PATH_SHELL)


def uninstall_command(cfg: StackConfig) -> str:
    return _as_root(cfg, render_uninstall_script(cfg), "openclaw-budget-uninstall")


def upload_dir_command() -> str:
    """Creates the SSH user's private upload directory (the upload can't create parent directories)."""
    return f'set -eu; d="$HOME"/{UPLOAD_DIR_FROM_HOME}; mkdir -p "$d"; chmod 700 "$d"; echo "upload directory: $d"'


def upload_dir_cleanup_command() -> str:
    parent = UPLOAD_DIR_FROM_HOME.split("/")[0]
    return f'rm -rf "$HOME"/{UPLOAD_DIR_FROM_HOME}; rmdir "$HOME"/{parent} 2>/dev/null || true'


def render_scripts(cfg: StackConfig, package: PackageArchive) -> dict[str, str]:
    """The install and uninstall scripts (for review in ``python -m components render``)."""
    return {
        "install.sh": render_install_script(cfg, package),
        "uninstall.sh": render_uninstall_script(cfg),
    }

