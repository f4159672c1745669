"""Metrics about the enforcer itself, in Prometheus text format for node_exporter's textfile collector.

Rendered by a pure function and written atomically (the collector must never read half a file). The
counters come from the persisted state so they only ever go up across runs. Suggested alert rules:
``time() - openclaw_budget_last_check_timestamp_seconds > 900`` (dead man's switch: the enforcer stopped)
and ``increase(openclaw_budget_check_errors_total[15m]) > 0``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional

from enforcer import fsutil
from enforcer.state import State

PREFIX = "openclaw_budget_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def render(state: State, window: str, max_daily_usd: float, warn_ratio: float,
           last_check_ts: float, last_success_ts: Optional[float], override_until_ts: Optional[float],
           cap_spend: Optional[Dict[str, float]] = None, cap_limits: Optional[Dict[str, float]] = None) -> str:
    lines: List[str] = []

    def metric(name: str, kind: str, help_text: str, samples: List[tuple]) -> None:
        full = PREFIX + name
        lines.append(f"# HELP {full} {help_text}")
        lines.append(f"# TYPE {full} {kind}")
        for labels, value in samples:
            label_text = ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items())
            lines.append(f"{full}{{{label_text}}} {_fmt(value)}" if label_text else f"{full} {_fmt(value)}")

    spent = state.spent_usd if state.spent_usd is not None else float("nan")
    metric("spend_usd", "gauge", "Spend in the current budget window, USD (NaN when never measured).",
           [({"window": window}, spent)])
    metric("cap_usd", "gauge", "Configured daily cap, USD.", [({}, max_daily_usd)])
    metric("warn_ratio", "gauge", "Fraction of the cap at which a warning is sent.", [({}, warn_ratio)])
    if cap_limits:
        metric("scope_cap_usd", "gauge", "Per-provider/per-model caps, USD.",
               [({"scope": k}, v) for k, v in sorted(cap_limits.items())])
        metric("scope_spend_usd", "gauge", "Spend per capped provider/model scope, USD.",
               [({"scope": k}, (cap_spend or {}).get(k, 0.0)) for k in sorted(cap_limits)])
    metric("blocked", "gauge", "1 while the flag file blocks new agent runs.", [({}, 1 if state.enforced else 0)])
    metric("state", "gauge", "Current budget level (1 for the active one).",
           [({"state": s}, 1 if state.level == s else 0) for s in ("ok", "warn", "blocked")])
    metric("backend_up", "gauge", "0 while Prometheus cannot be queried.", [({}, 0 if state.backend_failing else 1)])
    metric("override_until_timestamp_seconds", "gauge", "End of the operator override, 0 if none.",
           [({}, override_until_ts or 0)])
    metric("last_check_timestamp_seconds", "gauge", "Unix time of the last check.", [({}, round(last_check_ts, 3))])
    metric("last_success_timestamp_seconds", "gauge", "Unix time of the last check that measured spend.",
           [({}, round(last_success_ts, 3) if last_success_ts else 0)])
    errors = {k.split(":", 1)[1]: v for k, v in state.counters.items() if k.startswith("check_errors_total:")}
    for reason in ("unreachable", "http", "bad_response", "query_error", "flag_write"):
        errors.setdefault(reason, 0)
    metric("check_errors_total", "counter", "Checks that failed, by reason.",
           [({"reason": k}, v) for k, v in sorted(errors.items())])
    metric("checks_total", "counter", "Checks run.", [({}, state.counters.get("checks_total", 0))])
    metric("alerts_sent_total", "counter", "Matrix messages delivered.",
           [({}, state.counters.get("alerts_sent_total", 0))])
    metric("alerts_failed_total", "counter", "Failed Matrix delivery attempts (the message stays queued).",
           [({}, state.counters.get("alerts_failed_total", 0))])
    metric("alerts_dropped_total", "counter", "Queued messages dropped because the outbox was full.",
           [({}, state.counters.get("alerts_dropped_total", 0))])
    metric("alerts_queued", "gauge", "Messages waiting for delivery.", [({}, len(state.outbox))])
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    fsutil.atomic_write(Path(path), text.encode("utf-8"), mode=0o644)
