"""doctor against real Prometheus and Synapse: a missing price (tokens without cost) is a failing line,
Matrix token and room membership are checked, and Prometheus is compared with OpenClaw's ledger."""
from __future__ import annotations

import json
import subprocess
import time

from enforcer import doctor
from enforcer.settings import load
from tests.enforcer.helpers.prom import cost_labels, counter_samples, token_labels

H = 3600.0


def test_doctor_finds_missing_price_and_checks_matrix(start_prometheus, make_enforcer, matrix):
    now = time.time()
    start = now - 5 * H
    history = [
        (token_labels("anthropic", "claude-sonnet-4"), counter_samples(start, now, 60, [(now - 2 * H, 1200)])),
        (cost_labels("anthropic", "claude-sonnet-4"), counter_samples(start, now, 60, [(now - 2 * H, 0.01)])),
        # tokens flowing, no cost series at all: a model without a price in openclaw.json
        (token_labels("openrouter", "new/unpriced-model"), counter_samples(start, now, 60, [(now - 1 * H, 900)])),
        # deliberately free (Gemini via OAuth free tier in the reference stack)
        (token_labels("google", "gemini-2.5-flash"), counter_samples(start, now, 60, [(now - 1 * H, 500)])),
    ]
    prom = start_prometheus(history, now=now)
    enf = make_enforcer(prom.url, matrix, BUDGET_FREE_MODELS="google/*")
    proc = enf.run("doctor", now=now)
    out = proc.stdout
    assert proc.returncode == 5, out + proc.stderr  # a failing check
    lines = {line.split("]", 1)[1].split(":", 1)[0].strip(): line for line in out.splitlines()}
    assert lines["prometheus reachable"].startswith("[  ok]")
    assert lines["openclaw_tokens_total present"].startswith("[  ok]")
    anomaly = lines["zero-cost anomaly"]
    assert anomaly.startswith("[FAIL]") and "openrouter/new/unpriced-model" in anomaly and "fix:" in anomaly
    assert "google" not in anomaly
    assert lines["matrix token"].startswith("[  ok]") and "@budgetbot:localhost" in lines["matrix token"]
    assert lines["matrix room"].startswith("[  ok]")
    assert lines["flag path writable"].startswith("[  ok]")

    # bot not in the room, and a revoked token
    reader_room = matrix.server.api(matrix.reader_token, "POST", "/_matrix/client/v3/createRoom",
                                    json={"preset": "private_chat"})["room_id"]
    out = enf.run("doctor", now=now, extra={"MATRIX_ROOM_ID": reader_room}).stdout
    assert "[FAIL] matrix room: @budgetbot:localhost is not joined" in out and "invite" in out
    out = enf.run("doctor", now=now, extra={"MATRIX_ACCESS_TOKEN": "syt_fake_revoked_token"}).stdout
    assert "[FAIL] matrix token" in out and "M_UNKNOWN_TOKEN" in out


def test_doctor_reports_unreachable_prometheus_and_unwritable_flag(make_enforcer, tmp_path):
    enf = make_enforcer("http://127.0.0.1:9", BUDGET_FLAG_FILE=str(tmp_path / "missing-dir" / "flag"))
    proc = enf.run("doctor")
    assert proc.returncode == 5
    assert "[FAIL] prometheus reachable" in proc.stdout and "Connection refused" in proc.stdout
    assert "[FAIL] flag path writable" in proc.stdout and "fix:" in proc.stdout
    assert "[warn] matrix" in proc.stdout


def _cli_result(payloads):
    calls = []

    def run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, json.dumps(payloads[min(len(calls), len(payloads)) - 1]), "")

    return run, calls


def test_ledger_is_retried_while_refreshing():
    refreshing = {"totals": {"totalCost": 0}, "cacheStatus": {"status": "refreshing"}}
    fresh = {"totals": {"totalCost": 0.006, "missingCostEntries": 0}, "cacheStatus": {"status": "fresh"}}
    run, calls = _cli_result([refreshing, refreshing, fresh])
    settings = load({"PROMETHEUS_URL": "http://127.0.0.1:9", "BUDGET_STATE_DIR": "/tmp/x",
                     "BUDGET_OPENCLAW_CLI": "docker exec -i openclaw-gateway node /app/dist/entry.js"})
    ledger = doctor.openclaw_ledger(settings, run=run, delay=0)
    assert ledger["totals"]["totalCost"] == 0.006 and len(calls) == 3
    assert calls[0] == ["docker", "exec", "-i", "openclaw-gateway", "node", "/app/dist/entry.js", "gateway",
                        "usage-cost", "--days", "1", "--json"]


def test_ledger_comparison():
    fresh = lambda usd, missing=0: {"totals": {"totalCost": usd, "missingCostEntries": missing},  # noqa: E731
                                    "cacheStatus": {"status": "fresh"}}
    assert doctor.compare_ledger(1.00, fresh(1.05)).status == doctor.OK
    line = doctor.compare_ledger(1.00, fresh(1.25))
    assert line.status == doctor.FAIL and "over 10%" in line.detail
    assert doctor.compare_ledger(0.0, fresh(0.004)).status == doctor.OK  # below a cent: noise
    assert doctor.compare_ledger(1.0, fresh(1.0, missing=3)).status == doctor.FAIL
    assert doctor.compare_ledger(1.0, {"totals": {"totalCost": 0}, "_still_refreshing": True}).status == doctor.WARN
