"""Faults and operator actions against real Prometheus and Synapse: Matrix down then up (delivered later,
exactly once), crashes between the steps of a check, two overlapping runs, allow --for, and dry run."""
from __future__ import annotations

import time

import pytest

from tests.enforcer.helpers.prom import cost_labels, counter_samples

H = 3600.0


def _over_budget(start_prometheus, now, usd=5.5):
    samples = counter_samples(now - 26 * H, now, 60, [(now - 26 * H, 2.0), (now - 1 * H, usd)])
    return start_prometheus([(cost_labels("anthropic", "claude-sonnet-4"), samples)], now=now)


@pytest.mark.slow
def test_matrix_down_then_up_delivers_once(start_prometheus, make_enforcer, matrix):
    now = time.time()
    prom = _over_budget(start_prometheus, now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room)
    matrix.server.stop()
    try:
        proc = enf.check(now=now)  # the decision and the flag do not wait for Matrix
        assert "state=blocked" in proc.stdout and "queued=1" in proc.stdout
        assert enf.flag.exists()
        assert "Matrix delivery failed" in proc.stderr
        proc = enf.check(now=now + 60)
        assert "queued=1" in proc.stdout  # still one message, not two
        metrics = enf.metrics.read_text()
        assert "openclaw_budget_alerts_failed_total 2" in metrics and "openclaw_budget_alerts_queued 1" in metrics
    finally:
        matrix.server.start()
    proc = enf.check(now=now + 120)
    assert "queued=0" in proc.stdout
    enf.check(now=now + 180)
    bodies = matrix.bodies(room)
    assert len(bodies) == 1 and "BLOCKED" in bodies[0]
    assert "openclaw_budget_alerts_sent_total 1" in enf.metrics.read_text()


@pytest.mark.parametrize("crash_at", ["after-flag", "after-state"])
def test_crash_between_steps_is_repaired_by_next_run(crash_at, start_prometheus, make_enforcer, matrix):
    now = time.time()
    prom = _over_budget(start_prometheus, now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room)
    proc = enf.run("check", now=now, extra={"BUDGET_TEST_CRASH_AT": crash_at})
    assert proc.returncode == 86, proc.stderr  # died mid-check, like a power cut
    state = enf.state()
    assert state["enforced"] is True and len(state["outbox"]) == 1  # decision and message saved together
    assert enf.flag.exists() == (crash_at == "after-flag")
    assert matrix.bodies(room) == []
    leftovers = [p.name for p in enf.flag.parent.iterdir() if p.name != enf.flag.name]
    assert leftovers == []  # never a half-written temp file next to the flag

    proc = enf.check(now=now + 30)
    assert enf.flag.exists() and enf.flag_json()["state"] == "blocked"
    assert enf.state()["outbox"] == []
    enf.check(now=now + 60)
    bodies = matrix.bodies(room)
    assert len(bodies) == 1 and "BLOCKED" in bodies[0]


def test_crash_during_recovery_removes_flag_next_run(start_prometheus, make_enforcer, matrix):
    now = time.time()
    samples = counter_samples(now - 26 * H, now, 60, [(now - 26 * H, 2.0), (now - 20 * H, 5.5)])
    prom = start_prometheus([(cost_labels("anthropic", "claude-sonnet-4"), samples)], now=now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room)
    enf.check(now=now)
    assert enf.flag.exists()
    proc = enf.run("check", now=now + 5 * H, extra={"BUDGET_TEST_CRASH_AT": "after-state"})
    assert proc.returncode == 86
    assert enf.flag.exists()  # state says "not blocked" but the crash came before the removal
    enf.check(now=now + 5 * H + 30)
    assert not enf.flag.exists()
    bodies = matrix.bodies(room)
    assert len(bodies) == 2 and "allowed again" in bodies[1]


def test_two_overlapping_runs_do_not_interleave(start_prometheus, make_enforcer, matrix):
    now = time.time()
    prom = _over_budget(start_prometheus, now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room)
    first = enf.popen("check", now=now, extra={"BUDGET_TEST_HOLD_LOCK": "2"})
    time.sleep(0.7)
    started = time.monotonic()
    second = enf.check(now=now + 1)
    waited = time.monotonic() - started
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert waited > 0.8, "the second run did not wait for the lock"
    bodies = matrix.bodies(room)
    assert len(bodies) == 1, bodies  # without the lock both runs would announce the block
    journal = enf.journal()
    assert [j["message"] for j in journal] == ["blocked", None]
    assert "state=blocked" in out and "message=none" in second.stdout

    # a run that cannot get the lock in BUDGET_LOCK_TIMEOUT gives up with exit code 3
    holder = enf.popen("check", now=now + 2, extra={"BUDGET_TEST_HOLD_LOCK": "3"})
    time.sleep(0.7)
    proc = enf.run("check", now=now + 3, extra={"BUDGET_LOCK_TIMEOUT": "0.5"})
    holder.communicate(timeout=60)
    assert proc.returncode == 3 and "lock" in proc.stderr


def test_allow_for_lifts_block_until_it_expires(start_prometheus, make_enforcer, matrix):
    now = time.time()
    prom = _over_budget(start_prometheus, now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room, BUDGET_TZ="Europe/Rome")
    enf.check(now=now)
    assert enf.flag.exists()

    proc = enf.run("allow", "--for", "2h", "--reason", "release demo", now=now + 60)
    assert proc.returncode == 0, proc.stderr
    assert "allowed until" in proc.stdout
    assert not enf.flag.exists()
    bodies = matrix.bodies(room)
    assert len(bodies) == 2 and "lifted by an operator" in bodies[1] and "release demo" in bodies[1]
    assert "$5.50 of $5.00 (110%)" in bodies[1]

    out = enf.check(now=now + 1 * H).stdout  # still over the cap, but overridden: no flag, no message
    assert "state=overridden" in out and "blocked=0" in out
    assert not enf.flag.exists() and len(matrix.bodies(room)) == 2

    out = enf.check(now=now + 2 * H + 120).stdout  # override over, spend still in the window
    assert "state=blocked" in out
    assert enf.flag.exists()
    bodies = matrix.bodies(room)
    assert len(bodies) == 3 and "override ended" in bodies[2] and "BLOCKED again" in bodies[2]
    journal = enf.journal()
    allow = [j for j in journal if j["command"] == "allow"]
    assert len(allow) == 1 and allow[0]["reason"] == "release demo" and allow[0]["flag"] == "removed"

    # --cancel ends an override early and re-checks at once
    enf.run("allow", "--for", "1h", now=now + 2 * H + 180)
    assert not enf.flag.exists()
    proc = enf.run("allow", "--cancel", now=now + 2 * H + 240)
    assert proc.returncode == 0, proc.stderr
    assert enf.flag.exists()


def test_allow_rejects_bad_durations(make_enforcer):
    enf = make_enforcer("http://127.0.0.1:9")
    for bad in ("2x", "0h", "8d", ""):
        proc = enf.run("allow", "--for", bad)
        assert proc.returncode == 1 and "--for" in proc.stderr, (bad, proc.stderr)


def test_dry_run_decides_but_touches_nothing(start_prometheus, make_enforcer, matrix):
    now = time.time()
    prom = _over_budget(start_prometheus, now)
    room = matrix.new_room()
    enf = make_enforcer(prom.url, matrix, room)
    proc = enf.run("check", "--dry-run", now=now)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "(dry run)" in lines[0] and "state=blocked" in lines[0]
    assert "message=blocked" in lines[0]  # what it would send
    assert not enf.flag.exists()
    assert not (enf.state_dir / "state.json").exists()
    assert not enf.metrics.exists()
    assert matrix.bodies(room) == []
    journal = enf.journal()
    assert len(journal) == 1 and journal[0]["dry_run"] is True and journal[0]["state"] == "blocked"
    # a later real run still announces the block: the dry run saved nothing
    enf.check(now=now + 10)
    assert len(matrix.bodies(room)) == 1 and enf.flag.exists()
