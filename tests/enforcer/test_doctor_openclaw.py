"""doctor's ledger check against a real OpenClaw 2026.9.6 gateway: one priced agent run (100,000 input +
4,000 output tokens at 3 / 15 USD per 1M = $0.36), the same spend in a real Prometheus, and
`openclaw gateway usage-cost --days 1 --json` through BUDGET_OPENCLAW_CLI (retried while its cache
refreshes). Then Prometheus disagrees by more than 10% and doctor says so."""
from __future__ import annotations

import time

import pytest

from tests.enforcer.helpers.prom import cost_labels, token_labels
from tests.support.fake_openai import FakeOpenAI
from tests.support.openclaw_gateway import MODEL_ID, PROVIDER_ID, OpenClawGateway


def _line(out: str, name: str) -> str:
    found = [line for line in out.splitlines() if f"] {name}:" in line]
    assert found, out
    return found[0]


@pytest.mark.slow
def test_prometheus_against_openclaw_ledger(tmp_path, start_prometheus, make_enforcer):
    with FakeOpenAI(prompt_tokens=100_000, completion_tokens=4_000) as model:
        gateway = OpenClawGateway(tmp_path / "gateway", model.base_url)
        gateway.start()
        try:
            result = gateway.agent("ping")
            assert result.ok, result.describe()
            now = time.time()
            labels = cost_labels(PROVIDER_ID, MODEL_ID)
            prom = start_prometheus([
                (labels, [(now - 120, 0.0), (now - 60, 0.36)]),
                (token_labels(PROVIDER_ID, MODEL_ID), [(now - 120, 0.0), (now - 60, 1200.0)]),
            ], now=now)
            enf = make_enforcer(prom.url, BUDGET_WINDOW="calendar-day", BUDGET_TZ="UTC",
                                BUDGET_OPENCLAW_CLI=gateway.openclaw_command())
            cli_env = dict(gateway.env)
            # doctor already retries while OpenClaw's usage cache refreshes; on a slow machine the cache can
            # take longer than that, and doctor then warns "still refreshing" (correctly): ask again.
            for _ in range(4):
                proc = enf.run("doctor", extra=cli_env, timeout=300)
                line = _line(proc.stdout, "prometheus vs openclaw ledger")
                if "still refreshing" not in line:
                    break
            assert line.startswith("[  ok]"), proc.stdout + proc.stderr
            assert "OpenClaw ledger $0.3600" in line and "Prometheus $0.3600" in line

            # Prometheus now says $0.46 (another $0.10 that OpenClaw never recorded): > 10% apart
            prom.push([(labels, [(time.time(), 0.46)])])
            proc = enf.run("doctor", extra=cli_env, timeout=300)
            line = _line(proc.stdout, "prometheus vs openclaw ledger")
            assert line.startswith("[FAIL]") and "over 10%" in line and "fix:" in line, proc.stdout
        finally:
            gateway.stop()
