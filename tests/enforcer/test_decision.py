"""The pure state machine: every transition gives exactly one message, warnings once per window, backend
trouble once per outage, overrides announced at both ends."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from enforcer.decision import decide
from enforcer.prometheus import BackendError, Spend, SpendRow
from enforcer.settings import load
from enforcer.state import State
from enforcer.windows import compute

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def settings(**env):
    base = {"PROMETHEUS_URL": "http://127.0.0.1:9", "BUDGET_STATE_DIR": "/tmp/unused", "MAX_DAILY_USD": "5"}
    base.update(env)
    return load(base)


def spend(*rows):
    rows = tuple(SpendRow(p, m, usd) for p, m, usd in rows)
    return Spend(sum(r.usd for r in rows), rows, "q", T0)


class Run:
    """Feeds a sequence of observations through decide() like successive checks."""

    def __init__(self, **env):
        self.settings = settings(**env)
        self.state = State()
        self.sent = []

    def at(self, now, usd=None, error=None, rows=None):
        window = compute(self.settings.window, now, self.settings.tz_name)
        obs = spend(*(rows or [("anthropic", "claude", usd)])) if error is None else None
        out = decide(self.state, obs, BackendError("unreachable", error) if error else None, self.settings,
                     window, now)
        self.state = out.state
        if out.message:
            self.sent.append(out.message["kind"])
        return out


def test_ok_warn_blocked_and_back_one_message_each():
    r = Run()
    for i, usd in enumerate([1, 4.1, 4.2, 5.0, 5.3, 4.5, 4.4, 1.0]):
        r.at(T0 + timedelta(minutes=i), usd)
    assert r.sent == ["warn", "blocked", "recovered", "below_warn"]


def test_blocked_exactly_at_cap_and_flag_content():
    r = Run(BUDGET_TZ="Europe/Rome")
    out = r.at(T0, 5.0)
    assert out.enforced and out.state.flag["spent_usd"] == 5.0
    flag = out.state.flag
    assert set(flag) >= {"version", "state", "reason", "spent_usd", "cap_usd", "window", "since", "resets_at",
                         "timezone", "lift_hint", "written_at"}
    assert flag["resets_at"].endswith("+01:00") and flag["since"] == "2026-12-03T12:00:00+00:00"
    later = r.at(T0 + timedelta(minutes=5), 6.0)
    assert later.state.flag["since"] == flag["since"]  # the block's start does not move


def test_warn_once_per_calendar_day_and_again_next_day():
    r = Run(BUDGET_WINDOW="calendar-day", BUDGET_TZ="UTC")
    r.at(T0, 4.5)
    r.at(T0 + timedelta(hours=1), 3.0)  # below warn again (e.g. a price correction)
    r.at(T0 + timedelta(hours=2), 4.5)  # same day: no second warning
    r.at(T0 + timedelta(hours=3), 3.0)
    r.at(T0 + timedelta(days=1), 4.5)  # next day: warn again
    assert r.sent == ["warn", "below_warn", "warn"]


def test_rolling_warn_not_repeated_within_24h():
    r = Run()
    r.at(T0, 4.5)
    r.at(T0 + timedelta(hours=1), 3.9)
    r.at(T0 + timedelta(hours=2), 4.1)
    r.at(T0 + timedelta(hours=25), 3.0)
    r.at(T0 + timedelta(hours=26), 4.1)
    assert r.sent == ["warn", "below_warn", "warn"]


@pytest.mark.parametrize("policy,flag", [("closed", True), ("open", False), ("hold", True)])
def test_backend_failure_reported_once_per_outage(policy, flag):
    r = Run(BUDGET_ON_BACKEND_ERROR=policy)
    r.at(T0, 5.5)
    for i in range(1, 4):
        out = r.at(T0 + timedelta(minutes=i), error="Connection refused")
        assert out.enforced is flag
    r.at(T0 + timedelta(minutes=10), 5.6)
    r.at(T0 + timedelta(minutes=11), 5.7)
    assert r.sent == ["blocked", "backend_down", "backend_up"]


def test_closed_policy_blocks_without_history_and_hold_does_not():
    closed = Run(BUDGET_ON_BACKEND_ERROR="closed").at(T0, error="timed out")
    assert closed.enforced and closed.state.flag["spent_usd"] is None
    assert "policy is closed" in closed.state.flag["reason"] and closed.state.flag["resets_at"] is None
    assert not Run(BUDGET_ON_BACKEND_ERROR="hold").at(T0, error="timed out").enforced


def test_model_cap_blocks_and_names_the_scope():
    r = Run(BUDGET_MODEL_CAPS='{"anthropic/claude-opus": 1.0, "openrouter": 2.0}')
    out = r.at(T0, rows=[("anthropic", "claude-opus", 1.2), ("openai", "gpt-5", 0.5)])
    assert out.enforced and out.worst.cap.scope == "anthropic/claude-opus"
    assert "budget for anthropic/claude-opus exceeded" in out.state.reason
    assert out.state.flag["cap_usd"] == 1.0 and out.state.flag["spent_usd"] == 1.2
    out = r.at(T0 + timedelta(minutes=1), rows=[("openrouter", "google/gemini-2.5-flash", 1.7)])
    assert not out.enforced and out.level == "warn" and out.worst.cap.scope == "openrouter"


def test_override_lifts_and_expiry_reblocks():
    r = Run()
    r.at(T0, 5.5)
    r.state.override_until = (T0 + timedelta(hours=2)).isoformat()
    r.state.announced = "overridden"  # what `allow` records after announcing it
    out = r.at(T0 + timedelta(hours=1), 6.0)
    assert not out.enforced and out.state.flag is None and out.message is None
    out = r.at(T0 + timedelta(hours=2, minutes=1), 6.0)
    assert out.enforced and out.message["kind"] == "override_expired_blocked"
    assert out.state.override_until is None


def test_cap_crossed_during_preemptive_override_is_announced_once():
    r = Run()
    r.at(T0, 1.0)
    r.state.override_until = (T0 + timedelta(hours=2)).isoformat()
    r.at(T0 + timedelta(minutes=1), 5.5)
    r.at(T0 + timedelta(minutes=2), 5.6)
    r.at(T0 + timedelta(hours=3), 1.0)
    assert r.sent == ["cap_during_override", "override_expired_ok"]


def test_txn_ids_are_stable_and_distinct():
    r = Run()
    a = r.at(T0, 5.5).message
    b = r.at(T0 + timedelta(hours=30), 1.0).message
    assert a["txn_id"] != b["txn_id"] and a["txn_id"].startswith("ocbudget.blocked.")


def test_message_content_has_spend_cap_percent_top3_and_reset():
    r = Run(BUDGET_WINDOW="calendar-day", BUDGET_TZ="Europe/Rome")
    out = r.at(T0, rows=[("a", "m1", 3.0), ("b", "m2", 1.5), ("c", "m3", 0.6), ("d", "m4", 0.1)])
    body = out.message["body"]
    assert "$5.20 of $5.00 (104%)" in body
    assert "a/m1 $3.00, b/m2 $1.50, c/m3 $0.60." in body and "d/m4" not in body
    assert "resets at Fri 04 Dec 00:00 CET (in 11h)" in body
    assert "<b>" in out.message["html"]


def test_by_model_plan_trusts_covered_sums_and_chains_the_checks():
    from enforcer.runner import by_model_plan, remember_by_model

    cfg = settings()
    now = datetime(2026, 12, 4, 12, 0, tzinfo=timezone.utc)
    window = compute("rolling-24h", now, "UTC")
    st = State()
    assert by_model_plan(cfg, st, window, now) == (False, None)  # never compared

    def measured(**kw):
        return Spend(total=0.0, rows=(), query="q", evaluated_at=now, **kw)

    remember_by_model(cfg, st, measured(fallback="unverified", covered=True), window, now)
    assert st.by_model_covered_from == "2026-12-03T12:00:00+00:00"
    assert st.by_model_checked_at == "2026-12-04T12:00:00+00:00"
    later = now + timedelta(minutes=4)
    assert by_model_plan(cfg, st, compute("rolling-24h", later, "UTC"), later) == (True, None)
    # Due after 5 minutes: the check looks back to 5 minutes before the previous one.
    later = now + timedelta(minutes=6, seconds=40)
    assert by_model_plan(cfg, st, compute("rolling-24h", later, "UTC"), later) == (True, 700)
    # A checked by-model answer moves the seam; an unchecked one does not.
    remember_by_model(cfg, st, measured(source="by-model", verified=False), window, later)
    assert st.by_model_checked_at == "2026-12-04T12:00:00+00:00"
    remember_by_model(cfg, st, measured(source="by-model", verified=True), window, later)
    assert st.by_model_checked_at == "2026-12-04T12:06:40+00:00"
    # The clock set back, or no check for a whole window: compare the whole window again.
    assert by_model_plan(cfg, st, window, now) == (False, None)
    far = later + timedelta(hours=24)
    assert by_model_plan(cfg, st, compute("rolling-24h", far, "UTC"), far) == (False, None)
    # A calendar day starting after the covered rolling window is covered; one starting before it is not.
    assert by_model_plan(cfg, st, compute("calendar-day", later, "UTC"), later) == (True, None)
    st2 = State(by_model_covered_from="2026-12-04T00:00:00+00:00", by_model_checked_at=st.by_model_checked_at,
                by_model_key=st.by_model_key)
    assert by_model_plan(cfg, st2, compute("rolling-24h", later, "UTC"), later) == (False, None)
    # Other selectors (BUDGET_COST_BY_MODEL_SELECTOR changed), or another Prometheus: compared again. The key
    # does not show the URL, which may hold credentials.
    other = settings(BUDGET_COST_BY_MODEL_SELECTOR="openclaw_cost_usd_by_model_total")
    assert by_model_plan(other, st, compute("rolling-24h", later, "UTC"), later) == (False, None)
    elsewhere = settings(PROMETHEUS_URL="http://user:hunter2@10.0.0.9:9090")
    assert by_model_plan(elsewhere, st, compute("rolling-24h", later, "UTC"), later) == (False, None)
    remember_by_model(elsewhere, st, measured(fallback="unverified", covered=True), window, later)
    assert "hunter2" not in json.dumps(st.to_json()) and "10.0.0.9" not in json.dumps(st.to_json())
    assert by_model_plan(cfg, st, compute("rolling-24h", later, "UTC"), later) == (False, None)
    remember_by_model(cfg, st, measured(fallback="unverified", covered=True), window, later)
    # A difference clears the coverage: every check compares the whole window until they agree again.
    remember_by_model(cfg, st, measured(fallback="differs", covered=False), window, later)
    assert st.by_model_covered_from is None
    assert by_model_plan(cfg, st, compute("rolling-24h", later, "UTC"), later) == (False, None)
    # Sums turned off: nothing to plan, nothing remembered.
    off = settings(BUDGET_COST_BY_MODEL_SELECTOR="off")
    assert by_model_plan(off, st2, window, now) == (False, None)
