"""The metrics pipeline end to end, on real components: a real OpenClaw emits, the budget enforcer blocks.

OpenClaw 2026.4.26 (bundled ``diagnostics-otel``; tests/support/otlp_emitter.py) answers messages sent
through the Gateway RPC ``chat.send`` with a fake OpenAI-compatible model (1000 input + 200 output tokens,
0.006 USD per message at our per-model prices) and exports OTLP with the ``diagnostics.otel`` block our
gateway component renders; the ocb-built OpenTelemetry Collector runs the config ``render_collector_config``
renders for a remote-write stack and writes into a real Prometheus 2.42; ``python -m enforcer check`` reads
that Prometheus.  Only addresses differ from a deployment (free loopback ports) and the export is fast
(flushIntervalMs 1000, batch timeout 1 s) so the test doesn't wait 30 s per step.

What is checked: the two series the enforcer relies on exist under their contract names with the expected
labels and exact values, the enforcer's own spend query reads them exactly, and a cap just above the spend
stays open until one more message crosses it, when the check writes the flag the gate reads. Then a message
to a second agent makes the model's cost two series, and the collector's by-model sum (what the enforcer
reads on its fast path) adds them up exactly, export by export, with the timestamps of the series it sums:
a window that starts after the sum began is measured from it in one query, with the per-series answer.
"""
from __future__ import annotations

import json
import os
import stat
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict

import pytest

from enforcer.prometheus import PrometheusClient, fetch_spend
from enforcer.settings import (DEFAULT_BY_MODEL_NAMES, DEFAULT_BY_MODEL_SELECTOR, DEFAULT_COST_NAMES,
                               DEFAULT_COST_SELECTOR, DEFAULT_TOKENS_SELECTOR)
from tests.enforcer.conftest import Enforcer
from tests.support.metrics_pipeline import (
    COST_SERIES,
    INPUT_TOKENS_PER_MESSAGE,
    OUTPUT_TOKENS_PER_MESSAGE,
    TOKENS_SERIES,
    USD_PER_MESSAGE,
    MetricsPipeline,
    Vector,
    total,
)
from tests.support.openclaw_gateway import MODEL_ID, PROVIDER_ID
from tests.support.otlp_emitter import SECOND_AGENT, SECOND_AGENT_SESSION_KEY, install_attempts

pytestmark = pytest.mark.slow

#: Time for one sample to travel gateway -> collector -> Prometheus with a 1 s flush and a 1 s batch timeout,
#: with a wide margin for a loaded 2-core CI machine.
SERIES_TIMEOUT = 90
EPSILON = 1e-9


@pytest.fixture
def pipeline(tmp_path: Path):
    with MetricsPipeline(tmp_path / "pipeline", flush_interval_ms=1000, batch_timeout_seconds=1.0) as pipe:
        yield pipe


def make_enforcer(pipe: MetricsPipeline, workdir: Path, cap_usd: float) -> Enforcer:
    """The enforcer CLI as its systemd unit runs it: environment only, no Matrix (optional)."""
    workdir.mkdir(parents=True, exist_ok=True)
    assert pipe.prom is not None
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PROMETHEUS_URL": pipe.prom.url,
        "MAX_DAILY_USD": repr(cap_usd),
        "BUDGET_WARN_RATIO": "0.9",
        "BUDGET_STATE_DIR": str(workdir / "state"),
        "BUDGET_FLAG_FILE": str(workdir / "flag" / "openclaw-budget-exceeded"),
        "BUDGET_METRICS_FILE": str(workdir / "metrics" / "openclaw_budget.prom"),
        "BUDGET_HTTP_TIMEOUT": "10",
    }
    for sub in ("flag", "metrics"):
        (workdir / sub).mkdir(exist_ok=True)
    return Enforcer(env, workdir / "state", Path(env["BUDGET_FLAG_FILE"]), Path(env["BUDGET_METRICS_FILE"]))


def tokens_by_kind(vector: Vector) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for sample in vector:
        kind = sample["metric"].get("openclaw_token", "?")
        out[kind] = out.get(kind, 0.0) + float(sample["value"][1])
    return out


def wait_for_cost(pipe: MetricsPipeline, usd: float) -> Vector:
    return pipe.wait_for(DEFAULT_COST_SELECTOR, lambda v: total(v) >= usd - EPSILON, SERIES_TIMEOUT,
                         f"cost series reaching {usd:.3f} USD")


def test_gateway_cost_reaches_prometheus_and_the_enforcer_blocks(pipeline: MetricsPipeline, tmp_path: Path) -> None:
    pipe = pipeline
    assert pipe.gateway is not None and pipe.fake is not None

    # -- three messages through the webchat path ----------------------------------------------------------
    for i in range(3):
        pipe.gateway.send_message(f"message {i + 1}")
    assert pipe.fake.completion_count() == 3

    cost = wait_for_cost(pipe, 3 * USD_PER_MESSAGE)
    assert [s["metric"]["__name__"] for s in cost] == [COST_SERIES], cost  # unit "1": no _USD suffix
    assert total(cost) == pytest.approx(3 * USD_PER_MESSAGE, abs=EPSILON)
    labels = cost[0]["metric"]
    assert labels["openclaw_provider"] == PROVIDER_ID
    assert labels["openclaw_model"] == MODEL_ID
    assert labels["openclaw_channel"] == "webchat"
    assert labels["job"] == pipe.otel["serviceName"]  # resource service.name from our rendered block
    assert labels["otel_scope_name"] == "openclaw"
    assert "instance" not in labels  # the gateway sets no service.instance.id (openclaw.md §1)
    # Docs list openclaw.agent on openclaw.tokens only; the 2026.4.26 code puts it on the cost too.
    assert labels.get("openclaw_agent") == "main", labels

    tokens = pipe.wait_for(DEFAULT_TOKENS_SELECTOR,
                           lambda v: tokens_by_kind(v).get("output", 0) >= 3 * OUTPUT_TOKENS_PER_MESSAGE,
                           SERIES_TIMEOUT, "token series")
    assert {s["metric"]["__name__"] for s in tokens} == {TOKENS_SERIES}
    by_kind = tokens_by_kind(tokens)
    assert by_kind["input"] == 3 * INPUT_TOKENS_PER_MESSAGE
    assert by_kind["output"] == 3 * OUTPUT_TOKENS_PER_MESSAGE
    for sample in tokens:
        token_labels = sample["metric"]
        assert (token_labels["openclaw_provider"], token_labels["openclaw_model"],
                token_labels["openclaw_channel"], token_labels.get("openclaw_agent")) == (
                    PROVIDER_ID, MODEL_ID, "webchat", "main"), token_labels

    # -- a cap just above the spend so far: the enforcer reads the spend exactly and stays open -----------
    cap = 3 * USD_PER_MESSAGE + USD_PER_MESSAGE / 2
    enforcer = make_enforcer(pipe, tmp_path / "enforcer", cap)
    first = enforcer.check()
    decision = enforcer.journal()[-1]
    assert decision["state"] == "ok" and decision["blocked"] is False, first.stdout
    assert decision["spent_usd"] == pytest.approx(3 * USD_PER_MESSAGE, abs=1e-6)
    assert decision["top"] == [{"provider": PROVIDER_ID, "model": MODEL_ID, "usd": pytest.approx(0.018, abs=1e-6)}]
    assert not enforcer.flag.exists()

    # -- one more message crosses the cap: the next check blocks and writes the flag ----------------------
    pipe.gateway.send_message("message 4")
    wait_for_cost(pipe, 4 * USD_PER_MESSAGE)
    second = enforcer.check()
    decision = enforcer.journal()[-1]
    assert decision["state"] == "blocked" and decision["blocked"] is True, second.stdout
    assert decision["spent_usd"] == pytest.approx(4 * USD_PER_MESSAGE, abs=1e-6)
    assert "state=blocked blocked=1" in second.stdout

    flag = enforcer.flag_json()
    assert flag is not None, f"no flag file at {enforcer.flag}"
    assert stat.S_IMODE(enforcer.flag.stat().st_mode) == 0o644
    assert flag["version"] == 1 and flag["state"] == "blocked"
    assert flag["spent_usd"] == pytest.approx(4 * USD_PER_MESSAGE, abs=1e-6)
    assert flag["cap_usd"] == pytest.approx(cap)
    assert flag["window"] == "rolling-24h" and flag["timezone"] == "UTC"
    assert flag["reason"] and flag["lift_hint"]
    for key in ("since", "resets_at", "written_at"):
        assert "T" in flag[key] and (flag[key].endswith("+00:00") or flag[key].endswith("Z")), (key, flag)
    assert set(flag) >= {"version", "state", "reason", "spent_usd", "cap_usd", "window", "since", "resets_at",
                         "timezone", "lift_hint", "written_at"}, json.dumps(flag)

    # -- a second agent on the same model: two cost series, one by-model sum -----------------------------
    fast_window_start = time.time() + 1  # after message 4's cost landed: the window holds message 5 only
    pipe.gateway.send_message("message 5", session_key=SECOND_AGENT_SESSION_KEY)
    cost = wait_for_cost(pipe, 5 * USD_PER_MESSAGE)
    by_agent = {s["metric"].get("openclaw_agent"): float(s["value"][1]) for s in cost}
    assert by_agent == {"main": pytest.approx(4 * USD_PER_MESSAGE, abs=EPSILON),
                        SECOND_AGENT: pytest.approx(USD_PER_MESSAGE, abs=EPSILON)}, cost
    by_model = pipe.wait_for(DEFAULT_BY_MODEL_SELECTOR, lambda v: total(v) >= 5 * USD_PER_MESSAGE - EPSILON,
                             SERIES_TIMEOUT, "by-model sum reaching 0.030 USD")
    assert [s["metric"]["__name__"] for s in by_model] == [DEFAULT_BY_MODEL_NAMES[0]], by_model
    sum_labels = by_model[0]["metric"]
    assert (sum_labels["openclaw_provider"], sum_labels["openclaw_model"], sum_labels["job"]) == (
        PROVIDER_ID, MODEL_ID, pipe.otel["serviceName"])
    assert "openclaw_agent" not in sum_labels and "openclaw_channel" not in sum_labels, sum_labels
    # The latest export: the sum equals the series it sums, written with the same timestamp. (Whether any
    # cost lacks a sum, over the whole run, is the coverage comparison below.)
    mismatch = pipe.query(f"sum by (job, openclaw_provider, openclaw_model) ({DEFAULT_COST_SELECTOR}) "
                          f"!= on (job, openclaw_provider, openclaw_model) {DEFAULT_BY_MODEL_SELECTOR}")
    assert mismatch == [], mismatch
    newest = pipe.query(f"max by (job) (timestamp({DEFAULT_COST_SELECTOR})) "
                        f"- on (job) max by (job) (timestamp({DEFAULT_BY_MODEL_SELECTOR}))")
    assert [float(s["value"][1]) for s in newest] == [0.0], newest

    # The enforcer on a window that starts after the sum began: compared with every cost series, the sum
    # measures the same spend (so checks may use it), and alone it gives the same rows in one query.
    at = datetime.now(timezone.utc)
    window = int(at.timestamp() - fast_window_start)
    compared = fetch_spend(PrometheusClient(pipe.prom.url, 10), DEFAULT_COST_NAMES, window, at,
                           by_model=DEFAULT_BY_MODEL_NAMES)
    assert (compared.covered, compared.differences) == (True, ()), compared
    assert compared.total == pytest.approx(USD_PER_MESSAGE, abs=1e-9)
    client = PrometheusClient(pipe.prom.url, 10)
    fast = fetch_spend(client, DEFAULT_COST_NAMES, window, at, by_model=DEFAULT_BY_MODEL_NAMES, trusted=True,
                       check_seconds=window)
    assert (fast.source, fast.fallback, fast.verified, client.requests_made) == ("by-model", None, True, 1), fast
    assert fast.rows == compared.rows
    # Over 24 h too: the collector summed from its first export, so a new install is covered at once.
    day = fetch_spend(PrometheusClient(pipe.prom.url, 10), DEFAULT_COST_NAMES, 86400, at,
                      by_model=DEFAULT_BY_MODEL_NAMES)
    assert (day.covered, day.differences) == (True, ()), day

    # The model was called exactly once per message: nothing else (heartbeat, retries) spent money.
    assert pipe.fake.completion_count() == 5
    # Everything ran from the staged runtime deps: OpenClaw attempted no npm install.
    assert install_attempts(pipe.gateway.stage_dir, since=pipe.gateway.started_at) == []
    # The collector took every export as it came: no warning (e.g. a deprecated key) and no error (e.g. a
    # delta-temporality sum dropped by the remote-write exporter) in its log.
    assert pipe.collector is not None and pipe.collector.running, pipe.logs()
    complaints = [line for line in pipe.collector.tail(10_000).splitlines()
                  if "\twarn\t" in line or "\terror\t" in line]
    assert not complaints, complaints
