"""The budget gate on a real OpenClaw 2026.9.6 gateway, driven by the real budget enforcer.

One gateway (``openclaw gateway run``, isolated in a temp dir) talks to a fake OpenAI-compatible model server
that counts requests. The gate plugin is installed into the running gateway's config by the same patch tool
the gateway component ships to hosts (components/gateway/openclaw_patch.py), and OpenClaw hot-loads it. The
flag file is written and removed by ``python -m enforcer check`` reading a real Prometheus 2.42 that holds
cost history over the cap: nothing here writes a valid flag by hand.

What must hold (issue 7): no flag -> the run reaches the model; enforcer's flag -> the run is refused with
``hook_block`` and our message, and the model sees no request; the enforcer's recovery removes the flag ->
the next run succeeds with no reload or restart; a corrupt or unreadable flag -> refused (fail closed).
Beyond the issue: a run already in progress when the enforcer closes the gate (a model -> tool -> model loop)
gets its tool calls refused, so a runaway loop inside one run stops working too.
"""
from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Dict, Iterator, Optional
from zoneinfo import ZoneInfo

import pytest

from tests.enforcer.helpers.prom import PrometheusServer, cost_labels, counter_samples
from tests.support import tools
from tests.support.fake_openai import FakeOpenAI
from tests.support.openclaw_gateway import MODEL_ID, PROVIDER_ID, AgentResult, OpenClawGateway

pytestmark = pytest.mark.slow

PLUGIN_ID = "openclaw-budget-gate"
PLUGIN_SRC = tools.REPO_ROOT / "components" / "gateway" / "budget_gate"
PATCH_TOOL = tools.REPO_ROOT / "components" / "gateway" / "openclaw_patch.py"
H = 3600.0
CAP_USD = 5.0
TZ = "Europe/Rome"


@dataclass
class GateHarness:
    gateway: OpenClawGateway
    model: FakeOpenAI
    flag_file: Path
    plugin_dir: Path
    workdir: Path


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GateHarness]:
    workdir = tmp_path_factory.mktemp("budget-gate-e2e")
    # As the gateway component does: the plugin directory is copied to a path the gateway reads, and the
    # flag lives in a directory the enforcer writes and the gateway sees.
    plugin_dir = workdir / "plugins" / PLUGIN_ID
    shutil.copytree(PLUGIN_SRC, plugin_dir)
    flag_dir = workdir / "budget"
    flag_dir.mkdir()
    flag_file = flag_dir / "openclaw-budget-exceeded"
    with FakeOpenAI(reply="pong from the fake model") as model:
        gateway = OpenClawGateway(workdir / "gateway", model.base_url)
        try:
            gateway.start()
            install_gate(gateway, workdir, plugin_dir, flag_file)
            yield GateHarness(gateway, model, flag_file, plugin_dir, workdir)
        finally:
            gateway.stop()


def plugin_revision(plugin_dir: Path) -> str:
    """A digest of the plugin's files: the gateway component passes one so that new code gets reloaded."""
    digest = hashlib.sha256()
    for path in sorted(p for p in plugin_dir.rglob("*") if p.is_file()):
        digest.update(path.relative_to(plugin_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def apply_gate_spec(gateway: OpenClawGateway, workdir: Path, plugin_dir: Path, flag_file: Path,
                    ready_line: str) -> subprocess.CompletedProcess:
    """Run the gateway component's patch tool against the running gateway, as the component does on a host
    (there with the host's python3 and the json5 package shipped beside the script; here our venv's python,
    which has json5). Its verification reads the gateway log until ``ready_line`` shows up."""
    spec = {
        "version": 1,
        "plugins": {PLUGIN_ID: {"enabled": True, "hooks": {"allowConversationAccess": True},
                                "config": {"flagFile": str(flag_file)}, "loadPath": str(plugin_dir)}},
        "pluginRevisions": {PLUGIN_ID: plugin_revision(plugin_dir)},
        "verify": {"enabled": True, "logCommand": f"cat {shlex.quote(str(gateway.console_log))}",
                   "logReady": [re.escape(ready_line)] if ready_line else [], "timeoutSeconds": 120,
                   "intervalSeconds": 1},
    }
    spec_path = workdir / "openclaw-patch.json"
    spec_path.write_text(json.dumps(spec, indent=2), encoding="utf-8")
    assert PATCH_TOOL.is_file(), f"{PATCH_TOOL} is missing: the gateway component's patch tool installs the gate"
    proc = subprocess.run(
        [sys.executable, str(PATCH_TOOL), "apply", "--config", str(gateway.config_path),
         "--openclaw", gateway.openclaw_command(), "--spec", str(spec_path),
         "--state", str(workdir / "openclaw-patch-state.json"),
         "--skip-plugin-check"],  # diagnostics-otel is not part of these tests (npm builds lack it)
        env=gateway.env, cwd=str(workdir), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"openclaw_patch.py apply failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def install_gate(gateway: OpenClawGateway, workdir: Path, plugin_dir: Path, flag_file: Path) -> None:
    """Register the plugin with the patch tool while the gateway runs; OpenClaw hot-loads it."""
    active = f"budget gate active: new agent runs and tool calls are refused while {flag_file} exists"
    apply_gate_spec(gateway, workdir, plugin_dir, flag_file, active)
    config = gateway.read_config()
    assert str(plugin_dir) in config["plugins"]["load"]["paths"]
    assert config["plugins"]["entries"][PLUGIN_ID] == {
        "enabled": True, "hooks": {"allowConversationAccess": True}, "config": {"flagFile": str(flag_file)}}
    gateway.wait_for_console(
        lambda text: active in text and "config hot reload applied" in text.split(active, 1)[1],
        timeout=120, what=f"the gate loading by hot reload ({active!r})")


@pytest.fixture
def gate(harness: GateHarness) -> Iterator[GateHarness]:
    """Each test starts with the gate open and leaves no flag behind."""
    _remove_flag(harness.flag_file)
    yield harness
    _remove_flag(harness.flag_file)


def _remove_flag(path: Path) -> None:
    if path.is_dir():
        path.rmdir()
    elif path.exists():
        path.unlink()


# -- the enforcer, as its systemd unit runs it ----------------------------------------------------------

@pytest.fixture
def over_cap_prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """Real Prometheus with $5.50 spent on the gateway's model 23 h ago (over the $5 cap in a rolling 24 h
    window; it leaves the window in 1 h)."""
    now = time.time()
    series = (cost_labels(PROVIDER_ID, MODEL_ID, openclaw_agent="main"),
              counter_samples(now - 30 * H, now, 60, [(now - 23 * H, 5.50)]))
    prom = PrometheusServer(tmp_path / "prometheus", [series], now=now)
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


def run_enforcer(prom: PrometheusServer, flag_file: Path, state_dir: Path, *args: str,
                 now: Optional[float] = None, gateway: Optional[OpenClawGateway] = None,
                 expect_rc: int = 0) -> subprocess.CompletedProcess:
    env: Dict[str, str] = {
        **(gateway.env if gateway else {}),  # the CLI's isolated state, for BUDGET_OPENCLAW_CLI
        "PATH": gateway.env["PATH"] if gateway else "/usr/bin:/bin",
        "PROMETHEUS_URL": prom.url,
        "MAX_DAILY_USD": f"{CAP_USD:.2f}",
        "BUDGET_WINDOW": "rolling-24h",
        "BUDGET_TZ": TZ,
        "BUDGET_FLAG_FILE": str(flag_file),
        "BUDGET_STATE_DIR": str(state_dir),
    }
    if gateway is not None:
        env["BUDGET_OPENCLAW_CLI"] = gateway.openclaw_command()
    if now is not None:
        # The enforcer's documented test clock: the only way to let a 24 h window move on in a test.
        env["BUDGET_TEST_NOW"] = f"{now:.3f}"
    proc = subprocess.run([sys.executable, "-m", "enforcer", *args], env=env, cwd=str(tools.REPO_ROOT),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == expect_rc, (f"enforcer {' '.join(args)} exited {proc.returncode}, not {expect_rc}:\n"
                                          f"{proc.stdout}\n{proc.stderr}")
    return proc


def expected_block_lines(flag: dict) -> list:
    """What our message must say, derived from the flag the enforcer wrote."""
    resets = datetime.fromisoformat(flag["resets_at"]).astimezone(ZoneInfo(flag["timezone"]))
    return [
        "Budget stop: new agent runs are refused by the budget enforcer.",
        f"Spent: ${flag['spent_usd']:.2f} of the ${flag['cap_usd']:.2f} cap (rolling 24-hour window).",
        "Resets: as spend from the last 24 hours falls back under the cap, at the latest "
        f"{resets:%Y-%m-%d %H:%M} {flag['timezone']}.",
        f"To lift the stop earlier, an operator can run `{flag['lift_hint']}`.",
    ]


def assert_refused(result: AgentResult, model: FakeOpenAI, requests_before: int) -> None:
    assert result.returncode == 1, result.describe()
    assert result.status == "error", result.describe()
    assert result.error_kind == "hook_block", result.describe()
    assert result.error["message"].endswith(f"(blocked by {PLUGIN_ID})"), result.describe()
    assert model.completion_count() == requests_before, "a refused run reached the model"


def assert_reached_model(result: AgentResult, model: FakeOpenAI, requests_before: int) -> None:
    assert result.ok, result.describe()
    assert result.text == model.reply, result.describe()
    assert model.completion_count() >= requests_before + 1, "the run never reached the model"


# -- scenarios ------------------------------------------------------------------------------------------

def test_no_flag_run_reaches_the_model(gate: GateHarness) -> None:
    before = gate.model.completion_count()
    result = gate.gateway.agent("ping with the gate open")
    assert_reached_model(result, gate.model, before)
    usage = result.envelope["result"]["meta"]["agentMeta"]["usage"]
    assert usage["input"] == 1000 and usage["output"] == 200  # the fake's usage made it back

    # The webchat / channel path (RPC chat.send) as well.
    before = gate.model.completion_count()
    chat = gate.gateway.chat_send("ping from webchat with the gate open")
    assert chat.ok, chat.wait
    assert gate.model.completion_count() >= before + 1


def test_enforcer_block_refuses_runs_and_recovery_reopens_without_restart(
        gate: GateHarness, over_cap_prometheus: PrometheusServer, tmp_path: Path) -> None:
    state_dir = tmp_path / "enforcer-state"
    gateway, model, flag_file = gate.gateway, gate.model, gate.flag_file

    # The enforcer measures $5.50 > $5.00 and writes the flag.
    out = run_enforcer(over_cap_prometheus, flag_file, state_dir, "check").stdout
    assert "state=blocked" in out, out
    flag = json.loads(flag_file.read_text(encoding="utf-8"))
    assert flag["state"] == "blocked" and flag["spent_usd"] == pytest.approx(5.50, abs=0.01)

    before = model.completion_count()
    result = gateway.agent("ping while over budget")
    assert_refused(result, model, before)
    message = result.error["message"]
    for line in expected_block_lines(flag):
        assert line in message, f"{line!r} missing from:\n{message}"
    assert f"Reason: {flag['reason'].rstrip('.')}." in message
    assert result.text == message  # the refusal is the reply the user sees

    # Webchat and channels (RPC chat.send, the auto-reply runner) get the same refusal.
    chat = gateway.chat_send("ping from webchat while over budget")
    assert chat.status == "error" and chat.error == message, chat.wait
    assert chat.reply_text == message, chat.wait
    assert model.completion_count() == before, "a refused webchat run reached the model"

    # The window moves on (enforcer test clock +2 h): spend leaves the window, recovery removes the flag.
    console_before = len(gateway.console_text())
    out = run_enforcer(over_cap_prometheus, flag_file, state_dir, "check", now=time.time() + 2 * H).stdout
    assert "state=ok" in out and "blocked=0" in out, out
    assert not flag_file.exists()

    pid = gateway.proc.pid
    result = gateway.agent("ping after recovery")
    assert_reached_model(result, model, before)
    assert gateway.running and gateway.proc.pid == pid
    since_recovery = gateway.console_text()[console_before:]
    assert "reload" not in since_recovery and "restart" not in since_recovery, since_recovery


def test_operator_lift_hint_from_the_message_reopens_the_gate(
        gate: GateHarness, over_cap_prometheus: PrometheusServer, tmp_path: Path) -> None:
    state_dir = tmp_path / "enforcer-state"
    run_enforcer(over_cap_prometheus, gate.flag_file, state_dir, "check")
    flag = json.loads(gate.flag_file.read_text(encoding="utf-8"))
    before = gate.model.completion_count()
    assert_refused(gate.gateway.agent("ping while over budget"), gate.model, before)

    # Run exactly what the user was told: `python -m enforcer allow --for 2h`.
    hint = shlex.split(flag["lift_hint"])
    assert hint[:3] == ["python", "-m", "enforcer"], flag["lift_hint"]
    run_enforcer(over_cap_prometheus, gate.flag_file, state_dir, *hint[3:])
    assert not gate.flag_file.exists()
    assert_reached_model(gate.gateway.agent("ping after the operator's override"), gate.model, before)
    # The override holds on the next scheduled check, although spend is still over the cap.
    run_enforcer(over_cap_prometheus, gate.flag_file, state_dir, "check")
    assert not gate.flag_file.exists()


def test_run_in_progress_gets_its_tool_calls_refused(
        gate: GateHarness, over_cap_prometheus: PrometheusServer, tmp_path: Path) -> None:
    """The model of a running agent asks for a tool (``write``); the enforcer closes the gate while that
    model call is answered. The tool must not run, the model must read the budget stop as the tool's result,
    and after recovery the same kind of tool call runs again."""
    state_dir = tmp_path / "enforcer-state"
    gateway, model, flag_file = gate.gateway, gate.model, gate.flag_file
    proof = gate.workdir / "tool-proof"
    proof.mkdir(exist_ok=True)

    # Control: with the gate open, the scripted tool call really writes its file.
    opened = proof / "written-with-the-gate-open.txt"
    model.queue_tool_call("write", {"path": str(opened), "content": "the tool ran"})
    before = model.completion_count()
    assert_reached_model(gateway.agent("write a file with the gate open"), model, before)
    assert opened.read_text(encoding="utf-8") == "the tool ran"

    # The enforcer runs while the model is answering the run's first call (the run is in progress).
    closed = proof / "written-with-the-gate-closed.txt"
    checks = []

    def enforcer_closes_the_gate(index: int, body: Optional[dict]) -> None:
        if not checks:
            checks.append(run_enforcer(over_cap_prometheus, flag_file, state_dir, "check").stdout)

    model.on_completion = enforcer_closes_the_gate
    try:
        model.queue_tool_call("write", {"path": str(closed), "content": "must never be written"})
        before = model.completion_count()
        result = gateway.agent("write a file; the budget runs out meanwhile")
    finally:
        model.on_completion = None
    assert "state=blocked" in checks[0], checks[0]
    assert flag_file.exists()
    assert not closed.exists(), "a tool ran while the budget gate was closed"
    # The model got the refusal as the tool's result, then ended the run (no further tool call).
    assert model.completion_count() == before + 2, result.describe()
    tool_results = [m for m in model.completion_requests()[-1].body["messages"] if m.get("role") == "tool"]
    refusal = str(tool_results[-1]["content"])
    assert "Budget stop: tool calls are refused by the budget enforcer." in refusal, refusal
    assert "do not call any more tools" in refusal, refusal
    # New runs stay refused as before.
    before = model.completion_count()
    assert_refused(gateway.agent("ping while over budget"), model, before)

    # Recovery re-opens both gates with no reload.
    run_enforcer(over_cap_prometheus, flag_file, state_dir, "check", now=time.time() + 2 * H)
    assert not flag_file.exists()
    model.queue_tool_call("write", {"path": str(closed), "content": "written after recovery"})
    before = model.completion_count()
    assert_reached_model(gateway.agent("write a file after recovery"), model, before)
    assert closed.read_text(encoding="utf-8") == "written after recovery"


def _journal(state_dir: Path) -> list:
    return [json.loads(line) for line in (state_dir / "decisions.jsonl").read_text().splitlines()]


def test_drill_proves_the_gate_blocks_and_leaves_no_flag(
        gate: GateHarness, over_cap_prometheus: PrometheusServer, tmp_path: Path) -> None:
    """``python -m enforcer drill`` on the live gateway: its drill flag is refused by the gate (quoting the
    drill id, so the gate read this very file), no request reaches the model, and the flag is gone after."""
    state_dir = tmp_path / "enforcer-state"
    before = gate.model.completion_count()
    proc = run_enforcer(over_cap_prometheus, gate.flag_file, state_dir, "drill", gateway=gate.gateway)
    assert "budget gate drill: PASS: the gate refused a new agent run (hook_block)" in proc.stdout, proc.stdout
    assert "flag=drill" in proc.stdout, proc.stdout
    assert gate.model.completion_count() == before, "the drill's probe run reached the model"
    assert not gate.flag_file.exists(), "the drill left its flag behind"
    record = _journal(state_dir)[-1]
    assert record["command"] == "drill" and record["passed"] is True, record
    # The gate is open again: a normal run goes through.
    before = gate.model.completion_count()
    assert_reached_model(gate.gateway.agent("ping after the drill"), gate.model, before)


def test_drill_fails_loudly_when_the_gate_reads_another_file(
        gate: GateHarness, over_cap_prometheus: PrometheusServer, tmp_path: Path) -> None:
    """The classic silent failure: the enforcer writes one path, the gate reads another (a missing bind
    mount, a typo). The drill's run gets through, and the drill says so and exits 5."""
    state_dir = tmp_path / "enforcer-state"
    elsewhere = tmp_path / "not-mounted" / "openclaw-budget-exceeded"
    elsewhere.parent.mkdir()
    before = gate.model.completion_count()
    proc = run_enforcer(over_cap_prometheus, elsewhere, state_dir, "drill", gateway=gate.gateway, expect_rc=5)
    assert "budget gate drill: FAIL: the gate let a new run through while the flag was set" in proc.stdout, proc.stdout
    assert "openclaw plugins inspect openclaw-budget-gate" in proc.stdout
    assert gate.model.completion_count() == before + 1  # the price of finding out: one probe run
    assert not elsewhere.exists() and not gate.flag_file.exists()
    assert _journal(state_dir)[-1]["passed"] is False


def test_drill_leaves_a_real_block_in_place(
        gate: GateHarness, over_cap_prometheus: PrometheusServer, tmp_path: Path) -> None:
    """While a real block is set, the drill writes nothing, checks the run is refused and keeps the flag."""
    state_dir = tmp_path / "enforcer-state"
    run_enforcer(over_cap_prometheus, gate.flag_file, state_dir, "check")
    flag_before = gate.flag_file.read_bytes()
    before = gate.model.completion_count()
    proc = run_enforcer(over_cap_prometheus, gate.flag_file, state_dir, "drill", gateway=gate.gateway)
    assert "PASS" in proc.stdout and "flag=ours" in proc.stdout, proc.stdout
    assert gate.flag_file.read_bytes() == flag_before
    assert gate.model.completion_count() == before


@pytest.mark.parametrize("content, problem", [
    ('{"version": 1, "state": "blocked", "spent_usd": 5.', "is not valid JSON"),  # a torn write
    ("", "is empty"),
    ('{"version": 1, "state": "blocked"}', "has an unexpected shape: cap_usd is not a number"),
])
def test_corrupt_flag_is_refused(gate: GateHarness, content: str, problem: str) -> None:
    gate.flag_file.write_text(content, encoding="utf-8")
    before = gate.model.completion_count()
    result = gate.gateway.agent("ping with a corrupt flag")
    assert_refused(result, gate.model, before)
    message = result.error["message"]
    assert f"the budget flag file {gate.flag_file} exists but {problem}." in message, message
    assert "fails closed" in message


def test_unreadable_flag_is_refused(gate: GateHarness) -> None:
    gate.flag_file.mkdir()  # present but unreadable as a file (EISDIR); root ignores permission bits
    before = gate.model.completion_count()
    result = gate.gateway.agent("ping with an unreadable flag")
    assert_refused(result, gate.model, before)
    assert f"{gate.flag_file} exists but cannot be read (EISDIR)." in result.error["message"]


def test_new_gate_code_reaches_the_running_gateway(gate: GateHarness) -> None:
    """A deploy with changed plugin code: the patch tool sees a new revision and asks the running gateway to
    reload the plugin (`openclaw plugins reload`), so the new code decides the very next run."""
    gate_js = gate.plugin_dir / "gate.js"
    original = gate_js.read_text(encoding="utf-8")
    old_line = "An operator should check the budget enforcer"
    assert old_line in original
    updated = original.replace(old_line, "Updated gate code: an operator should check the budget enforcer")
    try:
        gate_js.write_text(updated, encoding="utf-8")
        out = apply_gate_spec(gate.gateway, gate.workdir, gate.plugin_dir, gate.flag_file, "").stdout
        assert "plugin code changed, reloading" in out, out
        gate.flag_file.write_text("{", encoding="utf-8")
        result = gate.gateway.agent("ping after a gate update")
        assert result.error_kind == "hook_block", result.describe()
        assert "Updated gate code: an operator should check" in result.error["message"], result.describe()
    finally:
        gate_js.write_text(original, encoding="utf-8")
        _remove_flag(gate.flag_file)
        apply_gate_spec(gate.gateway, gate.workdir, gate.plugin_dir, gate.flag_file, "")
