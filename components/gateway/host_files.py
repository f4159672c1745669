"""What the gateway component puts on the gateway host, and where.

Two things are shipped: the patch tool (``openclaw_patch.py`` plus the pure-Python ``json5`` package it
imports, with json5's licence) into ``gateway.workDir``, and the budget-gate plugin directory into
``gate.hostDir``.  Their content hashes go into the commands that use them, so a change of either is an
*update* that runs the command again.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path

import json5

from components.config import StackConfig

GATEWAY_DIR = Path(__file__).resolve().parent
PATCH_TOOL = GATEWAY_DIR / "openclaw_patch.py"
GATE_SOURCE = GATEWAY_DIR / "budget_gate"
JSON5_DIR = Path(json5.__file__).resolve().parent
#: The json5 modules ``import json5`` needs (tool.py/host.py are its own CLI, not needed).
JSON5_MODULES = ("__init__.py", "lib.py", "parser.py", "version.py")

SPEC_FILE = "openclaw-patch.json"
STATE_FILE = "openclaw-patch.state.json"
TOOL_FILE = "openclaw_patch.py"


@dataclass(frozen=True)
class ShippedFile:
    source: Path
    #: Path relative to ``gateway.workDir``.
    target: str


def _json5_license() -> Path:
    dist = importlib.metadata.distribution("json5")
    for file in dist.files or ():
        if file.name in ("LICENSE", "LICENSE.txt", "LICENSE.md"):
            return Path(str(dist.locate_file(file))).resolve()
    raise FileNotFoundError("json5's LICENSE is not installed; it must ship with the json5 modules")


def tool_files() -> list[ShippedFile]:
    """The patch tool and its json5 package, as they are laid out in the work dir."""
    files = [ShippedFile(PATCH_TOOL, TOOL_FILE)]
    files += [ShippedFile(JSON5_DIR / name, f"json5/{name}") for name in JSON5_MODULES]
    files.append(ShippedFile(_json5_license(), "json5/LICENSE"))
    return files


def _digest(entries: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, data in sorted(entries):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def tools_sha256() -> str:
    """One hash over every shipped tool file (names and contents)."""
    return _digest([(f.target, f.source.read_bytes()) for f in tool_files()])


def gate_files(source: Path = GATE_SOURCE) -> list[Path]:
    """The plugin's files (no dotfiles, caches or node_modules)."""
    if not (source / "openclaw.plugin.json").is_file():
        raise FileNotFoundError(f"{source} is not the budget-gate plugin (no openclaw.plugin.json)")
    skip = {"__pycache__", "node_modules"}
    return [
        path
        for path in sorted(source.rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") or part in skip for part in path.relative_to(source).parts)
    ]


def gate_sha256(source: Path = GATE_SOURCE) -> str:
    return _digest([(p.relative_to(source).as_posix(), p.read_bytes()) for p in gate_files(source)])


# ----------------------------------------------------------------------------------------------- paths


def shell_path(path: str) -> str:
    """``path`` for a POSIX shell: ``~/x`` becomes ``"$HOME"/x`` (quoting would stop ``~`` expanding)."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def sftp_path(path: str) -> str:
    """``path`` for SFTP, which does not expand ``~``: relative paths start in the SSH user's home."""
    if path.startswith("~/"):
        return path[2:]
    return path


def work_path(cfg: StackConfig, name: str) -> str:
    """A file in the work dir, in the config's own notation (``~/...`` or absolute)."""
    return posixpath.join(cfg.gateway.work_dir, name)
