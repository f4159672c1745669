"""The pure decision: (previous state, what Prometheus said, settings, now) -> (next state, message).

No I/O here, so every transition is unit-tested directly. Two ideas keep alerts exact:

* ``State.announced`` records what the Matrix room was last told ("ok", "warn", "blocked",
  "overridden"). A message is produced only when the new situation differs from it, so each transition
  yields exactly one message however often the check runs (state-based dedup, not a TTL cache:
  budget-anchors.md §3.11), and a recovery notice is as certain as the block notice (§3.14).
* Backend trouble is a separate dimension (``announced_backend_failing``): reported once when it starts
  and once when it ends; level messages wait until spend can be measured again.
"""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, Tuple

from enforcer import messages
from enforcer.prometheus import BackendError, Spend
from enforcer.settings import Cap, Settings
from enforcer.state import State
from enforcer.windows import Window

LEVELS = ("ok", "warn", "blocked")


@dataclass(frozen=True)
class CapStatus:
    cap: Cap
    spent: float

    @property
    def ratio(self) -> float:
        return self.spent / self.cap.usd if self.cap.usd > 0 else 0.0

    def level(self, warn_ratio: float) -> str:
        if self.spent >= self.cap.usd:
            return "blocked"
        if self.spent >= warn_ratio * self.cap.usd:
            return "warn"
        return "ok"


@dataclass(frozen=True)
class Outcome:
    state: State
    message: Optional[Dict[str, Any]]  # outbox entry: kind, txn_id, body, html, created_at
    level: str
    enforced: bool
    worst: Optional[CapStatus]
    caps: Tuple[CapStatus, ...]
    events: Tuple[str, ...]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_iso(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    return datetime.fromisoformat(text)


def evaluate_caps(spend: Spend, caps: Tuple[Cap, ...]) -> Tuple[CapStatus, ...]:
    out = []
    for cap in caps:
        spent = sum(r.usd for r in spend.rows if cap.matches(r.provider, r.model))
        out.append(CapStatus(cap, round(spent, 6)))
    return tuple(out)


def worst_cap(statuses: Tuple[CapStatus, ...], warn_ratio: float) -> CapStatus:
    """The cap that decides: highest level, then highest ratio; the global cap wins ties."""
    rank = {lvl: i for i, lvl in enumerate(LEVELS)}
    return max(statuses, key=lambda s: (rank[s.level(warn_ratio)], s.ratio, s.cap.provider is None))


def txn_id(kind: str, created_at: str, window_id: Optional[str]) -> str:
    """Matrix transaction id derived from the event itself: the same event always maps to the same id,
    so re-sending it after a timeout or crash is idempotent on the homeserver."""
    digest = hashlib.sha256(f"{kind}|{created_at}|{window_id}".encode()).hexdigest()[:20]
    return f"ocbudget.{kind}.{digest}"


def block_reason(worst: CapStatus, window: Window) -> str:
    scope = "daily budget" if worst.cap.provider is None else f"budget for {worst.cap.scope}"
    return (f"{scope} exceeded: ${worst.spent:.2f} spent of ${worst.cap.usd:.2f} "
            f"{window.describe()}")


def _flag(state: State, settings: Settings, window: Window, now: datetime, reason: str,
          spent: Optional[float], cap: Optional[float], resets: bool) -> Dict[str, Any]:
    return {
        "version": 1,
        "state": "blocked",
        "reason": reason,
        "spent_usd": None if spent is None else round(spent, 4),
        "cap_usd": cap if cap is not None else settings.max_daily_usd,
        "window": settings.window,
        "since": state.block_since or iso(now),
        "resets_at": window.local(window.resets_at).isoformat(timespec="seconds") if resets else None,
        "timezone": settings.tz_name,
        "lift_hint": settings.lift_hint,
        "written_at": iso(now),
    }


def decide(prev: State, spend: Optional[Spend], error: Optional[BackendError], settings: Settings,
           window: Window, now: datetime) -> Outcome:
    """One check's decision. Exactly one of ``spend`` / ``error`` is set."""
    if (spend is None) == (error is None):
        raise ValueError("decide() needs exactly one of spend and error")
    st = copy.deepcopy(prev)
    events: List[str] = []
    now_iso = iso(now)
    st.last_check = now_iso
    st.window_id = window.window_id

    override_until = parse_iso(st.override_until)
    override_active = override_until is not None and now < override_until
    if override_until is not None and not override_active:
        events.append("override_expired")
        st.override_until = None
        st.override_reason = None

    statuses: Tuple[CapStatus, ...] = ()
    worst: Optional[CapStatus] = None
    if spend is not None:
        statuses = evaluate_caps(spend, settings.caps)
        worst = worst_cap(statuses, settings.warn_ratio)
        level = worst.level(settings.warn_ratio)
        if st.backend_failing:
            events.append("backend_recovered")
        st.backend_failing = False
        st.backend_error = None
        st.last_success = now_iso
        st.level = level
        st.spent_usd = spend.total
        st.cap_usd = worst.cap.usd
        wants_block = level == "blocked"
        cause = "budget" if wants_block else None
        reason = block_reason(worst, window) if wants_block else None
    else:
        assert error is not None
        if not st.backend_failing:
            events.append("backend_failed")
            st.backend_since = now_iso
        st.backend_failing = True
        st.backend_error = error.message
        st.bump(f"check_errors_total:{error.kind}")
        level = st.level  # last known; spend is unknown now
        policy = settings.on_backend_error
        if policy == "closed":
            wants_block = True
            cause = "backend"
            reason = (f"Prometheus unreachable and policy is closed (BUDGET_ON_BACKEND_ERROR=closed): "
                      f"{error.message}")
        elif policy == "open":
            wants_block, cause, reason = False, None, None
        else:  # hold: keep the last decision exactly as it was
            wants_block, cause, reason = prev.blocked, prev.cause, prev.reason

    enforced = wants_block and not override_active
    if wants_block:
        if not (prev.blocked and prev.block_since):  # "blocked since" survives a change of cause
            st.block_since = now_iso
    else:
        st.block_since = None
    st.blocked = wants_block
    st.enforced = enforced
    st.cause = cause
    st.reason = reason

    # Desired flag content (None = no flag on disk).
    if not enforced:
        st.flag = None
    elif cause == "backend":
        st.flag = _flag(st, settings, window, now, str(reason), None, settings.max_daily_usd, resets=False)
    elif worst is not None:
        st.flag = _flag(st, settings, window, now, str(reason), worst.spent, worst.cap.usd, resets=True)
    elif prev.flag is not None:
        st.flag = prev.flag  # hold: keep the flag exactly as it was
    else:  # hold after an override expired: rebuild from the last measurement
        st.flag = _flag(st, settings, window, now, str(reason or "budget exceeded (last measurement)"),
                        prev.spent_usd, prev.cap_usd, resets=True)

    message = _message(prev, st, spend, error, settings, window, now, worst, statuses, events,
                       override_active, wants_block)
    return Outcome(st, message, level, enforced, worst, statuses, tuple(events))


def _situation(level: str, wants_block: bool, override_active: bool) -> str:
    if wants_block and override_active:
        return "overridden"
    return "blocked" if wants_block else level


def _warned_this_window(st: State, window: Window, now: datetime) -> bool:
    if window.kind == "calendar-day":
        return st.warned_window == window.window_id
    warned_at = parse_iso(st.warned_at)
    return warned_at is not None and now - warned_at < timedelta(hours=24)


def _message(prev: State, st: State, spend: Optional[Spend], error: Optional[BackendError],
             settings: Settings, window: Window, now: datetime, worst: Optional[CapStatus],
             statuses: Tuple[CapStatus, ...], events: List[str], override_active: bool,
             wants_block: bool) -> Optional[Dict[str, Any]]:
    ctx = messages.Context(settings=settings, window=window, now=now, spend=spend, worst=worst,
                           state=st, error=error, override_active=override_active)
    kind: Optional[str] = None

    if error is not None:
        # Spend is unknown: only the backend dimension can produce a message.
        if not st.announced_backend_failing:
            kind = "backend_down"
            st.announced_backend_failing = True
        elif "override_expired" in events and st.enforced:
            kind = "override_expired_blocked"
            st.announced = "blocked"
    else:
        situation = _situation(st.level, wants_block, override_active)
        was = st.announced
        if st.announced_backend_failing:
            kind = "backend_up"
            st.announced_backend_failing = False
            st.announced = situation
        elif situation != was:
            if situation == "blocked":
                kind = "override_expired_blocked" if was == "overridden" else "blocked"
            elif situation == "overridden":
                kind = "cap_during_override"
            elif was in ("blocked", "overridden"):
                kind = "override_expired_ok" if (was == "overridden" and "override_expired" in events) else "recovered"
            elif situation == "warn":  # ok -> warn
                kind = None if _warned_this_window(st, window, now) else "warn"
            elif situation == "ok" and was == "warn":
                kind = "below_warn"
            if kind is not None or situation != "warn":
                st.announced = situation
            if kind == "warn":
                st.warned_window = window.window_id
                st.warned_at = iso(now)

    if kind is None:
        return None
    body, html = messages.render(kind, ctx)
    created = iso(now)
    return {"kind": kind, "txn_id": txn_id(kind, created, window.window_id), "body": body, "html": html,
            "created_at": created, "attempts": 0}
