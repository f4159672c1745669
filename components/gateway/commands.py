"""Shell run on the gateway host over SSH, rendered by pure functions from quoted pieces.

Every configured value is ``shlex.quote``-d (``~/`` paths become ``"$HOME"/...``), so no config value can
change what the shell parses.  The patch spec, which may hold the OTLP bearer token, is never part of a
command line: the apply script reads it on stdin and stores it with mode 0600.
"""
from __future__ import annotations

import posixpath
import shlex

from components.config import StackConfig
from components.gateway.host_files import SPEC_FILE, STATE_FILE, TOOL_FILE, shell_path, work_path


def _header(comment: str) -> str:
    return f"# {comment}\nset -eu\n"


def tools_dir_command(cfg: StackConfig) -> str:
    """Create the private work dir the tool, its spec, state and backups live in."""
    work = shell_path(cfg.gateway.work_dir)
    return _header("openclaw-usage: work dir of openclaw-patch") + (
        f"umask 077\nmkdir -p {work}/json5 {work}/backups\nchmod 700 {work}\n"
    )


def _gate_paths(cfg: StackConfig) -> tuple[str, str, str]:
    host_dir = cfg.gate.host_dir
    if host_dir is None:  # the config model requires it when the gate is enabled
        raise ValueError("gate.hostDir: required")
    return host_dir, host_dir + ".upload", host_dir + ".old"


def gate_upload_dir(cfg: StackConfig) -> str:
    """Where the plugin directory is uploaded before it replaces ``gate.hostDir`` in one rename."""
    return _gate_paths(cfg)[1]


def gate_stage_command(cfg: StackConfig, gate_sha256: str) -> str:
    """Fresh, empty upload dir (its parent, under the gateway's mount, created if needed)."""
    host_dir, upload, _ = _gate_paths(cfg)
    return _header(f"openclaw-usage: stage the budget-gate plugin (sha256 {gate_sha256})") + (
        f"rm -rf {shlex.quote(upload)}\nmkdir -p {shlex.quote(posixpath.dirname(host_dir))} {shlex.quote(upload)}\n"
    )


def gate_install_command(cfg: StackConfig, gate_sha256: str, source_name: str) -> str:
    """Make the uploaded plugin readable by the container's user and swap it into ``gate.hostDir``.

    SFTP does not keep file modes, hence the chmod.  The swap is two renames in the same directory, so the
    gateway never sees a half-copied plugin.
    """
    host_dir, upload, old = _gate_paths(cfg)
    new = shlex.quote(posixpath.join(upload, source_name))
    return _header(f"openclaw-usage: install the budget-gate plugin (sha256 {gate_sha256})") + (
        f"test -f {new}/openclaw.plugin.json\n"
        f"chmod -R u=rwX,go=rX {new}\n"
        f"rm -rf {shlex.quote(old)}\n"
        f"if [ -e {shlex.quote(host_dir)} ]; then mv {shlex.quote(host_dir)} {shlex.quote(old)}; fi\n"
        f"mv {new} {shlex.quote(host_dir)}\n"
        f"rm -rf {shlex.quote(old)} {shlex.quote(upload)}\n"
    )


def gate_remove_command(cfg: StackConfig) -> str:
    host_dir, upload, old = _gate_paths(cfg)
    return _header("openclaw-usage: remove the budget-gate plugin") + (
        f"rm -rf {shlex.quote(host_dir)} {shlex.quote(upload)} {shlex.quote(old)}\n"
    )


def _tool(cfg: StackConfig, subcommand: str) -> str:
    gateway = cfg.gateway
    return (
        f"{shlex.quote(gateway.python)} {shell_path(work_path(cfg, TOOL_FILE))} {subcommand}"
        f" --config {shlex.quote(gateway.config_path)}"
        f" --openclaw {shlex.quote(gateway.cli)}"
        f" --state {shell_path(work_path(cfg, STATE_FILE))}"
    )


def apply_command(cfg: StackConfig, tools_sha256: str) -> str:
    """Store the spec from stdin (atomically, 0600), then ``openclaw_patch.py apply``.

    The tools' hash is in the text, so new tool code is an update that runs apply again; a new spec is a
    new stdin, which does the same.
    """
    spec = shell_path(work_path(cfg, SPEC_FILE))
    return _header(f"openclaw-usage: patch openclaw.json (openclaw-patch sha256 {tools_sha256})") + (
        "umask 077\n"
        f"cat > {spec}.tmp\n"
        f"mv {spec}.tmp {spec}\n"
        f"exec {_tool(cfg, 'apply')} --spec {spec}\n"
    )


def revert_command(cfg: StackConfig) -> str:
    """``openclaw_patch.py revert``: restore the recorded previous values (the spec, if still there, only
    names how to restart the gateway)."""
    spec = shell_path(work_path(cfg, SPEC_FILE))
    return _header("openclaw-usage: revert openclaw.json") + (
        f"if [ -f {spec} ]; then set -- --spec {spec}; else set --; fi\n"
        f'exec {_tool(cfg, "revert")} "$@"\n'
    )
