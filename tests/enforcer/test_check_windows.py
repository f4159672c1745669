"""Spend accuracy on real Prometheus 2.42: counter resets neither lose nor invent spend, a series born
inside the window counts in full, and calendar days roll over at local midnight in a non-UTC zone."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from enforcer.prometheus import spend_query
from tests.enforcer.conftest import checked_status
from tests.enforcer.helpers.prom import cost_labels, counter_samples

# Each case runs twice (start_cost_prometheus): on the per-agent cost series alone, and with the collector's
# by-model sums beside them. Both must give the same answer: a first check compares the sums with every cost
# series over the window, and the status after it reads the sums alone (checked_status).

H = 3600.0


def _status(enf, now):
    proc = enf.run("status", "--json", now=now)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_counter_reset_and_restart_as_new_series(mode, start_cost_prometheus, make_enforcer):
    now = time.time()
    start = now - 30 * H
    # Same series restarts: 10 before the window, +1 at -20h, process restart at -10h (counter back to 0),
    # the first export after the restart already holds $0.40, then +$0.60 at -5h. True spend: $2.00.
    same = counter_samples(start, now, 60, [(start, 10.0), (now - 20 * H, 1.0), (now - 10 * H + 30, 0.4),
                                            (now - 5 * H, 0.6)], resets=[now - 10 * H])
    # Restart with a new instance label: the old series stops, a new one starts at $0.40. True spend: $2.00.
    old = counter_samples(start, now - 10 * H, 60, [(start, 10.0), (now - 20 * H, 1.0)])
    new = counter_samples(now - 10 * H + 60, now, 60, [(now - 10 * H + 60, 0.4), (now - 5 * H, 0.6)])
    history = [
        (cost_labels("anthropic", "restarted"), same),
        (cost_labels("openai", "new-series", instance="gw-a"), old),
        (cost_labels("openai", "new-series", instance="gw-b"), new),
    ]
    prom = start_cost_prometheus(history, now=now)
    enf = make_enforcer(prom.url, BUDGET_QUERY_MODE=mode)
    status = checked_status(enf, now, start_cost_prometheus.kind)
    rows = {f"{r['provider']}/{r['model']}": r["usd"] for r in status["top"]}
    # reset: never below the true $2.00, above it only by increase()'s extrapolation
    assert 2.0 <= rows["anthropic/restarted"] <= 2.0 * 1.005
    # the stopped old series gets increase() (tiny end extrapolation), the new one counts in full
    assert 2.0 <= rows["openai/new-series"] <= 2.0 * 1.005
    # For the record: plain increase() on 2.42 loses most of the new series' first value.
    plain = prom.query('sum by (openclaw_model) (increase(openclaw_cost_usd_total[86400s]))', at=now)
    plain_new = {r["metric"]["openclaw_model"]: float(r["value"][1]) for r in plain}["new-series"]
    assert plain_new < 1.7
    # and the naive difference goes negative across the reset
    naive = prom.query('last_over_time(openclaw_cost_usd_total{openclaw_model="restarted"}[1h]) - '
                       'openclaw_cost_usd_total{openclaw_model="restarted"} offset 24h', at=now)
    assert float(naive[0]["value"][1]) < 0


def test_exact_at_window_edges(start_cost_prometheus, make_enforcer):
    """Spend just before the window start is out, just after is in (no extrapolation for clean series)."""
    now = time.time()
    start = now - 30 * H
    samples = counter_samples(start, now, 60, [(start, 3.0), (now - 24 * H - 120, 0.7), (now - 24 * H + 120, 0.2),
                                              (now - 60, 0.05)])
    prom = start_cost_prometheus([(cost_labels("anthropic", "edge"), samples)], now=now)
    enf = make_enforcer(prom.url)
    status = checked_status(enf, now, start_cost_prometheus.kind)
    assert status["spent_usd"] == pytest.approx(0.25, abs=1e-6)  # $0.70 just before is out


def _last_midnight(tz: ZoneInfo, before: float) -> datetime:
    local = datetime.fromtimestamp(before, tz)
    return datetime(local.year, local.month, local.day, tzinfo=tz)


def test_calendar_day_rolls_over_at_local_midnight(start_cost_prometheus, make_enforcer, matrix):
    tz_name = "Asia/Kolkata"  # UTC+05:30: a half-hour offset catches UTC-hour arithmetic
    tz = ZoneInfo(tz_name)
    real_now = time.time()
    midnight = _last_midnight(tz, real_now - 4 * H)  # a local midnight at least 4 h in the past
    m = midnight.timestamp()
    start = m - 28 * H
    samples = counter_samples(start, real_now, 60, [(start, 2.0), (m - 3 * H, 4.5), (m + 1 * H, 1.0)])
    prom = start_cost_prometheus([(cost_labels("anthropic", "claude-sonnet-4"), samples)], now=real_now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room, MAX_DAILY_USD="4", BUDGET_WINDOW="calendar-day",
                        BUDGET_TZ=tz_name)

    # 23:00 the day before: $4.50 spent that day -> blocked until local midnight
    out = enf.check(now=m - 1 * H).stdout
    assert "state=blocked" in out
    flag = enf.flag_json()
    assert flag["window"] == "calendar-day" and flag["timezone"] == tz_name
    assert datetime.fromisoformat(flag["resets_at"]) == midnight
    assert flag["resets_at"].endswith("+05:30")
    body = matrix.bodies(room)[-1]
    assert "BLOCKED" in body and f"{midnight:%a %d %b} 00:00 IST" in body and "in 1h" in body

    # 00:30 local: a new day, nothing spent yet -> recovered, flag removed, one message
    out = enf.check(now=m + 0.5 * H).stdout
    assert "state=ok" in out and "spent_usd=0.00" in out
    assert not enf.flag.exists()
    bodies = matrix.bodies(room)
    assert len(bodies) == 2 and "allowed again" in bodies[1]
    next_midnight = (midnight + timedelta(days=1)).astimezone(tz)
    assert f"{next_midnight:%a %d %b} 00:00 IST" in bodies[1]

    # 02:00 local: $1.00 today; a rolling window would see $5.50 and block
    status = checked_status(enf, m + 2 * H, start_cost_prometheus.kind)
    assert status["spent_usd"] == pytest.approx(1.0, abs=1e-6) and status["state"] == "ok"
    assert status["window"]["start"] == midnight.isoformat()
    rolling = make_enforcer(prom.url, MAX_DAILY_USD="4", BUDGET_TZ=tz_name)
    assert _status(rolling, m + 2 * H)["spent_usd"] == pytest.approx(5.5, abs=1e-6)


def test_query_is_one_expression_by_provider_and_model():
    selector = '{__name__=~"openclaw_cost_usd(_USD)?_total"}'
    q = spend_query(selector, 3600)
    assert q.startswith("sum by (openclaw_provider, openclaw_model) (")
    assert "increase(" in q and "resets(" in q and "[900s] offset 3600s" in q
    # three scans of the window in all: increase(), min_over_time() (anchor check) and resets()
    assert q.count("[3600s]") == 2 and q.count("[4500s]") == 1
    # the anchor (a series' last value up to 24 h before the window) is a 24 h scan: E holds it once, the
    # gap test once; the fast query only in E
    assert q.count("[86400s] offset 3600s") == 2
    assert spend_query(selector, 3600, mode="fast").count("[86400s] offset 3600s") == 1


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_collector_outage_across_the_window_start_is_not_new_spend(mode, start_cost_prometheus, make_enforcer):
    """The gateway keeps counting while the collector (or Prometheus) is down for 4 h, and the window
    start falls inside that gap. The series' whole cumulative value ($21.80 since the gateway started)
    must not count as if the series were new: spend is measured from its last value before the gap."""
    now = time.time()
    start = now - 30 * H
    gap = (now - 26 * H, now - 22 * H)

    def with_gap(samples):
        return [(t, v) for t, v in samples if not gap[0] < t < gap[1]]

    # $20.50 before the gap, $1.00 spent during it (after the window start), $0.30 later: truth $1.30
    continuing = with_gap(counter_samples(start, now, 60, [(start, 20.0), (now - 27 * H, 0.5),
                                                          (now - 23 * H, 1.0), (now - 1 * H, 0.3)]))
    # Restarted during the gap (counter back to 0), $0.40 before exports resume, $0.30 later: truth $0.70
    restarted = with_gap(counter_samples(start, now, 60, [(start, 20.5), (now - 23 * H, 0.4), (now - 1 * H, 0.3)],
                                         resets=[now - 23.5 * H]))
    # Born during the gap: its first exported value already holds $0.40: truth $0.70
    born = counter_samples(now - 22 * H + 30, now, 60, [(now - 22 * H, 0.4), (now - 1 * H, 0.3)])
    prom = start_cost_prometheus([(cost_labels("anthropic", "continuing"), continuing),
                             (cost_labels("anthropic", "restarted"), restarted),
                             (cost_labels("openai", "born"), born)], now=now)
    enf = make_enforcer(prom.url, BUDGET_QUERY_MODE=mode)
    status = checked_status(enf, now, start_cost_prometheus.kind)
    rows = {f"{r['provider']}/{r['model']}": r["usd"] for r in status["top"]}
    assert rows["anthropic/continuing"] == pytest.approx(1.3, abs=1e-6)
    assert rows["anthropic/restarted"] == pytest.approx(0.7, abs=1e-6)
    assert rows["openai/born"] == pytest.approx(0.7, abs=1e-6)
    assert status["state"] == "ok"


def test_young_sparse_series_counts_exactly(start_cost_prometheus, make_enforcer):
    """A series born two minutes ago with two samples ($0 then $0.36, as a fresh gateway exports them) is
    exact in the default mode: no increase() extrapolation (it made $0.54 of it). doctor compares exactly
    this against OpenClaw's ledger, so an over-count here fails it by 50%."""
    now = time.time()
    young = [(cost_labels("fake", "young"), [(now - 120, 0.0), (now - 60, 0.36)])]
    # A second gateway has exported since before the window: the collector was summing then.
    steady = [(cost_labels("fake", "steady", job="gw-2"), counter_samples(now - 30 * H, now, 60, [(now - 30 * H, 1.0)]))]
    prom = start_cost_prometheus(young + steady, now=now)
    for window in ("rolling-24h", "calendar-day"):
        enf = make_enforcer(prom.url, BUDGET_WINDOW=window, BUDGET_TZ="UTC")
        status = checked_status(enf, now, start_cost_prometheus.kind)
        assert status["spent_usd"] == pytest.approx(0.36, abs=1e-9), window


def test_gateway_off_across_midnight_restarts_and_outgrows_the_anchor(start_cost_prometheus, make_enforcer):
    """Calendar day: the gateway was off from 22:00 to 01:00 and came back as a new process with the same
    labels (counter from 0, its first export already $3.00), then spent $1.20 more. Yesterday's last value
    was $4.00, and the new counter passes it: all $4.20 is today's, none of it may be subtracted."""
    tz = ZoneInfo("Europe/Rome")
    midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    m = midnight.timestamp()
    yesterday = counter_samples(m - 10 * H, m - 2 * H, 60, [(m - 10 * H, 0.0), (m - 5 * H, 4.0)])
    today = counter_samples(m + 1 * H, m + 3 * H, 60, [(m + 1 * H, 3.0), (m + 2 * H, 1.2)])
    prom = start_cost_prometheus([(cost_labels("anthropic", "over-midnight"), yesterday + today)], now=m + 3 * H)
    for mode in ("exact", "fast"):
        enf = make_enforcer(prom.url, BUDGET_WINDOW="calendar-day", BUDGET_TZ="Europe/Rome", BUDGET_QUERY_MODE=mode)
        status = checked_status(enf, m + 3 * H, start_cost_prometheus.kind)  # nothing exported at midnight
        assert status["spent_usd"] == pytest.approx(4.2, abs=1e-6), mode


def test_cost_series_renamed_by_a_collector_upgrade(start_cost_prometheus, make_enforcer):
    """The collector's translation changed the name (openclaw_cost_usd_USD_total -> openclaw_cost_usd_total)
    30 hours ago: both names hold the same labels in the 24 h before the window, where the anchor is looked
    for. Each name is measured on its own, so the check neither fails for a day (duplicate series in one
    match group, a backend error that blocks under the default policy) nor miscounts."""
    now = time.time()
    labels = cost_labels("anthropic", "renamed")
    old = counter_samples(now - 40 * H, now - 30 * H, 60, [(now - 40 * H, 2.0)])
    new = counter_samples(now - 30 * H + 60, now, 60, [(now - 30 * H + 60, 0.3), (now - 2 * H, 0.4)])
    prom = start_cost_prometheus([(dict(labels, __name__="openclaw_cost_usd_USD_total"), old), (labels, new)],
                                 now=now)
    enf = make_enforcer(prom.url)
    status = checked_status(enf, now, start_cost_prometheus.kind)
    assert status["backend"]["ok"], status["backend"]
    assert status["spent_usd"] == pytest.approx(0.4, abs=1e-6)  # the new name's $0.40 of the last 24 h
