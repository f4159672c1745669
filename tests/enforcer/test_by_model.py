"""The fast path on real Prometheus 2.42: spend from the collector's by-model sums (one series per gateway,
provider and model) once a comparison over the whole window found them measuring the same spend as every
cost series, and while a check every five minutes finds the cost series adding up to them since the last
one. A difference sends every check back to the cost series until the spend the sums missed has left the
window. Each case where the sums fall short is built so that trusting them would under-count: the right
answer proves the fallback, ``source`` says which path ran and why."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from enforcer.prometheus import (FALLBACK_REASONS, VERIFY_SECONDS, PrometheusClient, SpendRow, by_model_query,
                                 compare_rows, coverage_query, fetch_spend, spend_query)
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


def _check(enf, at):
    """One check at ``at``: its log line, and the spend source and spend its journal record gives."""
    proc = enf.check(now=at)
    record = enf.journal()[-1]
    return proc.stdout, record["source"], record["spent_usd"]


def _source(series, fallback=None, verified=False, covered=None):
    """The journal's/status's source without the difference details."""
    return {"series": series, "fallback": fallback, "verified": verified, "covered": covered}


def _brief(source):
    assert source["why"] == FALLBACK_REASONS.get(source["fallback"]), source
    return {k: source[k] for k in ("series", "fallback", "verified", "covered")}


def _steady(now, job="openclaw-gateway", agents=("main", "ops"), model="claude-sonnet-4"):
    """A gateway exporting since 30 h ago, two agents on one model: $1.00 each before the window, then
    $0.25 each at -5 h. True spend in the window: $0.50."""
    start = now - 30 * H
    return [(cost_labels("anthropic", model, job=job, openclaw_agent=agent),
             counter_samples(start, now, 60, [(start, 1.0), (now - 5 * H, 0.25)])) for agent in agents]


def test_healthy_sums_are_compared_once_then_answer_alone(start_prometheus):
    now = time.time()
    history = _steady(now)
    prom = start_prometheus(history + by_model_series(history), now=now)
    at = datetime.fromtimestamp(now, timezone.utc)
    # Not yet trusted: every cost series, and the sums beside them in the same query; they agree.
    client = PrometheusClient(prom.url, 10)
    compared = fetch_spend(client, DEFAULT_COST_NAMES, DAY, at, by_model=DEFAULT_BY_MODEL_NAMES)
    assert (compared.source, compared.fallback, compared.covered, client.requests_made) == (
        "per-series", "unverified", True, 1)
    assert compared.query == coverage_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, DAY)
    assert compared.total == pytest.approx(0.5, abs=1e-9) and compared.differences == ()
    # Trusted: the sums alone, one query that scans no cost series.
    client = PrometheusClient(prom.url, 10)
    fast = fetch_spend(client, DEFAULT_COST_NAMES, DAY, at, by_model=DEFAULT_BY_MODEL_NAMES, trusted=True)
    assert (fast.source, fast.fallback, fast.verified, client.requests_made) == ("by-model", None, False, 1)
    assert fast.rows == compared.rows
    assert "openclaw_cost_usd_total" not in fast.query.replace("openclaw_cost_usd_by_model_total", "")
    assert "openclaw_cost_usd_total[" in spend_query(DEFAULT_COST_NAMES, DAY)
    # Trusted and due: the same query checks the last 6 minutes of every cost series, and they add up.
    client = PrometheusClient(prom.url, 10)
    checked = fetch_spend(client, DEFAULT_COST_NAMES, DAY, at, by_model=DEFAULT_BY_MODEL_NAMES, trusted=True,
                          check_seconds=360)
    assert (checked.source, checked.verified, client.requests_made) == ("by-model", True, 1)
    assert checked.rows == compared.rows
    assert "last_over_time(openclaw_cost_usd_total[360s])" in checked.query
    assert checked.query == by_model_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, DAY, check_seconds=360)


def test_without_sums_one_query_and_the_reason(start_prometheus, make_enforcer):
    now = time.time()
    prom = start_prometheus(_steady(now), now=now)
    client = PrometheusClient(prom.url, 10)
    spend = fetch_spend(client, DEFAULT_COST_NAMES, DAY, datetime.fromtimestamp(now, timezone.utc),
                        by_model=DEFAULT_BY_MODEL_NAMES)
    assert (spend.source, spend.fallback, spend.covered, client.requests_made) == (
        "per-series", "unverified", False, 1)
    assert spend.differences == (("anthropic/claude-sonnet-4", 0.0, 0.5),)
    assert spend.total == pytest.approx(0.5, abs=1e-9)
    # A check remembers that they don't cover the window and says so in its log line; the next check
    # compares again (it costs nothing more: the cost series are read anyway).
    enf = make_enforcer(prom.url)
    out, source, _ = _check(enf, now - 60)
    assert "spend_from=per-series fallback=unverified sums_agree=no" in out
    assert _brief(source) == _source("per-series", "unverified", covered=False)
    assert source["differences"] == [{"model": "anthropic/claude-sonnet-4", "by_model_usd": 0.0,
                                      "per_series_usd": pytest.approx(0.5, abs=1e-9)}]
    assert enf.state()["by_model_covered_from"] is None
    _, source, _ = _check(enf, now)
    assert _brief(source) == _source("per-series", "unverified", covered=False)


def test_collector_that_stopped_summing_is_not_trusted(start_prometheus, make_enforcer):
    """The by-model series stop 6 h ago (e.g. the collector was replaced by one without the processor) while
    the gateway spends $0.25 per agent after that: the sums alone would see none of it."""
    now = time.time()
    history = _steady(now)
    sums = [(labels, [(t, v) for t, v in samples if t <= now - 6 * H]) for labels, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    status = _status(make_enforcer(prom.url), now)
    assert _brief(status["source"]) == _source("per-series", "unverified", covered=False)
    assert status["spent_usd"] == pytest.approx(0.5, abs=1e-9)


def test_gateway_whose_sums_start_inside_the_window_is_not_trusted(start_prometheus, make_enforcer):
    """Two gateways; the second one's collector started summing 10 h ago. Its $1.00 spent before that
    (inside the window) is in its cost series only."""
    now = time.time()
    first = _steady(now, job="gw-1", model="first")
    start = now - 30 * H
    second = [(cost_labels("anthropic", "second", job="gw-2"),
               counter_samples(start, now, 60, [(start, 3.0), (now - 15 * H, 1.0), (now - 2 * H, 0.5)]))]
    late_sums = [(labels, [(t, v) for t, v in samples if t >= now - 10 * H])
                 for labels, samples in by_model_series(second)]
    prom = start_prometheus(first + by_model_series(first) + second + late_sums, now=now)
    enf = make_enforcer(prom.url)
    _, source, _ = _check(enf, now)
    assert _brief(source) == _source("per-series", "unverified", covered=False)
    # Only the model whose sum started late differs. (Its sum, born in the window, counts its whole value:
    # over, not under; either way it is not what the cost series say.)
    assert [d["model"] for d in source["differences"]] == ["anthropic/second"]
    status = _status(enf, now)
    assert _brief(status["source"]) == _source("per-series", "unverified", covered=False)
    assert _rows(status) == {"anthropic/second": pytest.approx(1.5, abs=1e-9),
                             "anthropic/first": pytest.approx(0.5, abs=1e-9)}


def test_collector_upgraded_inside_the_window_is_not_trusted(start_prometheus, make_enforcer):
    """A gateway ran from -20 h to -10 h ($2.00), was off, and restarted -3 h ago under the same labels
    ($0.30 since). The collector began summing -5 h ago, so the sums know only the new process: trusted,
    they would say $0.30."""
    now = time.time()
    labels = cost_labels("anthropic", "claude-sonnet-4")
    before = counter_samples(now - 20 * H, now - 10 * H, 60, [(now - 20 * H, 0.0), (now - 15 * H, 2.0)])
    after = counter_samples(now - 3 * H, now, 60, [(now - 3 * H, 0.1), (now - 1 * H, 0.2)])
    history = [(labels, before + after)]
    sums = [(lbl, [(t, v) for t, v in samples if t >= now - 5 * H]) for lbl, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    status = _status(make_enforcer(prom.url), now)
    assert _brief(status["source"]) == _source("per-series", "unverified", covered=False)
    assert status["spent_usd"] >= 2.3 - 1e-9
    # What the sums alone say: the reason they must cover the whole window first.
    only_sums = prom.query(spend_query(DEFAULT_BY_MODEL_NAMES, DAY), at=now)
    assert float(only_sums[0]["value"][1]) == pytest.approx(0.3, abs=1e-9)


def test_sums_can_be_turned_off_and_follow_a_custom_cost_selector(start_prometheus, make_enforcer):
    now = time.time()
    history = _steady(now)
    prom = start_prometheus(history + by_model_series(history), now=now)
    enf = make_enforcer(prom.url)
    _check(enf, now)
    assert _status(enf, now)["source"]["series"] == "by-model"
    off = _status(make_enforcer(prom.url, BUDGET_COST_BY_MODEL_SELECTOR="off"), now)
    assert _brief(off["source"]) == _source("per-series")
    # A custom cost selector has no default sums: it is measured as given.
    custom = _status(make_enforcer(prom.url, BUDGET_COST_SELECTOR='openclaw_cost_usd_total{job="openclaw-gateway"}'),
                     now)
    assert _brief(custom["source"]) == _source("per-series")
    assert custom["spent_usd"] == pytest.approx(0.5, abs=1e-9)
    assert load({"PROMETHEUS_URL": "http://p:9090", "BUDGET_COST_SELECTOR": "x_total",
                 "BUDGET_COST_BY_MODEL_SELECTOR": "x_by_model_total"}).by_model_selectors == ("x_by_model_total",)
    # Coverage found for other selectors is not coverage for these: compared again first.
    renamed = make_enforcer(prom.url, BUDGET_COST_BY_MODEL_SELECTOR="openclaw_cost_usd_by_model_total")
    assert _brief(_status(renamed, now)["source"]) == _source("per-series", "unverified", covered=True)


def _doctor_lines(enf, now):
    proc = enf.run("doctor", now=now)
    return {line.split("]", 1)[1].split(":", 1)[0].strip(): line for line in proc.stdout.splitlines()}


def test_doctor_compares_the_sums_with_the_cost_series(start_prometheus, make_enforcer):
    now = time.time()
    history = _steady(now)
    prom = start_prometheus(history + by_model_series(history), now=now)
    line = _doctor_lines(make_enforcer(prom.url), now)["by-model series"]
    assert line.startswith("[  ok]") and "the same $0.50" in line, line

    # Sums that count twice (e.g. aggregated after batching the same counter twice): not used, and said why.
    doubled = [(labels, [(t, 2 * v) for t, v in samples]) for labels, samples in by_model_series(history)]
    prom2 = start_prometheus(history + doubled, now=now)
    enf2 = make_enforcer(prom2.url)
    line = _doctor_lines(enf2, now)["by-model series"]
    assert line.startswith("[warn]") and "$1.000000 by model, $0.500000 per series" in line, line
    assert _status(enf2, now)["spent_usd"] == pytest.approx(0.5, abs=1e-9)

    # Sums that add up at both ends but not in between (here a spurious drop to 0 in the middle of the
    # window, which reads as a counter reset): the whole-window comparison sees it.
    glitched = [(labels, [(t, 0.0 if abs(t - (now - 12 * H)) < 30 else v) for t, v in samples])
                for labels, samples in by_model_series(history)]
    prom4 = start_prometheus(history + glitched, now=now)
    enf4 = make_enforcer(prom4.url)
    line = _doctor_lines(enf4, now)["by-model series"]
    assert line.startswith("[warn]") and "$0.500000 per series" in line, line
    _, source, spent = _check(enf4, now)
    assert source["covered"] is False and spent == pytest.approx(0.5, abs=1e-9)

    # No sums at all: a warning with the fix.
    prom3 = start_prometheus(history, now=now)
    line = _doctor_lines(make_enforcer(prom3.url), now)["by-model series"]
    assert line.startswith("[warn]") and "no by-model sum measures anthropic/claude-sonnet-4" in line, line
    assert "metrics_transform" in line, line


def test_sums_that_stop_are_caught_and_distrusted_until_their_gap_leaves_the_window(start_prometheus,
                                                                                     make_enforcer):
    """The collector stops summing (replaced by one without the processor) while the gateway spends $0.40
    per agent, then the gateway stops too. The check every VERIFY_SECONDS catches it; from then on every
    check reads the cost series, also once the gateway has stopped and its unsummed series have gone quiet
    (the sums at both ends would agree again by then): the block holds, no false "allowed again"."""
    assert VERIFY_SECONDS == 300
    now = time.time()
    start = now - 30 * H
    sums_stop, gateway_stop = now - 1000, now - 600
    history = [(cost_labels("anthropic", "claude-sonnet-4", openclaw_agent=agent),
                counter_samples(start, gateway_stop, 60, [(start, 1.0), (now - 5 * H, 0.25), (now - 900, 0.4)]))
               for agent in ("main", "ops")]
    sums = [(labels, [(t, v) for t, v in samples if t <= sums_stop]) for labels, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    enf = make_enforcer(prom.url, MAX_DAILY_USD="1.00")

    out, source, spent = _check(enf, now - 1100)  # first check: compares the whole window; the sums cover it
    assert _brief(source) == _source("per-series", "unverified", covered=True)
    assert spent == pytest.approx(0.5, abs=1e-9) and "state=ok" in out

    out, source, spent = _check(enf, now - 850)  # 250 s later: the sums alone; they miss the $0.80 at -900 s
    assert _brief(source) == _source("by-model")
    assert spent == pytest.approx(0.5, abs=1e-9)
    assert "openclaw_cost_usd_total" not in enf.journal()[-1]["query"].replace("openclaw_cost_usd_by_model_total", "")

    # status and a dry run look (and see the difference) but move nothing in the record.
    record = {k: v for k, v in enf.state().items() if k.startswith("by_model_")}
    assert _brief(_status(enf, now - 700)["source"]) == _source("per-series", "differs", covered=False)
    enf.run("check", "--dry-run", now=now - 700)
    assert {k: v for k, v in enf.state().items() if k.startswith("by_model_")} == record

    out, source, spent = _check(enf, now - 700)  # 400 s after the comparison: checks the last 700 s, differs
    assert _brief(source) == _source("per-series", "differs", covered=False)
    assert spent == pytest.approx(1.3, abs=1e-9)
    assert "state=blocked" in out and "spend_from=per-series fallback=differs sums_agree=no" in out

    # The gateway stopped at -600 s: at -60 s its cost series and the stale sums would both look quiet.
    out, source, spent = _check(enf, now - 60)
    assert _brief(source) == _source("per-series", "unverified", covered=False)
    assert spent >= 1.3 - 1e-9 and "state=blocked" in out
    assert enf.flag_json() is not None
    # What trusting the sums again would have said.
    only_sums = prom.query(spend_query(DEFAULT_BY_MODEL_NAMES, DAY), at=now - 60)
    assert float(only_sums[0]["value"][1]) == pytest.approx(0.5, rel=0.01)


def test_a_restart_that_changes_the_agents_is_checked_and_the_sums_kept(start_prometheus, make_enforcer):
    """A gateway without an instance label restarts: the old process's agent `main` stops, the new one
    exports only `ops`. For up to a check's look-back the old `main` series and the new sum don't add up
    (a different process each): the check compares the whole window, finds the sums right, and keeps them."""
    now = time.time()
    start = now - 30 * H
    old = counter_samples(start, now - 200, 60, [(start, 1.0), (now - 5 * H, 0.25)])
    new = counter_samples(now - 140, now, 60, [(now - 140, 0.1)])
    history = [(cost_labels("anthropic", "claude-sonnet-4", openclaw_agent="main"), old),
               (cost_labels("anthropic", "claude-sonnet-4", openclaw_agent="ops"), new)]
    prom = start_prometheus(history + by_model_series(history), now=now)
    enf = make_enforcer(prom.url)
    _, source, spent = _check(enf, now - 400)
    assert _brief(source) == _source("per-series", "unverified", covered=True)
    _, source, spent = _check(enf, now - 30)  # due: the restart is in its look-back
    assert _brief(source) == _source("per-series", "differs", covered=True)
    assert spent == pytest.approx(0.35, rel=0.005)
    _, source, spent2 = _check(enf, now)  # compared just now: the sums alone again, same answer
    assert _brief(source) == _source("by-model")
    assert spent2 == pytest.approx(spent, rel=0.005)


def test_cost_that_came_and_went_between_two_checks_is_seen(start_prometheus, make_enforcer):
    """The checks' look-backs chain: the collector stops summing and the gateway spends $0.40 per agent and
    stops, all between two checks 13 minutes apart (an enforcer that was down, or a long interval). An instant
    comparison at the second check would see neither the quiet cost series nor the stale sums."""
    now = time.time()
    start = now - 30 * H
    history = [(cost_labels("anthropic", "claude-sonnet-4", openclaw_agent=agent),
                counter_samples(start, now - 800, 60, [(start, 1.0), (now - 5 * H, 0.25), (now - 900, 0.4)]))
               for agent in ("main", "ops")]
    sums = [(labels, [(t, v) for t, v in samples if t <= now - 1000]) for labels, samples in by_model_series(history)]
    prom = start_prometheus(history + sums, now=now)
    enf = make_enforcer(prom.url)
    _, source, _ = _check(enf, now - 1100)
    assert source["covered"] is True
    _, source, spent = _check(enf, now - 300)
    assert _brief(source) == _source("per-series", "differs", covered=False)
    assert spent >= 1.3 - 1e-9


def test_a_restart_the_sum_hides_is_caught_by_its_resets(start_prometheus, make_enforcer):
    """A gateway without an instance label restarts 400 s ago. Agent `main` drops (1.25 -> 0.05), but the new
    process's first export holds $1.50 for `ops`, so the sum rises (1.45 -> 1.55): it shows no restart and
    loses the old process's spend. A minute later both agents report again and the latest values add up;
    only the cost series' reset gives it away."""
    now = time.time()
    start, restart = now - 30 * H, now - 400
    old = {"main": counter_samples(start, restart, 60, [(start, 1.0), (now - 5 * H, 0.25)]),
           "ops": counter_samples(start, restart, 60, [(start, 0.2)])}
    new = {"main": counter_samples(restart + 60, now, 60, [(restart + 60, 0.05)]),
           "ops": counter_samples(restart + 60, now, 60, [(restart + 60, 1.5)])}
    history = [(cost_labels("anthropic", "claude-sonnet-4", openclaw_agent=agent), old[agent] + new[agent])
               for agent in ("main", "ops")]
    prom = start_prometheus(history + by_model_series(history), now=now)
    enf = make_enforcer(prom.url)
    _, source, _ = _check(enf, now - 1000)
    assert source["covered"] is True
    _, source, spent = _check(enf, now - 60)
    assert _brief(source) == _source("per-series", "differs", covered=False)
    # Per series: main's reset is seen ($0.25 + $0.05); ops's $0.20 before the restart is the limit every
    # counter without an instance label shares (README, "Limits").
    assert spent == pytest.approx(1.6, rel=0.005)
    only_sums = prom.query(spend_query(DEFAULT_BY_MODEL_NAMES, DAY), at=now - 60)
    assert float(only_sums[0]["value"][1]) == pytest.approx(0.35, abs=1e-6)


def test_the_sums_may_err_toward_blocking_but_not_below_the_cost_series():
    def rows(usd):
        return (SpendRow("anthropic", "m", usd),)

    assert compare_rows(rows(10.0), rows(10.0)) == ()
    assert compare_rows(rows(10.19), rows(10.0)) == ()  # above, within 2%: increase()'s extrapolation
    assert compare_rows(rows(10.21), rows(10.0)) == (("anthropic/m", 10.21, 10.0),)
    assert compare_rows(rows(0.009), rows(0.0)) == ()  # above, within $0.01
    assert compare_rows(rows(9.995), rows(10.0)) == ()  # below, within 0.1%: extrapolation noise
    assert compare_rows(rows(9.98), rows(10.0)) == (("anthropic/m", 9.98, 10.0),)  # an under-count
    assert compare_rows(rows(0.0), rows(0.005)) == (("anthropic/m", 0.0, 0.005),)
    assert compare_rows((), rows(0.0)) == (("anthropic/m", 0.0, 0.0),)  # cost series without a sum
