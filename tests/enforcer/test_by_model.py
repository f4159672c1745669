"""The fast path on real Prometheus 2.42: spend from the collector's by-model sums (one series per gateway,
provider and model) in one query, and back to every cost series, with the reason, whenever the sums can't be
trusted for the window: a collector that stopped summing, a gateway whose sums start inside the window, and
no sums at the window start (a collector upgraded within it). The comparison with every cost series (the
part whose cost grows with the series count) runs on one check every five minutes, not on every check. Each fallback case is built so that trusting
the sums would under-count; the right answer proves the fallback, ``source`` says which path ran."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from enforcer.prometheus import (FALLBACK_REASONS, VERIFY_SECONDS, PrometheusClient, by_model_query, fetch_spend,
                                 spend_query)
from enforcer.settings import DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, load
from tests.enforcer.helpers.prom import by_model_series, cost_labels, counter_samples

H = 3600.0
DAY = 86400


def _status(enf, now):
    proc = enf.run("status", "--json", now=now)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _rows(status):
    return {f"{r['provider']}/{r['model']}": r["usd"] for r in status["top"]}


def _steady(now, job="openclaw-gateway", agents=("main", "ops"), model="claude-sonnet-4"):
    """A gateway exporting since 30 h ago, two agents on one model: $1.00 each before the window, then
    $0.25 each at -5 h. True spend in the window: $0.50."""
    start = now - 30 * H
    return [(cost_labels("anthropic", model, job=job, openclaw_agent=agent),
             counter_samples(start, now, 60, [(start, 1.0), (now - 5 * H, 0.25)])) for agent in agents]


def test_healthy_sums_answer_in_one_query(start_prometheus):
    now = time.time()
    history = _steady(now)
    prom = start_prometheus(history + by_model_series(history), now=now)
    at = datetime.fromtimestamp(now, timezone.utc)
    fast_client = PrometheusClient(prom.url, 10)
    fast = fetch_spend(fast_client, DEFAULT_COST_NAMES, DAY, at, by_model=DEFAULT_BY_MODEL_NAMES)
    assert (fast.source, fast.fallback, fast_client.requests_made) == ("by-model", None, 1)
    assert fast.total == pytest.approx(0.5, abs=1e-9)
    assert fast.query == by_model_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, DAY)
    # The same rows as from every cost series.
    slow_client = PrometheusClient(prom.url, 10)
    slow = fetch_spend(slow_client, DEFAULT_COST_NAMES, DAY, at)
    assert (slow.source, slow_client.requests_made) == ("per-series", 1)
    assert slow.rows == fast.rows
    # The fast query scans the window of the by-model names only: no range selector on a cost series.
    assert "openclaw_cost_usd_total[" not in fast.query and "openclaw_cost_usd_USD_total[" not in fast.query
    assert "openclaw_cost_usd_total[" in spend_query(DEFAULT_COST_NAMES, DAY)


def test_without_sums_one_more_query_and_the_reason(start_prometheus):
    now = time.time()
    prom = start_prometheus(_steady(now), now=now)
    client = PrometheusClient(prom.url, 10)
    spend = fetch_spend(client, DEFAULT_COST_NAMES, DAY, datetime.fromtimestamp(now, timezone.utc),
                        by_model=DEFAULT_BY_MODEL_NAMES)
    assert (spend.source, client.requests_made) == ("per-series", 2)
    assert spend.fallback == "differs-at-window-start, differs-now, no-history"
    assert spend.total == pytest.approx(0.5, abs=1e-9)


def test_collector_that_stopped_summing_is_not_trusted(start_prometheus, make_enforcer):
    """The by-model series stop 2 h ago (e.g. the collector was replaced by one without the processor) while
    the gateway spends $0.25 per agent after that: the sums alone would see none of it."""
    now = time.time()
    history = _steady(now)
    sums = [(labels, [(t, v) for t, v in samples if t <= now - 6 * H]) for labels, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    status = _status(make_enforcer(prom.url), now)
    assert status["source"] == {"series": "per-series", "fallback": "differs-now", "verified": False}
    assert status["spent_usd"] == pytest.approx(0.5, abs=1e-9)


def test_gateway_whose_sums_start_inside_the_window_is_not_trusted(start_prometheus, make_enforcer):
    """Two gateways; the second one's collector started summing 10 h ago. Its $1.00 spent before that
    (inside the window) is in its cost series only."""
    now = time.time()
    first = _steady(now, job="gw-1", model="first")
    start = now - 30 * H
    second = [(cost_labels("anthropic", "second", job="gw-2"),
               counter_samples(start, now, 60, [(start, 3.0), (now - 15 * H, 1.0), (now - 2 * H, 0.5)]))]
    late_sums = [(labels, [(t, v) for t, v in samples if t >= now - 10 * H]) for labels, samples in by_model_series(second)]
    prom = start_prometheus(first + by_model_series(first) + second + late_sums, now=now)
    status = _status(make_enforcer(prom.url), now)
    assert status["source"] == {"series": "per-series", "fallback": "differs-at-window-start", "verified": False}
    assert _rows(status) == {"anthropic/second": pytest.approx(1.5, abs=1e-9),
                             "anthropic/first": pytest.approx(0.5, abs=1e-9)}


def test_collector_upgraded_inside_the_window_is_not_trusted(start_prometheus, make_enforcer):
    """A gateway ran from -20 h to -10 h ($2.00), was off, and restarted -3 h ago under the same labels
    ($0.30 since). The collector began summing -5 h ago, so the sums know only the new process: without the
    no-history rule they would say $0.30."""
    now = time.time()
    labels = cost_labels("anthropic", "claude-sonnet-4")
    before = counter_samples(now - 20 * H, now - 10 * H, 60, [(now - 20 * H, 0.0), (now - 15 * H, 2.0)])
    after = counter_samples(now - 3 * H, now, 60, [(now - 3 * H, 0.1), (now - 1 * H, 0.2)])
    history = [(labels, before + after)]
    sums = [(lbl, [(t, v) for t, v in samples if t >= now - 5 * H]) for lbl, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    status = _status(make_enforcer(prom.url), now)
    assert status["source"] == {"series": "per-series", "fallback": "no-history", "verified": False}
    assert status["spent_usd"] >= 2.3 - 1e-9
    # What the sums alone say: the reason the rule exists.
    only_sums = prom.query(spend_query(DEFAULT_BY_MODEL_NAMES, DAY), at=now)
    assert float(only_sums[0]["value"][1]) == pytest.approx(0.3, abs=1e-9)


def test_sums_can_be_turned_off_and_follow_a_custom_cost_selector(start_prometheus, make_enforcer):
    now = time.time()
    history = _steady(now)
    prom = start_prometheus(history + by_model_series(history), now=now)
    assert _status(make_enforcer(prom.url), now)["source"]["series"] == "by-model"
    off = _status(make_enforcer(prom.url, BUDGET_COST_BY_MODEL_SELECTOR="off"), now)
    assert off["source"] == {"series": "per-series", "fallback": None, "verified": False}
    # A custom cost selector has no default sums: it is measured as given.
    custom = _status(make_enforcer(prom.url, BUDGET_COST_SELECTOR='openclaw_cost_usd_total{job="openclaw-gateway"}'),
                     now)
    assert custom["source"] == {"series": "per-series", "fallback": None, "verified": False}
    assert custom["spent_usd"] == pytest.approx(0.5, abs=1e-9)
    assert load({"PROMETHEUS_URL": "http://p:9090", "BUDGET_COST_SELECTOR": "x_total",
                 "BUDGET_COST_BY_MODEL_SELECTOR": "x_by_model_total"}).by_model_selectors == ("x_by_model_total",)


def test_every_fallback_reason_is_explained():
    query = by_model_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, DAY)
    for reason in FALLBACK_REASONS:
        assert f'"{reason}"' in query


def _doctor_lines(enf, now):
    proc = enf.run("doctor", now=now)
    return {line.split("]", 1)[1].split(":", 1)[0].strip(): line for line in proc.stdout.splitlines()}


def test_doctor_compares_the_sums_with_the_cost_series(start_prometheus, make_enforcer):
    now = time.time()
    history = _steady(now)
    prom = start_prometheus(history + by_model_series(history), now=now)
    line = _doctor_lines(make_enforcer(prom.url), now)["by-model series"]
    assert line.startswith("[  ok]") and "one query" in line, line

    # Sums that count twice (e.g. aggregated after batching the same counter twice) don't add up to the cost
    # series: not used, and said why; the spend stays right.
    doubled = [(labels, [(t, 2 * v) for t, v in samples]) for labels, samples in by_model_series(history)]
    prom2 = start_prometheus(history + doubled, now=now)
    enf2 = make_enforcer(prom2.url)
    line = _doctor_lines(enf2, now)["by-model series"]
    assert line.startswith("[warn]") and "differs-now" in line and "don't add up" in line, line
    assert _status(enf2, now)["spent_usd"] == pytest.approx(0.5, abs=1e-9)

    # Sums that add up at both ends but not in between (here a spurious drop to 0 in the middle of the
    # window, which reads as a counter reset): used, but doctor sees the two measures disagree.
    glitched = [(labels, [(t, 0.0 if abs(t - (now - 12 * H)) < 30 else v) for t, v in samples])
                for labels, samples in by_model_series(history)]
    prom4 = start_prometheus(history + glitched, now=now)
    line = _doctor_lines(make_enforcer(prom4.url), now)["by-model series"]
    assert line.startswith("[FAIL]") and "the by-model sum disagrees" in line and "$0.500000 per series" in line, line

    # No sums at all: a warning with the fix.
    prom3 = start_prometheus(history, now=now)
    line = _doctor_lines(make_enforcer(prom3.url), now)["by-model series"]
    assert line.startswith("[warn]") and "metrics_transform" in line, line


def test_sums_are_compared_with_the_cost_series_every_five_minutes(start_prometheus, make_enforcer):
    """The comparison reads every cost series, so `check` makes it only when the last one is VERIFY_SECONDS
    old. A collector that stops summing between two comparisons is caught by the next one, and the spend
    the sums missed meanwhile counts from then on (the per-series query measures the whole window): the
    stop comes at most five minutes later in that case, nothing is lost."""
    assert VERIFY_SECONDS == 300
    now = time.time()
    start = now - 30 * H
    stop = now - 350  # the collector stops summing
    history = [(cost_labels("anthropic", "claude-sonnet-4", openclaw_agent=agent),
                counter_samples(start, now, 60, [(start, 1.0), (now - 5 * H, 0.25), (now - 300, 0.4)]))
               for agent in ("main", "ops")]
    sums = [(labels, [(t, v) for t, v in samples if t <= stop]) for labels, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    enf = make_enforcer(prom.url)

    def check(at):
        proc = enf.check(now=at)
        record = enf.journal()[-1]
        return proc.stdout, record["source"], record["spent_usd"]

    out, source, spent = check(now - 400)  # first check: compares, the sums cover the window
    assert source == {"series": "by-model", "fallback": None, "verified": True}
    assert spent == pytest.approx(0.5, abs=1e-9) and "fallback" not in out
    first_query = enf.journal()[-1]["query"]
    assert "openclaw_cost_usd_total offset" in first_query  # the comparison is in the query

    out, source, spent = check(now - 150)  # 250 s later: sums alone; they miss the $0.80 since they stopped
    assert source == {"series": "by-model", "fallback": None, "verified": False}
    assert spent == pytest.approx(0.5, abs=1e-9)
    cheap_query = enf.journal()[-1]["query"]
    assert "openclaw_cost_usd_total" not in cheap_query.replace("openclaw_cost_usd_by_model_total", "")

    out, source, spent = check(now - 60)  # 340 s after the comparison: compares again, falls back
    assert source == {"series": "per-series", "fallback": "differs-now", "verified": False}
    assert spent == pytest.approx(1.3, abs=1e-9)
    assert "spend_from=per-series fallback=differs-now" in out

    out, source, _ = check(now - 50)  # after a fallback, the next check compares again
    assert source["fallback"] == "differs-now"
