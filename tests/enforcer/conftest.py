"""Fixtures for the enforcer tests: real Prometheus 2.42 and real Synapse on loopback ports, and a helper
that runs ``python -m enforcer`` as the systemd unit would (a subprocess with only env configuration)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

from tests.enforcer.helpers.prom import PrometheusServer, Series, by_model_series
from tests.enforcer.helpers.synapse import SynapseServer
from tests.support.tools import REPO_ROOT

BOT_USER, BOT_PASSWORD = "budgetbot", "bot-test-password"
# The interpreter that runs `python -m enforcer`: the venv's by default; point it at a Python 3.9 with
# `requests` installed to run the whole suite against the oldest supported Python.
ENFORCER_PYTHON = os.environ.get("ENFORCER_TEST_PYTHON", sys.executable)
READER_USER, READER_PASSWORD = "reader", "reader-test-password"


@pytest.fixture
def start_prometheus(tmp_path):
    """Factory: start_prometheus(history, now) -> running PrometheusServer; stopped after the test."""
    servers: List[PrometheusServer] = []

    def start(history: Sequence[Series] = (), now: Optional[float] = None) -> PrometheusServer:
        srv = PrometheusServer(tmp_path / f"prom{len(servers)}", history, now=now)
        servers.append(srv)
        return srv.start()

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture(params=["per-series", "by-model"])
def start_cost_prometheus(start_prometheus, request):
    """start_prometheus twice: with the per-agent cost series only (as from a collector without our
    metrics_transform processor), and with the collector's by-model sums beside them. ``.kind`` says which."""
    kind = request.param

    def start(history: Sequence[Series] = (), now: Optional[float] = None) -> PrometheusServer:
        if kind == "by-model":
            history = list(history) + by_model_series(history)
        return start_prometheus(history, now=now)

    start.kind = kind  # type: ignore[attr-defined]
    return start


def checked_status(enf: "Enforcer", now: float, kind: str) -> dict:
    """``status --json`` after one ``check`` at ``now``, both measuring the same spend. On the by-model kind
    the check compares the sums with every cost series over the whole window (unless an earlier check of
    the same enforcer did) and they must agree, so the status reads the sums alone; without sums, both read
    every cost series."""
    proc = enf.run("check", now=now)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checked = enf.journal()[-1]
    status = json.loads(enf.run("status", "--json", now=now).stdout)
    if kind == "by-model":
        assert checked["source"]["series"] == "by-model" or checked["source"]["covered"] is True, checked["source"]
        assert status["source"]["series"] == "by-model", status["source"]
    else:
        assert checked["source"]["covered"] is False, checked["source"]
        assert (status["source"]["series"], status["source"]["fallback"]) == ("per-series", "unverified")
    assert status["spent_usd"] == pytest.approx(checked["spent_usd"], rel=0.005, abs=1e-9)
    return status


@dataclass
class Matrix:
    server: SynapseServer
    bot_token: str
    reader_token: str

    @property
    def bot_id(self) -> str:
        return f"@{BOT_USER}:localhost"

    def new_room(self) -> str:
        return self.server.create_room(self.bot_token, self.reader_token, f"@{READER_USER}:localhost")

    def bodies(self, room_id: str) -> List[str]:
        return [e["content"].get("body", "") for e in self.server.messages(self.reader_token, room_id)]


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    server = SynapseServer(tmp_path_factory.mktemp("synapse"))
    server.start()
    try:
        bot = server.register(BOT_USER, BOT_PASSWORD)
        reader = server.register(READER_USER, READER_PASSWORD)
        yield Matrix(server, bot, reader)
    finally:
        server.stop()


@dataclass
class Enforcer:
    """Runs the enforcer CLI with a fixed environment; ``env`` is edited by tests between runs."""

    env: Dict[str, str]
    state_dir: Path
    flag: Path
    metrics: Path
    runs: List[subprocess.CompletedProcess] = field(default_factory=list)

    def run(self, *args: str, now: Optional[float] = None, extra: Optional[Dict[str, str]] = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        env = dict(self.env)
        if now is not None:
            env["BUDGET_TEST_NOW"] = f"{now:.3f}"
        env.update(extra or {})
        proc = subprocess.run([ENFORCER_PYTHON, "-m", "enforcer", *args], cwd=str(REPO_ROOT), env=env,
                              capture_output=True, text=True, timeout=timeout)
        self.runs.append(proc)
        return proc

    def popen(self, *args: str, now: Optional[float] = None, extra: Optional[Dict[str, str]] = None):
        env = dict(self.env)
        if now is not None:
            env["BUDGET_TEST_NOW"] = f"{now:.3f}"
        env.update(extra or {})
        return subprocess.Popen([ENFORCER_PYTHON, "-m", "enforcer", *args], cwd=str(REPO_ROOT), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def check(self, now: Optional[float] = None, expect_rc: int = 0, **kw) -> subprocess.CompletedProcess:
        proc = self.run("check", now=now, **kw)
        assert proc.returncode == expect_rc, f"rc={proc.returncode}\nstdout:{proc.stdout}\nstderr:{proc.stderr}"
        return proc

    def flag_json(self) -> Optional[dict]:
        return json.loads(self.flag.read_text()) if self.flag.exists() else None

    def state(self) -> dict:
        return json.loads((self.state_dir / "state.json").read_text())

    def journal(self) -> List[dict]:
        path = self.state_dir / "decisions.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def make_enforcer(tmp_path):
    def make(prom_url: str, matrix: Optional[Matrix] = None, room: Optional[str] = None,
             **settings: str) -> Enforcer:
        state_dir = tmp_path / "state"
        flag = tmp_path / "flagdir" / "openclaw-budget-exceeded"
        flag.parent.mkdir(exist_ok=True)
        metrics = tmp_path / "metrics" / "openclaw_budget.prom"
        metrics.parent.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PROMETHEUS_URL": prom_url,
            "MAX_DAILY_USD": "5.00",
            "BUDGET_STATE_DIR": str(state_dir),
            "BUDGET_FLAG_FILE": str(flag),
            "BUDGET_METRICS_FILE": str(metrics),
            "BUDGET_HTTP_TIMEOUT": "5",
        }
        if matrix is not None:
            env.update({"MATRIX_HOMESERVER": matrix.server.url, "MATRIX_ROOM_ID": room or matrix.new_room(),
                        "MATRIX_ACCESS_TOKEN": matrix.bot_token})
        env.update(settings)
        return Enforcer(env, state_dir, flag, metrics)

    return make
