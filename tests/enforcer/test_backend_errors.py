"""Prometheus down under each BUDGET_ON_BACKEND_ERROR policy (real Prometheus, stopped and restarted):
the policy decides the flag, the failure is reported once (not every run), recovery is reported once."""
from __future__ import annotations

import time

import pytest

from tests.enforcer.helpers.prom import cost_labels, counter_samples

H = 3600.0


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["closed", "open", "hold"])
@pytest.mark.parametrize("spent", [5.5, 1.0], ids=["was-blocked", "was-ok"])
def test_prometheus_down_then_back(policy, spent, start_prometheus, make_enforcer, matrix):
    now = time.time()
    samples = counter_samples(now - 26 * H, now, 60, [(now - 26 * H, 1.0), (now - 2 * H, spent)])
    prom = start_prometheus([(cost_labels("anthropic", "claude-sonnet-4"), samples)], now=now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room, BUDGET_ON_BACKEND_ERROR=policy)
    was_blocked = spent > 5
    enf.check(now=now)
    assert enf.flag.exists() == was_blocked
    before = len(matrix.bodies(room))
    assert before == (1 if was_blocked else 0)
    flag_before = enf.flag_json()

    prom.stop()
    for i in range(3):  # three failing checks: one message, exit code 2 each time
        proc = enf.check(now=now + 60 * (i + 1), expect_rc=2)
        assert "backend=down" in proc.stdout and f"policy={policy}" in proc.stdout
        assert len(proc.stdout.strip().splitlines()) == 1
    bodies = matrix.bodies(room)
    assert len(bodies) == before + 1, bodies
    down = bodies[-1]
    assert "cannot measure spend" in down and "Connection refused" in down

    flag = enf.flag_json()
    if policy == "closed":
        assert flag is not None and "Prometheus unreachable and policy is closed" in flag["reason"]
        assert flag["spent_usd"] is None and flag["cap_usd"] == 5.0
        assert "BLOCKED until spend can be measured" in down
    elif policy == "open":
        assert flag is None  # explicitly lifted, and said so loudly
        assert "NOT blocked" in down and "UNCHECKED" in down
    else:
        assert flag == flag_before  # hold keeps the last decision byte for byte
        assert "keeping the last decision" in down
    metrics = enf.metrics.read_text()
    assert 'openclaw_budget_check_errors_total{reason="unreachable"} 3' in metrics
    assert "openclaw_budget_backend_up 0" in metrics

    prom.restart()
    enf.check(now=now + 300)
    bodies = matrix.bodies(room)
    assert len(bodies) == before + 2
    assert "can measure spend again" in bodies[-1]
    assert enf.flag.exists() == was_blocked
    if was_blocked:
        assert "daily budget exceeded" in enf.flag_json()["reason"]
    enf.check(now=now + 360)
    assert len(matrix.bodies(room)) == before + 2  # nothing more to say


def test_bad_query_is_a_backend_error_not_zero(start_prometheus, make_enforcer):
    """A query Prometheus rejects must not read as "no spend" (fail-open by accident)."""
    now = time.time()
    prom = start_prometheus([], now=now)
    enf = make_enforcer(prom.url, BUDGET_COST_SELECTOR="openclaw_cost_usd_total{", BUDGET_ON_BACKEND_ERROR="closed")
    proc = enf.check(now=now, expect_rc=2)
    assert "parse error" in proc.stdout or "bad_data" in proc.stdout
    assert enf.flag_json()["spent_usd"] is None
