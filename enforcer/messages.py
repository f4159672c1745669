"""Matrix message text (pure: context in, text out).

Every message answers what budget users keep asking (budget-anchors.md §3.9, §3.10, §3.15): how much
was spent of which cap (and percent), who spent it (top three provider/model), what happens now, and
when the window resets — in the operator's time zone, the same instant the query uses.
"""
from __future__ import annotations

import html as htmllib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, List, Optional, Tuple

from enforcer.windows import Window, format_duration, format_local


@dataclass(frozen=True)
class Context:
    settings: Any  # enforcer.settings.Settings
    window: Window
    now: datetime
    spend: Any = None  # enforcer.prometheus.Spend or None
    worst: Any = None  # enforcer.decision.CapStatus or None
    state: Any = None  # enforcer.state.State (after the decision)
    error: Any = None  # enforcer.prometheus.BackendError or None
    override_active: bool = False


def money(usd: Optional[float]) -> str:
    return "unknown" if usd is None else f"${usd:,.2f}"


def percent(spent: float, cap: float) -> str:
    return f"{(spent / cap * 100 if cap else 0):.0f}%"


def spend_line(ctx: Context) -> str:
    if ctx.spend is None or ctx.worst is None:
        st = ctx.state
        if st is not None and st.spent_usd is not None and st.last_success:
            last = datetime.fromisoformat(st.last_success)
            cap = st.cap_usd or ctx.settings.max_daily_usd
            return (f"Spend: unknown now; last measured {money(st.spent_usd)} of {money(cap)} "
                    f"({percent(st.spent_usd, cap)}) at {format_local(last, ctx.settings.tz_name)}.")
        return f"Spend: unknown (never measured); cap {money(ctx.settings.max_daily_usd)}."
    worst = ctx.worst
    text = (f"Spent {money(worst.spent)} of {money(worst.cap.usd)} ({percent(worst.spent, worst.cap.usd)})"
            f"{'' if worst.cap.provider is None else ' for ' + worst.cap.scope} {ctx.window.describe()}")
    if worst.cap.provider is not None:
        cap = ctx.settings.max_daily_usd
        text += f"; total {money(ctx.spend.total)} of {money(cap)} ({percent(ctx.spend.total, cap)})"
    return text + "."


def top_line(ctx: Context) -> str:
    if ctx.spend is None:
        return "Top spenders: unknown while spend cannot be measured."
    top = ctx.spend.top(3)
    if not top:
        return "Top spenders: none (no spend recorded in the window)."
    return "Top spenders: " + ", ".join(f"{r.label} {money(r.usd)}" for r in top) + "."


def reset_line(ctx: Context) -> str:
    w = ctx.window
    when = format_local(w.resets_at, w.tz_name)
    left = format_duration((w.resets_at - ctx.now).total_seconds())
    if w.kind == "calendar-day":
        return f"Window resets at {when} (in {left}), local midnight in {w.tz_name}."
    return (f"Rolling 24 h window: each dollar stops counting 24 h after it was spent; with no new spend "
            f"everything counted now has left by {when} (in {left}) at the latest.")


def lift_line(ctx: Context) -> str:
    return f"An operator can lift the block for a while with: {ctx.settings.lift_hint}"


def _override_until(ctx: Context) -> str:
    st = ctx.state
    if st is None or not st.override_until:
        return "unknown"
    return format_local(datetime.fromisoformat(st.override_until), ctx.settings.tz_name)


def _policy_effect(ctx: Context) -> str:
    policy = ctx.settings.on_backend_error
    if policy == "closed":
        return ("Policy closed (BUDGET_ON_BACKEND_ERROR=closed): new agent runs are BLOCKED until spend can "
                "be measured again.")
    if policy == "open":
        return ("Policy open (BUDGET_ON_BACKEND_ERROR=open): agent runs are NOT blocked and spend is "
                "UNCHECKED until Prometheus answers again.")
    enforced = ctx.state is not None and ctx.state.enforced
    return ("Policy hold (BUDGET_ON_BACKEND_ERROR=hold): keeping the last decision — "
            + ("new agent runs stay BLOCKED." if enforced else "agent runs stay allowed; spend is unchecked."))


def render(kind: str, ctx: Context) -> Tuple[str, str]:
    """(plain body, HTML formatted_body) for a message kind."""
    headline, lines = _compose(kind, ctx)
    body = "\n".join([headline] + lines)
    html = f"<b>{htmllib.escape(headline)}</b><br>" + "<br>".join(htmllib.escape(line) for line in lines)
    return body, html


def _compose(kind: str, ctx: Context) -> Tuple[str, List[str]]:
    common = [spend_line(ctx), top_line(ctx), reset_line(ctx)]
    if kind == "warn":
        return ("⚠️ OpenClaw budget warning: "
                f"{percent(ctx.worst.spent, ctx.worst.cap.usd)} of the cap used",
                common + [f"New agent runs will be blocked at 100%."])
    if kind == "blocked":
        return ("🛑 OpenClaw budget exceeded: new agent runs are BLOCKED",
                common + ["Runs already in progress finish; new ones are refused until spend is back under "
                          "the cap.", lift_line(ctx)])
    if kind == "recovered":
        return ("✅ OpenClaw budget: agent runs are allowed again", common)
    if kind == "below_warn":
        return ("✅ OpenClaw budget back below the warning level", common)
    if kind == "cap_during_override":
        return ("⚠️ OpenClaw budget cap reached, but an operator override is active",
                common + [f"Not blocking until the override ends at {_override_until(ctx)}; after that, "
                          "runs are blocked if spend is still over the cap."])
    if kind == "override_expired_blocked":
        return ("🛑 OpenClaw budget override ended: new agent runs are BLOCKED again",
                common + [lift_line(ctx)])
    if kind == "override_expired_ok":
        return ("✅ OpenClaw budget override ended; spend is under the cap, nothing is blocked", common)
    if kind == "override_set":
        return (f"🔓 OpenClaw budget block lifted by an operator until {_override_until(ctx)}",
                common + [f"Reason: {ctx.state.override_reason or 'not given'}.",
                          "The enforcer keeps measuring; when the override ends, runs are blocked again if "
                          "spend is still over the cap."])
    if kind == "override_cancelled":
        return ("🔒 OpenClaw budget override cancelled by an operator", common)
    if kind == "backend_down":
        error = ctx.error.message if ctx.error is not None else "unknown error"
        return ("❗ OpenClaw budget enforcer cannot measure spend",
                [f"Error: {error}.", _policy_effect(ctx), spend_line(ctx), reset_line(ctx),
                 "This is reported once; you will get one message when it is fixed."])
    if kind == "backend_up":
        st = ctx.state
        since = datetime.fromisoformat(st.backend_since) if st is not None and st.backend_since else None
        outage = f" after {format_duration((ctx.now - since).total_seconds())}" if since else ""
        if st is not None and st.enforced:
            status = "New agent runs are BLOCKED: the cap is exceeded."
        elif ctx.override_active:
            status = f"An operator override is active until {_override_until(ctx)}."
        else:
            status = "Agent runs are allowed" + (" (above the warning level)." if st and st.level == "warn" else ".")
        return (f"✅ OpenClaw budget enforcer can measure spend again{outage}", [status] + common)
    if kind == "flag_error":
        return ("❗ OpenClaw budget enforcer cannot write the flag file: the gate is NOT closed",
                [f"Error: {ctx.state.flag_error if ctx.state else 'unknown'}.", spend_line(ctx),
                 f"Fix the permissions of {ctx.settings.flag_file} (see `python -m enforcer doctor`)."])
    raise ValueError(f"unknown message kind {kind!r}")
