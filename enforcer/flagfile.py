"""The flag file the gateway's budget gate reads (shared contract in the project conventions).

Present = gate closed, absent = gate open, present but unreadable = gate closed. The enforcer only ever
removes a flag it wrote itself (``written_by`` marker): a flag someone put there by hand stays, and
``doctor``/the log say so.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from enforcer import fsutil

WRITTEN_BY = "openclaw-budget-enforcer"
FLAG_VERSION = 1


@dataclass(frozen=True)
class FlagOnDisk:
    status: str  # "absent" | "ours" | "foreign" | "corrupt"
    content: Optional[Dict[str, Any]] = None
    error: Optional[str] = None


def render(content: Dict[str, Any]) -> bytes:
    """Serialise a flag; key order follows the contract so the file is easy to read by eye."""
    ordered = {"version": FLAG_VERSION, "state": "blocked"}
    for key in ("reason", "spent_usd", "cap_usd", "window", "since", "resets_at", "timezone", "lift_hint",
                "written_at"):
        ordered[key] = content.get(key)
    for key, value in content.items():
        if key not in ordered:
            ordered[key] = value
    ordered["written_by"] = WRITTEN_BY
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write(path: Path, content: Dict[str, Any]) -> None:
    fsutil.atomic_write(Path(path), render(content), mode=0o644)


def read(path: Path) -> FlagOnDisk:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return FlagOnDisk("absent")
    except OSError as exc:
        return FlagOnDisk("corrupt", error=f"cannot read: {exc.strerror}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return FlagOnDisk("corrupt", error=f"not valid JSON: {exc}")
    if not isinstance(data, dict):
        return FlagOnDisk("corrupt", error="not a JSON object")
    if data.get("written_by") == WRITTEN_BY and data.get("version") == FLAG_VERSION:
        return FlagOnDisk("ours", data)
    return FlagOnDisk("foreign", data)


def remove_if_ours(path: Path) -> FlagOnDisk:
    """Remove the flag if the enforcer wrote it; return what was found (so callers can log a foreign one)."""
    found = read(path)
    if found.status == "ours":
        fsutil.remove(Path(path))
    return found


def same_decision(a: Optional[Dict[str, Any]], b: Optional[Dict[str, Any]]) -> bool:
    """True when two flags differ at most in ``written_at`` (no rewrite needed)."""
    if a is None or b is None:
        return a is b
    strip = lambda d: {k: v for k, v in d.items() if k not in ("written_at", "written_by")}  # noqa: E731
    return strip(a) == strip(b)
