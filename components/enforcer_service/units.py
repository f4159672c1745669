"""The enforcer's systemd units, rendered from the stack config (pure: config in, text out).

Two ways to run, chosen by ``enforcer.runAs``:

- ``watch`` (default, fast): ``openclaw-budget-enforcer.service`` is a simple long-running service whose
  loop checks every ``intervalSeconds`` (10 s), restarted whatever happens (``Restart=always``);
- ``timer``: the service is a oneshot ``check`` started by ``openclaw-budget-enforcer.timer``
  (``OnCalendar=`` every ``intervalSeconds``, ``Persistent=true``, ``AccuracySec=1s``).

Hardening: the service sees the whole file system read-only (``ProtectSystem=strict``) except exactly the
state and flag directories (``ReadWritePaths=``); home directories are hidden (``ProtectHome=yes``), or,
when the flag or state lives under /home (the reference stack writes the flag into the gateway's
bind-mounted config directory), replaced by an empty tmpfs into which only those directories are
bind-mounted (``ProtectHome=tmpfs`` + ``BindPaths=``).  ``PrivateTmp=`` is used only when nothing the
service shares lives under /tmp: a private /tmp would hide the flag from the gateway.
"""
from __future__ import annotations

from components.config import StackConfig
from components.enforcer_service.layout import (
    DEDICATED_USER,
    ENV_FILE,
    HOME_ROOTS,
    SERVICE_UNIT,
    TIMER_UNIT,
    TMP_ROOTS,
    UNIT_DIR,
    is_within,
    layout,
)

def _under(paths: tuple[str, ...], roots: tuple[str, ...]) -> list[str]:
    return [p for p in paths if any(is_within(p, root) for root in roots)]


def _filesystem_lines(cfg: StackConfig) -> list[str]:
    paths = layout(cfg)
    lines = ["ProtectSystem=strict", "ReadWritePaths=" + " ".join(paths.writable_dirs)]
    in_home = _under(paths.service_paths, HOME_ROOTS)
    if in_home:
        writable = [p for p in paths.writable_dirs if p in in_home]
        read_only = [p for p in in_home if p not in writable]
        lines.append("# Homes become an empty tmpfs; only the directories below are mounted back in.")
        lines.append("ProtectHome=tmpfs")
        if writable:
            lines.append("BindPaths=" + " ".join(writable))
        if read_only:
            lines.append("BindReadOnlyPaths=" + " ".join(read_only))
    else:
        lines.append("ProtectHome=yes")
    in_tmp = _under(paths.service_paths, TMP_ROOTS)
    if in_tmp:
        lines.append(f"# No PrivateTmp: {', '.join(in_tmp)} must be the host's own, which the gateway sees.")
        lines.append("PrivateTmp=no")
    else:
        lines.append("PrivateTmp=yes")
    return lines


def _remove_ipc(cfg: StackConfig) -> list[str]:
    # RemoveIPC= deletes every IPC object of the user when the service stops: right for the dedicated
    # user, destructive for a login user (the reference stack runs as `sam`).
    if cfg.enforcer.user == DEDICATED_USER:
        return ["RemoveIPC=yes"]
    return []


HARDENING = """\
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
PrivateIPC=yes
PrivateMounts=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
# The flag must be world-readable (0644) for the gateway; the enforcer sets its own modes explicitly.
UMask=0022
"""


def render_service(cfg: StackConfig) -> str:
    enforcer, paths = cfg.enforcer, layout(cfg)
    if enforcer.run_as == "watch":
        description = f"OpenClaw budget enforcer (checks spend every {enforcer.interval_seconds} s)"
        run = [
            "Type=simple",
            f"ExecStart={paths.python} -m enforcer watch --interval {enforcer.interval_seconds}",
            "# Never give up: while it is down, a budget overrun would go unnoticed.",
            "Restart=always",
            "RestartSec=2s",
            "TimeoutStopSec=30s",
        ]
        unit_extra = ["StartLimitIntervalSec=0"]
        install = ["", "[Install]", "WantedBy=multi-user.target"]
    else:
        description = "OpenClaw budget enforcer: one spend check (started by its timer)"
        run = [
            "Type=oneshot",
            f"ExecStart={paths.python} -m enforcer check",
            "TimeoutStartSec=120s",
        ]
        unit_extra = []
        install = []  # started by the timer only
    lines = [
        "# Managed by openclaw-usage (`pulumi up`); local edits are overwritten.",
        "[Unit]",
        f"Description={description}",
        "Wants=network-online.target",
        "After=network-online.target",
        *unit_extra,
        "",
        "[Service]",
        *run,
        f"User={enforcer.user}",
        f"EnvironmentFile={ENV_FILE}",
        f"Environment=PYTHONPATH={paths.current_dir}",
        "Environment=PYTHONDONTWRITEBYTECODE=1",
        "Environment=PYTHONUNBUFFERED=1",
        f"WorkingDirectory={paths.state_dir}",
        "SyslogIdentifier=openclaw-budget",
        *_filesystem_lines(cfg),
        *HARDENING.splitlines(),
        *_remove_ipc(cfg),
        *install,
    ]
    return "\n".join(lines) + "\n"


def render_timer(cfg: StackConfig) -> str:
    enforcer = cfg.enforcer
    calendar = enforcer.on_calendar
    if calendar is None:  # the config model rejects this first; kept so the renderer is safe on its own
        raise ValueError(f"enforcer.intervalSeconds: {enforcer.interval_seconds} s has no even OnCalendar= spec")
    return "\n".join(
        [
            "# Managed by openclaw-usage (`pulumi up`); local edits are overwritten.",
            "[Unit]",
            f"Description=Run the OpenClaw budget enforcer every {enforcer.interval_seconds} s",
                "",
            "[Timer]",
            f"OnCalendar={calendar}",
            "# Fire on time (the default accuracy is a minute) and catch up on runs missed while off.",
            "AccuracySec=1s",
            "RandomizedDelaySec=0",
            "Persistent=true",
            f"Unit={SERVICE_UNIT}",
            "",
            "[Install]",
            "WantedBy=timers.target",
        ]
    ) + "\n"


def render_units(cfg: StackConfig) -> dict[str, str]:
    """``{unit file name: content}`` for the configured mode."""
    units = {SERVICE_UNIT: render_service(cfg)}
    if cfg.enforcer.run_as == "timer":
        units[TIMER_UNIT] = render_timer(cfg)
    return units


def unit_paths(cfg: StackConfig) -> dict[str, str]:
    """``{host path of the unit file: content}``."""
    return {f"{UNIT_DIR}/{name}": text for name, text in render_units(cfg).items()}
