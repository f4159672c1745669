"""CLI surface: --help on every command, clear config errors, and the watch loop (real Prometheus)."""
from __future__ import annotations

import signal
import time

import pytest

from tests.enforcer.helpers.prom import cost_labels, counter_samples


@pytest.mark.parametrize("command", ["check", "status", "doctor", "allow", "watch"])
def test_help_on_each_command(command, make_enforcer):
    proc = make_enforcer("http://127.0.0.1:9").run(command, "--help")
    assert proc.returncode == 0 and "usage: python -m enforcer" in proc.stdout


def test_top_level_help_lists_env_vars(make_enforcer):
    out = make_enforcer("http://127.0.0.1:9").run("--help").stdout
    for var in ("PROMETHEUS_URL", "MAX_DAILY_USD", "BUDGET_ON_BACKEND_ERROR", "MATRIX_ACCESS_TOKEN_FILE"):
        assert var in out


def test_config_error_is_clear_and_touches_nothing(make_enforcer):
    enf = make_enforcer("http://127.0.0.1:9", MAX_DAILY_USD="5,00", BUDGET_WINDOW="daily")
    proc = enf.run("check")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "MAX_DAILY_USD='5,00' is not a number" in proc.stderr and "BUDGET_WINDOW='daily'" in proc.stderr
    assert not enf.flag.exists() and not enf.state_dir.exists()


def test_watch_loops_until_sigterm(start_prometheus, make_enforcer):
    now = time.time()
    prom = start_prometheus([(cost_labels("anthropic", "claude"),
                              counter_samples(now - 3600, now, 60, [(now - 1800, 1.0)]))], now=now)
    enf = make_enforcer(prom.url)
    proc = enf.popen("watch", "--interval", "0.3")
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [line for line in out.splitlines() if line.startswith("budget check:")]
    assert len(lines) >= 3 and all("state=ok" in line and "spent_usd=1.00" in line for line in lines)
    assert len(enf.journal()) == len(lines)


def test_unusable_state_dir_is_a_clear_error(make_enforcer, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    proc = make_enforcer("http://127.0.0.1:9", BUDGET_STATE_DIR=str(blocker / "state")).run("check")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "BUDGET_STATE_DIR" in proc.stderr
