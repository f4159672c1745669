"""check against real Prometheus 2.42 and real Synapse: no data, under, warn, over, recovery when the
rolling window moves on — each transition exactly one Matrix message, the flag per the shared contract."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.enforcer.helpers.prom import cost_labels, counter_samples
from tests.support import tools

H = 3600.0


def _series(now, events, provider="anthropic", model="claude-sonnet-4", start_h=30, **labels):
    return (cost_labels(provider, model, **labels), counter_samples(now - start_h * H, now, 60, events))


def test_no_data_is_zero_and_ok(start_prometheus, make_enforcer, matrix):
    now = time.time()
    prom = start_prometheus([], now=now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room)
    proc = enf.check(now=now)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # one log line per check
    assert "state=ok" in lines[0] and "spent_usd=0.00" in lines[0]
    assert not enf.flag.exists()
    assert matrix.bodies(room) == []
    status = json.loads(enf.run("status", "--json", now=now).stdout)
    assert status["spent_usd"] == 0 and status["state"] == "ok" and status["top"] == []


def test_under_warn_over_then_recover_when_window_moves(start_prometheus, make_enforcer, matrix):
    now = time.time()
    # $1.00 twenty hours ago, then $3.30 at -2h (warn at $4.30 = 86%), then $1.50 at -30m (over: $5.80)
    history = [
        _series(now, [(now - 29 * H, 7.0), (now - 20 * H, 1.0), (now - 2 * H, 3.3)], "anthropic", "claude-sonnet-4"),
        _series(now, [(now - 20 * H - 60, 0.0), (now - 0.5 * H, 1.2)], "openai", "gpt-5"),
        _series(now, [(now - 0.5 * H, 0.3)], "openrouter", "google/gemini-2.5-flash", start_h=1),
    ]
    prom = start_prometheus(history, now=now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room, BUDGET_TZ="Europe/Rome")

    # under: at -3h only the $1.00 from -20h counts
    out = enf.check(now=now - 3 * H).stdout
    assert "state=ok" in out and "spent_usd=1.00" in out
    assert matrix.bodies(room) == []

    # warn: at -1h, $4.30 = 86% of $5
    out = enf.check(now=now - 1 * H).stdout
    assert "state=warn" in out and "spent_usd=4.30" in out
    bodies = matrix.bodies(room)
    assert len(bodies) == 1 and "warning" in bodies[0] and "$4.30 of $5.00 (86%)" in bodies[0]
    enf.check(now=now - 1 * H + 60)
    assert len(matrix.bodies(room)) == 1  # still warn: no second message
    assert not enf.flag.exists()

    # over: $5.80
    out = enf.check(now=now).stdout
    assert "state=blocked" in out and "blocked=1" in out
    flag = enf.flag_json()
    assert flag["version"] == 1 and flag["state"] == "blocked"
    assert flag["spent_usd"] == pytest.approx(5.80, abs=1e-6) and flag["cap_usd"] == 5.0
    assert flag["window"] == "rolling-24h" and flag["timezone"] == "Europe/Rome"
    assert "daily budget exceeded" in flag["reason"] and flag["lift_hint"]
    assert flag["resets_at"].endswith(("+01:00", "+02:00"))  # local time with offset
    assert oct(enf.flag.stat().st_mode & 0o777) == "0o644"
    bodies = matrix.bodies(room)
    assert len(bodies) == 2
    blocked = bodies[1]
    assert "BLOCKED" in blocked and "$5.80 of $5.00 (116%)" in blocked
    # top three spenders, biggest first
    assert "anthropic/claude-sonnet-4 $4.30, openai/gpt-5 $1.20, openrouter/google/gemini-2.5-flash $0.30" in blocked
    assert "Rolling 24 h window" in blocked and "allow --for" in blocked
    enf.check(now=now + 60)
    assert len(matrix.bodies(room)) == 2  # still blocked: no second message

    # the window moves on: at +4.5h the $1.00 from -20h has left -> $4.80, still blocked? no: under cap
    out = enf.check(now=now + 4.5 * H).stdout
    assert "spent_usd=4.80" in out and "state=warn" in out and "blocked=0" in out
    assert not enf.flag.exists()
    bodies = matrix.bodies(room)
    assert len(bodies) == 3 and "allowed again" in bodies[2] and "$4.80 of $5.00 (96%)" in bodies[2]

    # metrics file: valid exposition format (promtool), blocked back to 0, counters persisted
    lint = subprocess.run([str(tools.promtool_bin()), "check", "metrics"], input=enf.metrics.read_text(),
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    metrics = enf.metrics.read_text()
    assert "openclaw_budget_blocked 0" in metrics
    assert "openclaw_budget_alerts_sent_total 3" in metrics
    assert "openclaw_budget_checks_total 6" in metrics

    # decision log: one JSON line per check, with the query and the decision
    journal = enf.journal()
    assert [j["state"] for j in journal] == ["ok", "warn", "warn", "blocked", "blocked", "warn"]
    assert [j["message"] for j in journal] == [None, "warn", None, "blocked", None, "recovered"]
    assert all("sum by (openclaw_provider, openclaw_model)" in j["query"] for j in journal)

    # the Matrix token appears nowhere: not in output, state, journal, flag or metrics
    outputs = "".join(p.stdout + p.stderr for p in enf.runs)
    files = "".join(f.read_text() for f in list(enf.state_dir.iterdir()) + [enf.metrics] if f.is_file())
    assert matrix.bot_token not in outputs + files


def test_per_model_cap_blocks_with_scope_in_reason(start_prometheus, make_enforcer, matrix):
    now = time.time()
    history = [
        _series(now, [(now - 29 * H, 1.0), (now - 2 * H, 1.3)], "anthropic", "claude-opus-4"),
        _series(now, [(now - 29 * H, 1.0), (now - 2 * H, 0.4)], "openai", "gpt-5"),
    ]
    prom = start_prometheus(history, now=now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room, BUDGET_MODEL_CAPS='{"anthropic/claude-opus-4": 1.0}')
    out = enf.check(now=now).stdout
    assert "state=blocked" in out and "scope=anthropic/claude-opus-4" in out
    flag = enf.flag_json()
    assert flag["cap_usd"] == 1.0 and flag["spent_usd"] == pytest.approx(1.3, abs=1e-6)
    assert "budget for anthropic/claude-opus-4 exceeded" in flag["reason"]
    body = matrix.bodies(room)[0]
    assert "$1.30 of $1.00 (130%) for anthropic/claude-opus-4" in body and "total $1.70 of $5.00 (34%)" in body
    assert 'openclaw_budget_scope_cap_usd{scope="anthropic/claude-opus-4"} 1' in enf.metrics.read_text()
