"""Spend from Prometheus: one instant query per check, broken down by provider and model.

Why not plain ``sum by (...) (increase(x[24h]))``: on Prometheus 2.42, ``increase()`` extrapolates to the
window edges and, worse for a budget, loses most of a series' first value (a new provider/model, or a
gateway restart with a new instance label, shows up already at $0.50 and increase() counts ~$0) — the
enforcer would under-count exactly when a new model starts being used (otel-prometheus.md §3, §4).

Per series, the query uses:

* ``E``, exact, for a series reporting now and without a counter reset in the window: ``value now - last
  value before the window`` when it existed before the window (no extrapolation), or the whole ``value
  now`` when it was born inside the window (an OTel cumulative counter starts at 0);
* ``max(E, I)`` with ``I = increase(x[W])`` for everything else: after a reset (a gateway restart under
  the same labels) ``E`` is too small but ``I`` adds back the value before the reset, and ``I`` also covers
  series that stopped reporting during the window. The max never counts less than either estimate; it
  may exceed the truth by increase()'s extrapolation (at most about one export interval's worth of that
  series' spend), erring toward blocking.

"The last value before the window" (the anchor) is looked for up to ANCHOR_LOOKBACK (24 h) back, not just
a few minutes: when the collector or Prometheus was down across the window start, the gateway kept
counting, and a series without a recent value is not new — taking its whole cumulative value (everything
since the gateway started) would block falsely for as long as the outage lasted, a day later. Such a series
gets ``max(E, I)``. The anchor only counts while no value in the window is below it: otherwise the
counter restarted (possibly unseen, in the gap, e.g. a gateway switched off over midnight) and everything
it holds counts. Plain ``E`` is kept for series without a reset that are either anchored within LOOKBACK
(15 min) before the window start or have no value in the 24 h before it at all (born in the window).

So ordinary series are exact (the numbers agree with OpenClaw's own ledger), a restart never loses spend
and a new series counts in full. Where the truth is unknowable the query errs toward blocking: after an
export outage across the window start, what the gateway spent in the outage *before* the window start
counts too; after an unseen restart in such a gap, everything since the restart counts. Known limits,
all rare and all under-counts: a series born inside the window that then resets (its value before the
reset beyond what increase() sees), a series born *and* stopped inside the window (part of its first value),
and a series that stopped with a single sample in the window (increase() needs two).

Cost: three scans of the window (``resets()``, ``increase()``, ``min_over_time()``), two of the 24 h
before it (the anchor, in E and in the gap test), a 15-minute scan and instant lookups; the answer has
one row per provider/model whatever the number of series. An earlier version took ``max(E, I)`` for every
series (one scan) but over-counted young, sparse series by up to ~50% (seen against a real OpenClaw
ledger: $0.009 for $0.006); it is ``fast`` mode now.

Those scans read every sample of every cost series (one per agent x channel x provider x model). The
collector we deploy also writes the cost summed over agents and channels, one series per gateway, provider
and model (``openclaw_cost_usd_by_model_total``), and those are measured with the same rules, so their cost
does not grow with agents and channels. They are used only once they have been found to account for every
cost series (``coverage_query``: both measures over the whole window, in one query) and while a check every
VERIFY_SECONDS finds the cost series adding up to them since the last one (``by_model_query``). The runner
keeps that record (runner.by_model_plan).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import requests

LOOKBACK_SECONDS = 900
# How far before the window start a series' last value is looked for (see the module docstring).
ANCHOR_LOOKBACK_SECONDS = 86400
UNKNOWN = "(unknown)"


class BackendError(Exception):
    """Prometheus could not give a trustworthy answer. ``kind`` is a short reason for metrics."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class SpendRow:
    provider: str
    model: str
    usd: float

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True)
class Spend:
    total: float
    rows: Tuple[SpendRow, ...]  # sorted by usd, descending
    query: str
    evaluated_at: datetime
    # Which series were measured: "by-model" (the collector's sum over agents and channels) or "per-series"
    # (every cost series); ``fallback`` says why the by-model series were not used (FALLBACK_REASONS).
    source: str = "per-series"
    fallback: Optional[str] = None
    # by-model only: this query also checked that the cost series add up to the sums since the last check.
    verified: bool = False
    # per-series with sums configured: whether the sums measure the same spend over the whole window
    # (coverage_query), and the provider/models where they don't: (label, by-model usd, per-series usd).
    covered: Optional[bool] = None
    differences: Tuple[Tuple[str, float, float], ...] = ()

    def top(self, n: int = 3) -> Tuple[SpendRow, ...]:
        return tuple(r for r in self.rows if r.usd > 0)[:n]


QUERY_MODES = ("exact", "fast")


def spend_query(selector: Union[str, Sequence[str]], window_seconds: int,
                lookback_seconds: int = LOOKBACK_SECONDS, mode: str = "exact",
                anchor_seconds: int = ANCHOR_LOOKBACK_SECONDS) -> str:
    """The single PromQL expression for spend in ``(t - window_seconds, t]``, by provider and model.

    ``exact`` (default): E for series without a reset that are anchored near the window start or born
    inside the window, max(E, I) for the rest. ``fast`` (BUDGET_QUERY_MODE=fast, for thousands of series):
    max(E, I) for every series, about half of exact's cost, but young sparse series may be over-counted by
    up to about one export interval's worth of their spend (erring toward blocking).

    ``selector`` may be several selectors, one per metric name (the cost series was renamed once, see
    settings.DEFAULT_COST_NAMES): each gets its own per-series part, tagged so that a series present under
    both names is not a duplicate match group (an error that would fail every check of the overlap)."""
    selectors = [selector] if isinstance(selector, str) else list(selector)
    if not selectors:
        raise ValueError("no cost selector")
    parts = [_per_series_spend(s, window_seconds, lookback_seconds, mode, anchor_seconds) for s in selectors]
    if len(parts) > 1:
        parts = [_name_tag(part, str(i)) for i, part in enumerate(parts)]
    return f"sum by (openclaw_provider, openclaw_model) ({' or '.join(parts)})"


def _name_tag(expr: str, value: str) -> str:
    """``expr`` with the label enforcer_name=``value``: keeps apart rows whose labels would otherwise be the
    same once a function or an aggregation has dropped the metric name."""
    return f'label_replace({expr}, "enforcer_name", "{value}", "", "")'


def _per_series_spend(x: str, window_seconds: int, lookback_seconds: int, mode: str, anchor_seconds: int) -> str:
    """Spend of every series matched by ``x`` in the window, one value per series (see the module docstring).

    Prometheus evaluates every sub-expression as written (no common-subexpression reuse), so E — whose
    anchor is a 24 h scan — appears once: every series reporting now gets E, and I is added (and the max
    taken) only for series outside the exact set."""
    w = f"{int(window_seconds)}s"
    anchor = f"last_over_time({x}[{int(anchor_seconds)}s] offset {w})"
    # The anchor holds only while no value in the window is below it: a counter that restarted unseen (in an
    # export gap across the window start) and has since outgrown the old value would otherwise lose the
    # anchor's worth of spend. Without a valid anchor, everything the counter holds counts.
    valid_anchor = f"({anchor} <= min_over_time({x}[{w}]))"
    exact = f"((({x} - {valid_anchor}) >= 0) or {x})"
    extrapolated = f'label_replace(increase({x}[{w}]), "enforcer_estimate", "increase", "", "")'
    if mode == "fast":
        estimates = f"{exact} or {extrapolated}"
    elif mode == "exact":
        near = f"last_over_time({x}[{int(lookback_seconds)}s] offset {w})"
        no_reset = f"(resets({x}[{int(window_seconds) + int(lookback_seconds)}s]) == 0)"
        # Anchored only far back: a gap across the window start, where an unseen restart is possible.
        gap_at_start = f"({anchor} unless {near})"
        # Series reporting now (E exists), without a reset and not across a gap: E alone is exact.
        exact_set = f"(({no_reset} unless {gap_at_start}) and {x})"
        estimates = f"{exact} or ({extrapolated} unless ignoring (enforcer_estimate) {exact_set})"
    else:
        raise ValueError(f"unknown query mode {mode!r}")
    return f"max without (enforcer_estimate) ({estimates})"


def parse_vector(payload: Any) -> List[Tuple[Dict[str, str], float]]:
    """Validate a /api/v1/query answer (values are strings in 2.42) and return (labels, value) pairs.
    An empty result is valid: no data means no spend."""
    if not isinstance(payload, dict):
        raise BackendError("bad_response", "Prometheus answered with something that is not a JSON object")
    if payload.get("status") != "success":
        raise BackendError("query_error", f"Prometheus query failed: {payload.get('errorType')}: {payload.get('error')}")
    data = payload.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise BackendError("bad_response", f"unexpected Prometheus result shape: {str(data)[:200]}")
    out: List[Tuple[Dict[str, str], float]] = []
    for item in data["result"]:
        try:
            labels = item["metric"]
            value = float(item["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            raise BackendError("bad_response", f"unexpected Prometheus sample: {str(item)[:200]}") from None
        if not math.isfinite(value):
            raise BackendError("bad_response", f"Prometheus returned a non-finite spend ({value}) for {labels}")
        out.append((labels, value))
    return out


def rows_from_vector(vector: Sequence[Tuple[Dict[str, str], float]]) -> Tuple[SpendRow, ...]:
    merged: Dict[Tuple[str, str], float] = {}
    for labels, value in vector:
        key = (labels.get("openclaw_provider") or UNKNOWN, labels.get("openclaw_model") or UNKNOWN)
        # A negative row cannot come from the query above; clamp defensively so a bug can never cancel out
        # another model's spend.
        merged[key] = merged.get(key, 0.0) + max(0.0, value)
    rows = [SpendRow(p, m, round(v, 6)) for (p, m), v in merged.items()]
    rows.sort(key=lambda r: (-r.usd, r.provider, r.model))
    return tuple(rows)


class PrometheusClient:
    """Minimal HTTP API client. Counts requests (the benchmark checks there is one per check)."""

    def __init__(self, base_url: str, timeout: float, session: Optional[requests.Session] = None):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "openclaw-budget-enforcer"
        self.requests_made = 0

    def _get(self, path: str, params: Dict[str, str]) -> requests.Response:
        self.requests_made += 1
        return self.session.get(self.base_url + path, params=params, timeout=self.timeout)

    def query(self, expr: str, at: Optional[datetime] = None, retries: int = 1) -> List[Tuple[Dict[str, str], float]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        attempt = 0
        while True:
            try:
                resp = self._get("/api/v1/query", params)
            except requests.RequestException as exc:
                error = BackendError("unreachable", f"Prometheus at {self.base_url} unreachable: {_short(exc)}")
            else:
                if resp.status_code == 200 or resp.status_code in (400, 422):
                    try:
                        payload = resp.json()
                    except ValueError:
                        raise BackendError("bad_response",
                                           f"Prometheus answered HTTP {resp.status_code} with non-JSON") from None
                    return parse_vector(payload)
                error = BackendError("http", f"Prometheus answered HTTP {resp.status_code}: {resp.text.strip()[:200]}")
            if attempt >= retries:
                raise error
            attempt += 1
            time.sleep(1.0)  # one short retry rides over a Prometheus restart or a dropped connection

    def ready(self) -> Tuple[bool, str]:
        try:
            resp = self._get("/-/ready", {})
        except requests.RequestException as exc:
            return False, _short(exc)
        return resp.status_code == 200, f"HTTP {resp.status_code} {resp.text.strip()[:80]}"


#: Labels that identify one by-model series: the gateway (resource) and the provider/model it sums.
BY_MODEL_GROUP = "job, instance, openclaw_provider, openclaw_model"
#: Label of the row by_model_query adds when the cost series did not add up to the sums.
FALLBACK_LABEL = "enforcer_fallback"
#: Label of coverage_query's rows measured from the by-model sums.
SIDE_LABEL = "enforcer_side"
FALLBACK_REASONS = {
    "unverified": "the by-model sums have not been found to measure the same spend as every cost series over "
                  "the whole window yet (first check, collector changed or upgraded within the window, a "
                  "difference found earlier still inside the window, or no check for longer than a window)",
    "differs": "since the last comparison, a gateway/provider/model's cost series did not add up to its "
               "by-model sum, or showed a restart the sum did not (a collector without the metrics_transform "
               "processor, a gateway restarted under the same labels, or an export half written)",
}
#: Largest difference, in USD, between a group's cost series and its by-model sum that is float rounding.
SUM_TOLERANCE_USD = 1e-6
#: How far the whole-window spend from the sums may differ from the per-series spend, per provider/model.
#: Both are exact for series without a counter reset; after a gateway restart in the window both take
#: max(exact, increase()), and increase()'s extrapolation differs between one summed series and its parts by
#: a few samples' worth. Above: erring toward blocking, the same as increase() does. Below: an under-count,
#: so only extrapolation noise (0.1%: half a 60 s export interval at each end of 24 h is 0.07%).
SUMS_ABOVE_TOLERANCE_USD = 0.01
SUMS_ABOVE_TOLERANCE_RATIO = 0.02
SUMS_BELOW_TOLERANCE_RATIO = 0.001
#: How often the by-model sums are checked against the cost series while they are used: the check reads
#: every cost series' samples since the previous one, so it grows with the series count. Cost that the sums
#: miss (a collector without the processor) is found at most this long after it is exported.
VERIFY_SECONDS = 300


def _each(selectors: Sequence[str], template: str, tag: str) -> str:
    """``template`` (with ``{x}`` for the selector) applied to each selector and or-ed, each result tagged
    ``enforcer_name=<tag><i>``: a function or an aggregation drops the metric name, and ``or`` keeps only the
    first of two rows with the same labels (two metric names with the same labels, or the cost side and the
    sum side of one group)."""
    return " or ".join(_name_tag(template.format(x=x), f"{tag}{i}") for i, x in enumerate(selectors))


def differs_query(by_model: Sequence[str], cost: Sequence[str], check_seconds: int) -> str:
    """The gateway/provider/models where the cost series and their by-model sum disagree in the last
    ``check_seconds``. A range rather than an instant, so that a series that came and went between two
    checks is seen too:

    * by value: the cost series at their last sample don't add up to the sum at its last sample (the
      collector writes both from one export): cost the sums miss, or sums that count wrong;
    * by resets: some cost series dropped (a gateway restarted under the same labels) but the sum did not,
      because the new process's first export already held more than the old one's last. The sum then lost
      the old process's spend, which the cost series still count.
    """
    r = f"[{int(check_seconds)}s]"
    group = f"({BY_MODEL_GROUP})"

    def per_group(fn: str) -> str:
        # Aggregated per selector first: the tags then go on a row per group, not on every cost series.
        return f"sum by {group} ({fn}({{x}}{r}))"

    both = (f"{_each(cost, per_group('last_over_time'), 'c')} or "
            f"{_each(by_model, '-' + per_group('last_over_time'), 's')}")
    by_value = f"abs(sum by {group} ({both})) > {SUM_TOLERANCE_USD}"
    cost_resets = f"sum by {group} ({_each(cost, per_group('resets'), 'c')}) > 0"
    sum_resets = f"sum by {group} ({_each(by_model, per_group('resets'), 's')}) > 0"
    return f"({by_value}) or (({cost_resets}) unless on {group} ({sum_resets}))"


def by_model_query(by_model: Sequence[str], cost: Sequence[str], window_seconds: int, mode: str = "exact",
                   check_seconds: Optional[int] = None) -> str:
    """Spend from the by-model series ``by_model`` (the collector's per-export sum over agents and channels).
    A by-model series is a cumulative counter of one gateway process like the series it sums, so
    ``spend_query``'s per-series rules apply to it unchanged, and its cost doesn't grow with the number of
    per-agent series ``cost``. With ``check_seconds``, plus a row labelled FALLBACK_LABEL="differs" when
    ``differs_query`` finds a group whose cost series did not add up to its sum in that time."""
    if not by_model or not cost:
        raise ValueError("by_model_query needs by-model and cost selectors")
    expr = spend_query(by_model, window_seconds, mode=mode)
    if check_seconds is None:
        return expr
    marker = f'label_replace({differs_query(by_model, cost, check_seconds)}, "{FALLBACK_LABEL}", "differs", "", "")'
    return f"{expr} or {marker}"


def coverage_query(by_model: Sequence[str], cost: Sequence[str], window_seconds: int, mode: str = "exact") -> str:
    """Spend from every cost series, and the same from the by-model sums in rows labelled SIDE_LABEL: the
    per-series answer, and whether the sums account for it (``compare_rows``)."""
    sums = spend_query(by_model, window_seconds, mode=mode)
    per_series = spend_query(cost, window_seconds, mode=mode)
    return f'{per_series} or label_replace({sums}, "{SIDE_LABEL}", "by-model", "", "")'


def compare_rows(by_model: Sequence[SpendRow], per_series: Sequence[SpendRow]) -> Tuple[Tuple[str, float, float], ...]:
    """The provider/models whose spend from the sums is below the per-series spend by more than
    extrapolation noise, or above it by more than the tolerance, or that have cost series but no sum at
    all: (label, by-model usd, per-series usd)."""
    sums = {(r.provider, r.model): r.usd for r in by_model}
    series = {(r.provider, r.model): r.usd for r in per_series}
    out = []
    for key in sorted(set(sums) | set(series)):
        a, b = sums.get(key), series.get(key)
        if (a is None or b is None or a < b - SUM_TOLERANCE_USD - SUMS_BELOW_TOLERANCE_RATIO * b
                or a > b + max(SUMS_ABOVE_TOLERANCE_USD, SUMS_ABOVE_TOLERANCE_RATIO * b)):
            out.append((f"{key[0]}/{key[1]}", a or 0.0, b or 0.0))
    return tuple(out)


def fetch_spend(client: PrometheusClient, selector: Union[str, Sequence[str]], window_seconds: int, at: datetime,
                mode: str = "exact", by_model: Sequence[str] = (), trusted: bool = False,
                check_seconds: Optional[int] = None) -> Spend:
    """Spend in the window ending ``at``, in one query: from the by-model series ``by_model`` when the caller
    ``trusted`` them (found covering the window before; with ``check_seconds``, checked again in the same
    query), else from every cost series ``selector`` names, compared with the sums when there are any. A
    trusted check whose comparison finds a difference measures every cost series in a second query."""
    cost = [selector] if isinstance(selector, str) else list(selector)
    if not by_model:
        expr = spend_query(cost, window_seconds, mode=mode)
        return _spend(client.query(expr, at=at), expr, at, source="per-series")
    fallback = "unverified"
    if trusted:
        expr = by_model_query(by_model, cost, window_seconds, mode, check_seconds)
        vector = client.query(expr, at=at)
        if not any(FALLBACK_LABEL in labels for labels, _ in vector):
            return _spend(vector, expr, at, source="by-model", verified=check_seconds is not None)
        fallback = "differs"
    expr = coverage_query(by_model, cost, window_seconds, mode)
    vector = client.query(expr, at=at)
    sums = rows_from_vector([(labels, v) for labels, v in vector if SIDE_LABEL in labels])
    spend = _spend([(labels, v) for labels, v in vector if SIDE_LABEL not in labels], expr, at,
                   source="per-series", fallback=fallback)
    differences = compare_rows(sums, spend.rows)
    return replace(spend, covered=not differences, differences=differences)


def _spend(vector: Sequence[Tuple[Dict[str, str], float]], expr: str, at: datetime, source: str,
           fallback: Optional[str] = None, verified: bool = False) -> Spend:
    rows = rows_from_vector(vector)
    return Spend(total=round(sum(r.usd for r in rows), 6), rows=rows, query=expr,
                 evaluated_at=at.astimezone(timezone.utc), source=source, fallback=fallback, verified=verified)


def _short(exc: BaseException) -> str:
    """A one-line reason without the long urllib3 repr chains."""
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "Read timed out"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200] if text else type(exc).__name__
