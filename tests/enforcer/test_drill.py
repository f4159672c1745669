"""``python -m enforcer drill``: its verdicts on the CLI's answers, and its clean-up when the CLI fails.
The drill against a live gateway and gate is in tests/components/gateway/test_budget_gate_e2e.py."""
from __future__ import annotations

import json
import subprocess

import pytest

from enforcer import drill

DRILL_ID = "drill-0a1b2c3d"


def answer(envelope, rc=1) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["openclaw"], rc, json.dumps(envelope) if envelope is not None else "", "boom")


def refused(message: str) -> dict:
    return {"status": "error", "result": {"meta": {"error": {"kind": "hook_block", "message": message}}}}


GATE_MESSAGE = (f"Budget stop: new agent runs are refused by the budget enforcer.\nReason: budget gate drill "
                f"{DRILL_ID}: not a real budget stop (blocked by openclaw-budget-gate)")


@pytest.mark.parametrize("proc, drill_id, passed, says", [
    (answer(refused(GATE_MESSAGE)), DRILL_ID, True, "the gate refused a new agent run"),
    (answer(refused(GATE_MESSAGE.replace(DRILL_ID, "drill-ffffffff"))), DRILL_ID, False, "reads another file"),
    (answer(refused("Budget stop: ... daily budget exceeded")), None, True, "the gate refused"),  # a real block
    (answer({"status": "ok", "result": {"payloads": [{"text": "hi"}]}}, rc=0), DRILL_ID, False,
     "the gate let a new run through"),
    (answer(refused("denied by another-plugin")), DRILL_ID, False, "blocked by another hook"),
    (answer({"status": "error", "result": {"meta": {"error": {"kind": "model_error", "message": "401"}}}}),
     DRILL_ID, False, "not by the gate"),
    (answer(None, rc=127), DRILL_ID, False, "without a JSON answer: boom"),
])
def test_verdicts(proc, drill_id, passed, says):
    ok, summary = drill.judge(proc, drill_id)
    assert ok is passed and says in summary, summary


def test_json_after_log_lines_is_found():
    text = "[plugins] budget gate active\n" + json.dumps(refused(GATE_MESSAGE))
    assert drill.refusal(drill.parse_agent_output(text))["kind"] == "hook_block"


def test_needs_the_openclaw_cli(make_enforcer):
    enf = make_enforcer("http://127.0.0.1:9")
    proc = enf.run("drill")
    assert proc.returncode == 1
    assert "drill needs BUDGET_OPENCLAW_CLI" in proc.stderr


def test_a_cli_that_cannot_run_fails_the_drill_and_removes_its_flag(make_enforcer, tmp_path):
    enf = make_enforcer("http://127.0.0.1:9", BUDGET_OPENCLAW_CLI=str(tmp_path / "no-such-openclaw"))
    proc = enf.run("drill")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "budget gate drill: FAIL: the OpenClaw CLI exited -1 without a JSON answer: cannot run" in proc.stdout
    assert not (tmp_path / "flagdir" / "openclaw-budget-exceeded").exists()
    journal = [json.loads(line) for line in (tmp_path / "state" / "decisions.jsonl").read_text().splitlines()]
    assert journal[-1]["command"] == "drill" and journal[-1]["passed"] is False


def test_the_drill_flag_is_the_shared_contract(make_enforcer, tmp_path):
    """While the probe runs, the flag on disk is a valid enforcer flag naming the drill (seen by a CLI
    stand-in that copies it: the gate's own reading of it is proven in the e2e test)."""
    seen = tmp_path / "seen-flag.json"
    flag = tmp_path / "flagdir" / "openclaw-budget-exceeded"
    cli = tmp_path / "fake-openclaw"
    cli.write_text(f"#!/bin/sh\ncp {flag} {seen}\necho '{json.dumps(refused('Budget stop: x'))}'\nexit 1\n")
    cli.chmod(0o755)
    enf = make_enforcer("http://127.0.0.1:9", BUDGET_OPENCLAW_CLI=str(cli))
    proc = enf.run("drill")
    data = json.loads(seen.read_text())
    assert data["version"] == 1 and data["state"] == "blocked" and data["written_by"] == "openclaw-budget-enforcer"
    assert data["drill"].startswith("drill-") and data["drill"] in data["reason"]
    assert data["cap_usd"] == 5.0
    # the stand-in's refusal doesn't quote the drill id: the drill must not pass
    assert proc.returncode == 5 and "reads another file than " + str(flag) in proc.stdout, proc.stdout
    assert not flag.exists()


def test_an_unwritable_flag_path_fails_the_drill_without_running_the_probe(make_enforcer, tmp_path):
    """The flag's directory is missing: the real stop could never be written, which is what the drill says;
    no probe run is started (it would only spend)."""
    marker = tmp_path / "probe-ran"
    cli = tmp_path / "fake-openclaw"
    cli.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    cli.chmod(0o755)
    missing = tmp_path / "no-such-dir" / "openclaw-budget-exceeded"
    enf = make_enforcer("http://127.0.0.1:9", BUDGET_OPENCLAW_CLI=str(cli), BUDGET_FLAG_FILE=str(missing))
    proc = enf.run("drill")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"FAIL: cannot write the flag {missing}: No such file or directory" in proc.stdout, proc.stdout
    assert not marker.exists()


@pytest.mark.parametrize("stdout", [
    "[gateway] connecting {ws://127.0.0.1}\n" + json.dumps(refused(GATE_MESSAGE)),  # a brace in a log line
    json.dumps(refused(GATE_MESSAGE)) + "\n[gateway] closed\n",                      # text after the JSON
])
def test_the_envelope_is_found_among_log_lines(stdout):
    proc = subprocess.CompletedProcess(["openclaw"], 1, stdout, "")
    assert drill.judge(proc, DRILL_ID)[0] is True


@pytest.mark.parametrize("envelope", [{"result": "text"}, {"status": "error", "result": {"meta": "x"}},
                                      {"status": "error", "error": "boom"}])
def test_odd_envelopes_are_failures_not_crashes(envelope):
    ok, summary = drill.judge(answer(envelope), DRILL_ID)
    assert ok is False and "not by the gate" in summary
