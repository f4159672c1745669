"""Durable enforcer state in BUDGET_STATE_DIR: the last decision, what the Matrix room has been told,
the outbox of undelivered messages, counters for the textfile metrics, and the run lock.

``state.json`` is replaced atomically, and the outbox lives *inside* it: a decision and the message
announcing it are saved in one rename, so a crash can never keep one and lose the other.
``decisions.jsonl`` is append-only: one JSON line per check, the audit trail for "when and why was I
blocked".
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from enforcer import fsutil

STATE_VERSION = 1
STATE_FILE = "state.json"
JOURNAL_FILE = "decisions.jsonl"
LOCK_FILE = "enforcer.lock"
MAX_OUTBOX = 200  # a Matrix outage of weeks must not grow the state without bound


class LockTimeout(RuntimeError):
    pass


@dataclass
class State:
    # The budget level last measured (or held): "ok" | "warn" | "blocked".
    level: str = "ok"
    # Whether the budget (or the backend policy) calls for a block, whether the flag is actually on disk
    # (not while an operator override runs), why, and since when.
    blocked: bool = False
    enforced: bool = False
    cause: Optional[str] = None  # "budget" | "backend"
    reason: Optional[str] = None
    block_since: Optional[str] = None
    spent_usd: Optional[float] = None
    cap_usd: Optional[float] = None
    window_id: Optional[str] = None
    # The flag content that should be on disk (None = no flag). Applied after every save.
    flag: Optional[Dict[str, Any]] = None
    # What the room was last told: "ok" | "warn" | "blocked" | "overridden".
    announced: str = "ok"
    warned_window: Optional[str] = None
    warned_at: Optional[str] = None
    # Backend (Prometheus) health, reported once per outage.
    backend_failing: bool = False
    backend_since: Optional[str] = None
    backend_error: Optional[str] = None
    announced_backend_failing: bool = False
    # Operator override (`allow --for`).
    override_until: Optional[str] = None
    override_reason: Optional[str] = None
    # Flag file problems (cannot write), reported once.
    flag_error: Optional[str] = None
    announced_flag_error: bool = False
    outbox: List[Dict[str, Any]] = field(default_factory=list)
    counters: Dict[str, float] = field(default_factory=dict)
    last_check: Optional[str] = None
    last_success: Optional[str] = None
    # The collector's by-model sums (runner.by_model_plan): since when they are known to measure the same
    # spend as every cost series, when they were last compared with them, and on which Prometheus and
    # selectors (a hash).
    by_model_covered_from: Optional[str] = None
    by_model_checked_at: Optional[str] = None
    by_model_key: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["version"] = STATE_VERSION
        return data

    @classmethod
    def from_json(cls, data: Dict[str, Any]) -> "State":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def bump(self, counter: str, by: float = 1) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + by


class StateStore:
    def __init__(self, state_dir: Path):
        self.dir = Path(state_dir)

    @property
    def state_path(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def journal_path(self) -> Path:
        return self.dir / JOURNAL_FILE

    def ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def load(self) -> State:
        """Load the state; a missing file is a fresh start. A corrupt file (cannot happen through our
        atomic writes, but disks and people do things) is moved aside and reported, never silently
        replaced."""
        try:
            raw = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return State()
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError("unexpected content")
            return State.from_json(data)
        except (ValueError, TypeError) as exc:
            aside = self.state_path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            os.replace(str(self.state_path), str(aside))
            raise CorruptState(f"{self.state_path} was unreadable ({exc}); moved to {aside}") from None

    def save(self, state: State) -> None:
        if len(state.outbox) > MAX_OUTBOX:
            dropped = len(state.outbox) - MAX_OUTBOX
            state.outbox = state.outbox[dropped:]
            state.bump("alerts_dropped_total", dropped)
        payload = json.dumps(state.to_json(), indent=1, sort_keys=True).encode("utf-8")
        fsutil.atomic_write(self.state_path, payload, mode=0o600)

    def append_journal(self, record: Dict[str, Any]) -> None:
        """One line per record, written with a single O_APPEND write so concurrent readers never see a
        partial line and a crash loses at most the line being written."""
        line = (json.dumps(record, sort_keys=True, default=_json_default) + "\n").encode("utf-8")
        fd = os.open(str(self.journal_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read_journal(self, last: int = 20) -> List[Dict[str, Any]]:
        try:
            lines = self.journal_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines[-last:]:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Iterator[None]:
        """Exclusive run lock (flock on a file in the state dir). Released by the kernel if the process
        dies, so a crashed run never wedges the next one."""
        self.ensure_dir()
        fd = os.open(str(self.dir / LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"another enforcer run has held {self.dir / LOCK_FILE} for over {timeout:g}s "
                            "(BUDGET_LOCK_TIMEOUT); giving up this run") from None
                    time.sleep(0.05)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock


class CorruptState(RuntimeError):
    pass


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
