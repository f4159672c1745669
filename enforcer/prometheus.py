"""Spend from Prometheus: one instant query per check, broken down by provider and model.

Why not plain ``sum by (...) (increase(x[24h]))``: on Prometheus 2.42, ``increase()`` extrapolates to the
window edges and, worse for a budget, loses most of a series' first value (a new provider/model or a
gateway restart with a new instance label shows up already at $0.50 and increase() counts ~$0) — the
enforcer would under-count exactly when a new expensive model starts being used (otel-prometheus.md §3,
§4). The query below is still one instant query with a result size of one row per provider/model
(flat as series grow) but splits the series three ways, all evaluated server-side:

1. series that existed before the window and did not reset: exact ``last - value at window start``;
2. series born inside the window and not reset: exact ``last`` (an OTel cumulative counter starts at 0);
3. anything with a counter reset: ``increase()``, which adds the pre-reset value back (never loses or
   invents spend across a restart) at the cost of its extrapolation error, typically well under 1% when
   samples cover the window, larger for a series that appears and resets within a few export intervals.

"Existed before" means: a sample within LOOKBACK before the window start. A series with a longer gap
there is counted as born, i.e. its whole value counts — the error then errs toward blocking, never
toward silently allowing spend.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence, Tuple

import requests

LOOKBACK_SECONDS = 900
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

    def top(self, n: int = 3) -> Tuple[SpendRow, ...]:
        return tuple(r for r in self.rows if r.usd > 0)[:n]


def spend_query(selector: str, window_seconds: int, lookback_seconds: int = LOOKBACK_SECONDS) -> str:
    """The single PromQL expression for spend in ``(t - window_seconds, t]``, by provider and model."""
    w = f"{int(window_seconds)}s"
    wl = f"{int(window_seconds) + int(lookback_seconds)}s"
    lb = f"{int(lookback_seconds)}s"
    x = selector
    last = f"last_over_time({x}[{w}])"
    start = f"last_over_time({x}[{lb}] offset {w})"
    no_reset = f"(resets({x}[{wl}]) == 0)"
    return (
        "sum by (openclaw_provider, openclaw_model) ("
        f"(({last} - {start}) and {no_reset})"
        f" or (({last} unless {start}) and {no_reset})"
        f" or increase({x}[{w}])"
        ")"
    )


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


def fetch_spend(client: PrometheusClient, selector: str, window_seconds: int, at: datetime) -> Spend:
    expr = spend_query(selector, window_seconds)
    vector = client.query(expr, at=at)
    rows = rows_from_vector(vector)
    return Spend(total=round(sum(r.usd for r in rows), 6), rows=rows, query=expr,
                 evaluated_at=at.astimezone(timezone.utc))


def _short(exc: BaseException) -> str:
    """A one-line reason without the long urllib3 repr chains."""
    text = str(exc)
    for marker in ("Connection refused", "timed out", "Name or service not known", "Read timed out"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200] if text else type(exc).__name__
