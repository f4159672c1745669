"""One check, one override, one status: the I/O around the pure decision.

Order of a check (all under the run lock), chosen so a crash at any point is repaired by the next run:

1. load state, query Prometheus (one query), decide (pure);
2. save state atomically — the decision, the desired flag content and the queued message together;
3. make the flag file match the saved state (write atomically / remove);
4. deliver the outbox to Matrix (PUT with the message's own txnId) and save the delivery result;
5. textfile metrics, one JSONL journal line, one log line.

A crash after 2 leaves a state whose flag is not yet on disk (or not yet removed): step 3 of the next
run applies it. A crash after 3 leaves a queued message: step 4 of the next run sends it, with the same
txnId, so it is posted once. The flag is never derived from anything but a saved state.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List, Optional, TextIO, Tuple

from enforcer import flagfile, messages, textfile, windows
from enforcer.decision import Outcome, decide, iso, parse_iso, txn_id
from enforcer.matrix import MatrixClient, deliver_outbox
from enforcer.prometheus import FALLBACK_REASONS, VERIFY_SECONDS, BackendError, PrometheusClient, Spend, fetch_spend
from enforcer.settings import Settings
from enforcer.state import CorruptState, LockTimeout, State, StateStore

EXIT_OK = 0
EXIT_CONFIG = 1
EXIT_BACKEND = 2
EXIT_LOCK = 3
EXIT_FLAG = 4
CRASH_POINTS = ("after-state", "after-flag")
MAX_OVERRIDE = timedelta(days=7)


@dataclass
class CheckResult:
    outcome: Outcome
    spend: Optional[Spend]
    error: Optional[BackendError]
    window: windows.Window
    flag_action: str
    sent: int
    queued: int
    exit_code: int
    prometheus_requests: int


def _crash_point(settings: Settings, point: str) -> None:
    """Test hook (BUDGET_TEST_CRASH_AT): die like a power cut, without cleanup, at a named step."""
    if settings.test_crash_at == point:
        os._exit(86)


def apply_flag(settings: Settings, desired: Optional[Dict[str, Any]]) -> str:
    """Make the flag file match ``desired``. Returns what happened: written, kept, removed, absent,
    foreign-kept (a flag the enforcer did not write is left alone: the gate stays closed). Raises
    OSError when the file cannot be written or removed."""
    on_disk = flagfile.read(settings.flag_file)
    if desired is None:
        if on_disk.status == "ours":
            flagfile.remove_if_ours(settings.flag_file)
            return "removed"
        return "absent" if on_disk.status == "absent" else "foreign-kept"
    if on_disk.status in ("foreign", "corrupt"):
        return "foreign-kept"
    if on_disk.status == "ours" and flagfile.same_decision(on_disk.content, desired):
        return "kept"
    flagfile.write(settings.flag_file, desired)
    return "written"


def _delayed_note(settings: Settings, now: datetime):
    def note(entry: Dict[str, Any]) -> Optional[str]:
        created = parse_iso(entry.get("created_at"))
        if created is None or now - created < timedelta(minutes=2):
            return None
        return (f"(Delayed: decided at {windows.format_local(created, settings.tz_name)}; Matrix was "
                f"unreachable until now.)")
    return note


def deliver(settings: Settings, st: State, now: datetime) -> Tuple[int, Optional[str]]:
    if not settings.matrix_enabled or not st.outbox:
        return 0, None
    client = MatrixClient(str(settings.matrix_homeserver), str(settings.matrix_access_token),
                          settings.http_timeout)
    remaining, sent, failed, error = deliver_outbox(client, str(settings.matrix_room_id), st.outbox, iso(now),
                                                    _delayed_note(settings, now))
    st.outbox = remaining
    st.bump("alerts_sent_total", sent)
    st.bump("alerts_failed_total", failed)
    return sent, error


def write_metrics(settings: Settings, st: State, outcome: Optional[Outcome], now: datetime) -> None:
    if settings.metrics_file is None:
        return
    last_success = parse_iso(st.last_success)
    override = parse_iso(st.override_until)
    cap_limits = {c.scope: c.usd for c in settings.model_caps}
    cap_spend = {}
    if outcome is not None:
        cap_spend = {s.cap.scope: s.spent for s in outcome.caps if s.cap.provider is not None}
    text = textfile.render(st, settings.window, settings.max_daily_usd, settings.warn_ratio, now.timestamp(),
                           last_success.timestamp() if last_success else None,
                           override.timestamp() if override else None, cap_spend, cap_limits)
    textfile.write(settings.metrics_file, text)


def _load(store: StateStore, notes: List[str]) -> State:
    try:
        return store.load()
    except CorruptState as exc:
        notes.append(str(exc))
        return State()


#: A check's look-back for cost the sums missed reaches this far before the previous check, so that
#: consecutive checks overlap rather than leave a gap at the seam, also for samples that reach Prometheus
#: late (the collector's remote-write exporter retries for up to 5 minutes).
CHECK_OVERLAP_SECONDS = 300


def by_model_plan(settings: Settings, st: State, window: windows.Window, now: datetime) -> Tuple[bool, Optional[int]]:
    """Whether this check may measure spend from the collector's by-model sums, and if so how far back it
    checks that the cost series add up to them (None: not due, VERIFY_SECONDS have not passed).

    The sums are trusted once a comparison over a whole window found them measuring the same spend as every
    cost series (coverage), and only while every check since has found the cost series adding up to them:
    the checks' look-backs chain, so a series that lived only between two checks is seen too. A check more
    than a window after the last comparison, a clock set back, another Prometheus or other selectors start
    from a whole-window comparison again. A difference clears the coverage until a whole-window comparison
    agrees again, that is until the spend the sums missed has left the window: the checks in between read
    every cost series.
    """
    if not settings.by_model_selectors:
        return False, None
    covered_from = parse_iso(st.by_model_covered_from)
    checked_at = parse_iso(st.by_model_checked_at)
    if (covered_from is None or checked_at is None or covered_from > window.start
            or st.by_model_key != _comparison_key(settings)):
        return False, None
    elapsed = (now - checked_at).total_seconds()
    if elapsed < 0 or elapsed + CHECK_OVERLAP_SECONDS >= window.seconds:
        return False, None
    if elapsed < VERIFY_SECONDS:
        return True, None
    return True, int(math.ceil(elapsed)) + CHECK_OVERLAP_SECONDS


def _comparison_key(settings: Settings) -> str:
    """What a comparison was about: another Prometheus, or other series, start from a whole-window one."""
    # Hashed: a Prometheus URL may hold credentials, and the state file needs only to tell keys apart.
    key = json.dumps([settings.prometheus_url, list(settings.by_model_selectors), list(settings.spend_selectors)])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def remember_by_model(settings: Settings, st: State, spend: Optional[Spend], window: windows.Window,
                      now: datetime) -> None:
    """Record in ``st`` what this check learnt about the by-model sums (see by_model_plan)."""
    if spend is None or not settings.by_model_selectors:
        return
    if spend.source == "by-model":
        if spend.verified:
            st.by_model_checked_at = iso(now)
        return
    if spend.covered is None:
        return
    st.by_model_covered_from = iso(window.start) if spend.covered else None
    st.by_model_checked_at = iso(now)
    st.by_model_key = _comparison_key(settings)


def _measure(settings: Settings, window: windows.Window, st: State,
             now: datetime) -> Tuple[Optional[Spend], Optional[BackendError], int]:
    client = PrometheusClient(settings.prometheus_url, settings.http_timeout)
    trusted, check_seconds = by_model_plan(settings, st, window, now)
    try:
        spend = fetch_spend(client, settings.spend_selectors, window.seconds, window.end, settings.query_mode,
                            by_model=settings.by_model_selectors, trusted=trusted, check_seconds=check_seconds)
        return spend, None, client.requests_made
    except BackendError as exc:
        return None, exc, client.requests_made


def effective_state(outcome: Outcome) -> str:
    """What the gate sees: "blocked" whenever the flag is set (budget or backend policy), "overridden"
    while an operator override suspends a due block, else the budget level."""
    if outcome.enforced:
        return "blocked"
    if outcome.state.blocked:
        return "overridden"
    return outcome.level


def log_line(settings: Settings, st: State, outcome: Outcome, window: windows.Window, flag_action: str,
             message_kind: Optional[str], queued: int, dry_run: bool, error: Optional[BackendError],
             spend: Optional[Spend] = None) -> str:
    worst = outcome.worst
    if worst is not None:
        spent = f"spent_usd={worst.spent:.2f} cap_usd={worst.cap.usd:.2f} pct={worst.ratio * 100:.0f}"
        if worst.cap.provider is not None:
            spent += f" scope={worst.cap.scope} total_usd={st.spent_usd:.2f}"
    else:
        spent = f"spent_usd=unknown cap_usd={settings.max_daily_usd:.2f}"
    parts = [
        "budget check" + (" (dry run)" if dry_run else "") + ":",
        f"state={effective_state(outcome)}",
        f"blocked={1 if outcome.enforced else 0}",
        spent,
        f"window={window.kind}",
        f"resets_at={window.local(window.resets_at).isoformat(timespec='minutes')}",
        f"flag={flag_action}",
        f"message={message_kind or 'none'}",
        f"queued={queued}",
    ]
    if st.override_until:
        parts.append(f"override_until={st.override_until}")
    if effective_state(outcome) != outcome.level:
        parts.append(f"budget_level={outcome.level}")
    if spend is not None and spend.fallback:
        # Correct but slower: the by-model series were not used (see by_model_plan); whether they agree now.
        parts.append(f"spend_from={spend.source} fallback={spend.fallback} "
                     f"sums_agree={'yes' if spend.covered else 'no'}")
    if error is not None:
        parts.append(f"backend=down policy={settings.on_backend_error} error={error.message!r}")
    return " ".join(parts)


def spend_source(spend: Optional[Spend]) -> Optional[Dict[str, Any]]:
    """Which series the spend came from, and why not the by-model ones if they were tried."""
    if spend is None:
        return None
    return {"series": spend.source, "fallback": spend.fallback, "why": FALLBACK_REASONS.get(spend.fallback or ""),
            "verified": spend.verified,
            "covered": spend.covered,
            "differences": [{"model": label, "by_model_usd": a, "per_series_usd": b}
                            for label, a, b in spend.differences[:10]]}


def _journal_record(command: str, settings: Settings, st: State, outcome: Outcome, window: windows.Window,
                    spend: Optional[Spend], error: Optional[BackendError], flag_action: str,
                    message_kind: Optional[str], dry_run: bool, notes: List[str], now: datetime) -> Dict[str, Any]:
    return {
        "ts": iso(now),
        "command": command,
        "dry_run": dry_run,
        "state": effective_state(outcome),
        "level": outcome.level,
        "blocked": outcome.enforced,
        "cause": st.cause,
        "reason": st.reason,
        "spent_usd": spend.total if spend else None,
        "cap_usd": settings.max_daily_usd,
        "worst_scope": outcome.worst.cap.scope if outcome.worst else None,
        "window": window.kind,
        "window_start": iso(window.start),
        "resets_at": iso(window.resets_at),
        "timezone": settings.tz_name,
        "query": spend.query if spend else None,
        "source": spend_source(spend),
        "top": [{"provider": r.provider, "model": r.model, "usd": r.usd} for r in (spend.rows[:10] if spend else ())],
        "backend_error": error.message if error else None,
        "policy": settings.on_backend_error,
        "flag": flag_action,
        "message": message_kind,
        "override_until": st.override_until,
        "notes": notes,
    }


def run_check(settings: Settings, dry_run: bool = False, out: TextIO = sys.stdout,
              err: TextIO = sys.stderr) -> CheckResult:
    store = StateStore(settings.state_dir)
    notes: List[str] = []
    if settings.test_now is not None:
        notes.append("BUDGET_TEST_NOW is set: the clock is faked (tests only)")
    with store.lock(settings.lock_timeout):
        if settings.test_hold_lock:
            time.sleep(settings.test_hold_lock)
        now = settings.now()
        window = windows.compute(settings.window, now, settings.tz_name)
        prev = _load(store, notes)
        spend, error, n_requests = _measure(settings, window, prev, now)
        outcome = decide(prev, spend, error, settings, window, now)
        st = outcome.state
        remember_by_model(settings, st, spend, window, now)
        st.bump("checks_total")
        message_kind = outcome.message["kind"] if outcome.message else None
        exit_code = EXIT_BACKEND if error is not None else EXIT_OK

        if dry_run:
            action = "dry-run"
            store.append_journal(_journal_record("check", settings, st, outcome, window, spend, error, action,
                                                 message_kind, True, notes, now))
            print(log_line(settings, st, outcome, window, action, message_kind, len(prev.outbox), True, error, spend),
                  file=out, flush=True)
            return CheckResult(outcome, spend, error, window, action, 0, len(prev.outbox), exit_code, n_requests)

        if outcome.message is not None and settings.matrix_enabled:
            st.outbox.append(outcome.message)
        store.save(st)
        _crash_point(settings, "after-state")

        try:
            flag_action = apply_flag(settings, st.flag)
            if st.flag_error:
                st.flag_error = None
                st.announced_flag_error = False
        except OSError as exc:
            flag_action = "error"
            exit_code = EXIT_FLAG
            st.flag_error = f"{settings.flag_file}: {exc.strerror or exc}"
            st.bump("check_errors_total:flag_write")
            print(f"budget check: cannot update flag file {st.flag_error}", file=err, flush=True)
            if not st.announced_flag_error and settings.matrix_enabled:
                ctx = messages.Context(settings=settings, window=window, now=now, spend=spend,
                                       worst=outcome.worst, state=st, error=error)
                body, html = messages.render("flag_error", ctx)
                st.outbox.append({"kind": "flag_error", "txn_id": txn_id("flag_error", iso(now), window.window_id),
                                  "body": body, "html": html, "created_at": iso(now), "attempts": 0})
            st.announced_flag_error = True
        if flag_action == "foreign-kept":
            notes.append(f"{settings.flag_file} exists but was not written by the enforcer; left alone "
                         "(the gate stays closed while it exists)")
        _crash_point(settings, "after-flag")

        sent, matrix_error = deliver(settings, st, now)
        if matrix_error:
            notes.append(f"Matrix delivery failed, {len(st.outbox)} message(s) queued: {matrix_error}")
        store.save(st)
        try:
            write_metrics(settings, st, outcome, now)
        except OSError as exc:  # metrics are secondary: never let them undo a decision
            notes.append(f"cannot write metrics file {settings.metrics_file}: {exc.strerror or exc}")
        store.append_journal(_journal_record("check", settings, st, outcome, window, spend, error, flag_action,
                                             message_kind, False, notes, now))
        print(log_line(settings, st, outcome, window, flag_action, message_kind, len(st.outbox), False, error, spend),
              file=out, flush=True)
        for note in notes:
            print(f"budget check: note: {note}", file=err, flush=True)
        return CheckResult(outcome, spend, error, window, flag_action, sent, len(st.outbox), exit_code, n_requests)


def status(settings: Settings) -> Dict[str, Any]:
    """What a check would decide now and why — reads state, queries Prometheus, changes nothing."""
    store = StateStore(settings.state_dir)
    notes: List[str] = []
    now = settings.now()
    window = windows.compute(settings.window, now, settings.tz_name)
    try:
        prev = store.load() if store.state_path.exists() else State()
    except CorruptState as exc:  # status must not move files aside; report only
        prev = State()
        notes.append(str(exc))
    spend, error, _ = _measure(settings, window, prev, now)
    outcome = decide(prev, spend, error, settings, window, now)
    st = outcome.state
    worst = outcome.worst
    on_disk = flagfile.read(settings.flag_file)
    return {
        "state": effective_state(outcome),
        "level": outcome.level,
        "blocked": outcome.enforced,
        "reason": st.reason,
        "spent_usd": spend.total if spend else None,
        "cap_usd": settings.max_daily_usd,
        "percent": round(spend.total / settings.max_daily_usd * 100, 1) if spend else None,
        "deciding_cap": {"scope": worst.cap.scope, "cap_usd": worst.cap.usd, "spent_usd": worst.spent,
                         "percent": round(worst.ratio * 100, 1)} if worst else None,
        "caps": [{"scope": s.cap.scope, "cap_usd": s.cap.usd, "spent_usd": s.spent,
                  "level": s.level(settings.warn_ratio)} for s in outcome.caps],
        "warn_at_usd": round(settings.warn_ratio * settings.max_daily_usd, 4),
        "top": [{"provider": r.provider, "model": r.model, "usd": r.usd} for r in (spend.top(10) if spend else ())],
        "window": {"kind": window.kind, "start": window.local(window.start).isoformat(timespec="seconds"),
                   "end": window.local(window.end).isoformat(timespec="seconds"),
                   "resets_at": window.local(window.resets_at).isoformat(timespec="seconds"),
                   "timezone": window.tz_name},
        "backend": {"ok": error is None, "error": error.message if error else None,
                    "policy": settings.on_backend_error, "failing_since": st.backend_since if error else None},
        "override_until": st.override_until,
        "flag_file": {"path": str(settings.flag_file), "on_disk": on_disk.status},
        "would_send": outcome.message["kind"] if outcome.message else None,
        "queued_messages": len(prev.outbox),
        "last_check": prev.last_check,
        "query": spend.query if spend else None,
        "source": spend_source(spend),
        "notes": notes,
    }


def parse_duration(text: str) -> timedelta:
    """'2h', '90m', '1h30m', '45s', '1d' -> timedelta (at most MAX_OVERRIDE)."""
    import re

    raw = text.strip().lower()
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", raw)
    if not raw or not match or not any(match.groups()):
        raise ValueError(f"--for {text!r}: use a duration like 2h, 90m, 1h30m or 1d")
    d, h, m, s = (int(g) if g else 0 for g in match.groups())
    value = timedelta(days=d, hours=h, minutes=m, seconds=s)
    if value <= timedelta(0):
        raise ValueError(f"--for {text!r} must be longer than zero")
    if value > MAX_OVERRIDE:
        raise ValueError(f"--for {text!r} is longer than the 7-day maximum; raise MAX_DAILY_USD instead")
    return value


def allow(settings: Settings, duration: Optional[timedelta], reason: Optional[str], cancel: bool = False,
          out: TextIO = sys.stdout) -> int:
    """Operator override: lift (or, with cancel, end) a block for a while; logged and announced."""
    store = StateStore(settings.state_dir)
    with store.lock(settings.lock_timeout):
        notes: List[str] = []
        now = settings.now()
        window = windows.compute(settings.window, now, settings.tz_name)
        st = _load(store, notes)
        spend, error, _ = _measure(settings, window, st, now)  # fresh numbers for the announcement, if available
        from enforcer.decision import evaluate_caps, worst_cap

        worst = None
        if spend is not None:
            worst = worst_cap(evaluate_caps(spend, settings.caps), settings.warn_ratio)
        if cancel:
            if not st.override_until:
                print("no override is active; nothing to cancel", file=out)
                return EXIT_OK
            st.override_until = None
            st.override_reason = None
            kind = "override_cancelled"
            # The next check (run right away below) re-applies a block if one is due.
        else:
            assert duration is not None
            st.override_until = iso(now + duration)
            st.override_reason = reason
            kind = "override_set"
            if st.blocked:
                st.announced = "overridden"
            st.enforced = False
            st.flag = None
        ctx = messages.Context(settings=settings, window=window, now=now, spend=spend, worst=worst, state=st,
                               error=error, override_active=not cancel)
        body, html = messages.render(kind, ctx)
        if settings.matrix_enabled:
            st.outbox.append({"kind": kind, "txn_id": txn_id(kind, iso(now), window.window_id), "body": body,
                              "html": html, "created_at": iso(now), "attempts": 0})
        store.save(st)
        flag_action = "kept"
        if not cancel:
            flag_action = apply_flag(settings, None)
        sent, matrix_error = deliver(settings, st, now)
        store.save(st)
        write_metrics(settings, st, None, now)
        store.append_journal({"ts": iso(now), "command": "allow", "cancel": cancel,
                              "override_until": st.override_until, "reason": reason, "flag": flag_action,
                              "message": kind, "spent_usd": spend.total if spend else None,
                              "backend_error": error.message if error else None, "notes": notes,
                              "user": os.environ.get("SUDO_USER") or os.environ.get("USER")})
        if cancel:
            print("override cancelled; running a check now", file=out, flush=True)
        else:
            print(f"budget override: new agent runs allowed until "
                  f"{windows.format_local(parse_iso(st.override_until), settings.tz_name)} "
                  f"(flag {flag_action}; message {'queued' if st.outbox else 'sent' if sent else 'not configured'})",
                  file=out, flush=True)
        if matrix_error:
            print(f"Matrix delivery failed, message queued: {matrix_error}", file=out, flush=True)
    if cancel:
        return run_check(settings, out=out).exit_code
    return EXIT_OK
