"""``python -m enforcer drill``: prove, on the live gateway, that the budget gate refuses a new run.

A budget stop that silently does nothing is the worst failure a budget tool can have (a missing bind
mount, a gate reading another path, a plugin that never loaded). The drill tests the whole path the real
stop takes, with no spend:

1. take the run lock, so no check changes the flag meanwhile (a concurrent check waits for it, up to
   BUDGET_LOCK_TIMEOUT; a timer-run check that gives up exits 3 and the next one runs as usual);
2. if no flag is set, write a *drill flag* (the real contract, ``state: blocked``, a reason naming a
   random drill id) to BUDGET_FLAG_FILE, atomically, as a check would;
3. start one agent run through the OpenClaw CLI (BUDGET_OPENCLAW_CLI): ``agent --agent AGENT --message
   ... --json``;
4. remove the drill flag (always, also after an error), then judge: the run must have been refused by
   the gate (``hook_block``) and, with a drill flag, the refusal must quote the drill id, which proves the
   gate read the very file the enforcer wrote.

If a flag is already set (a real block, or one put there by hand) the drill leaves it alone and checks
that the run is refused. Should the drill die between 2 and 4, the flag stays (the gate stays closed,
erring safe) and the next check removes it: the saved state wants no flag, and the flag is the enforcer's.
If the gate does *not* block, the probe run reaches the model: one short message's worth of spend, which
is the price of finding out.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from enforcer import flagfile
from enforcer.decision import iso
from enforcer.settings import ConfigError, Settings
from enforcer.state import StateStore

EXIT_PASS = 0
EXIT_FAIL = 5
DRILL_MESSAGE = "Budget gate drill from the budget enforcer: this run should be refused. If you read this, it was not."


@dataclass
class DrillResult:
    passed: bool
    summary: str
    flag: str  # "drill" (written and removed), "ours" or "foreign" (already set, left alone)
    seconds: float

    def render(self) -> str:
        return f"budget gate drill: {'PASS' if self.passed else 'FAIL'}: {self.summary} (flag={self.flag}, {self.seconds:.1f}s)"


def drill_flag(settings: Settings, drill_id: str, now) -> Dict[str, Any]:
    """The flag written for a drill: the shared contract, so the gate parses it like a real one."""
    return {
        "version": flagfile.FLAG_VERSION,
        "state": "blocked",
        "reason": f"budget gate drill {drill_id}: not a real budget stop; the enforcer removes this flag "
                  "within seconds",
        "spent_usd": None,
        "cap_usd": settings.max_daily_usd,
        "window": settings.window,
        "since": iso(now),
        "resets_at": None,
        "timezone": settings.tz_name,
        "lift_hint": settings.lift_hint,
        "written_at": iso(now),
        "drill": drill_id,
    }


def parse_agent_output(stdout: str) -> Optional[Dict[str, Any]]:
    """The ``--json`` envelope of ``openclaw agent``: the first JSON object in stdout that has a
    ``status`` or ``result`` (log lines before or after it are skipped); None when there is none."""
    decoder = json.JSONDecoder()
    start = stdout.find("{")
    while start >= 0:
        try:
            value, _ = decoder.raw_decode(stdout, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and ("status" in value or "result" in value):
            return value
        start = stdout.find("{", start + 1)
    return None


def refusal(envelope: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """``{kind, message}`` of a refused run (OpenClaw 2026.9.6 puts it under ``result.meta.error``)."""
    env = envelope if isinstance(envelope, dict) else {}
    error = env.get("error")
    if not isinstance(error, dict):
        result = env.get("result")
        meta = result.get("meta") if isinstance(result, dict) else None
        error = meta.get("error") if isinstance(meta, dict) else None
    return error if isinstance(error, dict) else None


def judge(proc: subprocess.CompletedProcess, drill_id: Optional[str]) -> tuple:
    """(passed, summary) for the probe run's outcome."""
    envelope = parse_agent_output(proc.stdout or "")
    error = refusal(envelope)
    if envelope is None:
        tail = (proc.stderr or proc.stdout or "").strip()[-300:]
        return False, f"the OpenClaw CLI exited {proc.returncode} without a JSON answer: {tail}"
    if envelope.get("status") == "ok" and error is None:
        return False, ("the gate let a new run through while the flag was set: the run reached the model. "
                       "Check that the openclaw-budget-gate plugin is loaded (`openclaw plugins inspect "
                       "openclaw-budget-gate`) and that its flagFile is this BUDGET_FLAG_FILE as the gateway "
                       "sees it")
    if error is None or error.get("kind") != "hook_block":
        return False, f"the run failed, but not by the gate: {json.dumps(error or envelope)[:300]}"
    message = str(error.get("message") or "")
    if "Budget stop:" not in message:
        return False, f"the run was blocked by another hook: {message[:300]}"
    if drill_id is not None and drill_id not in message:
        return False, ("the gate refused the run but did not quote this drill's flag: it reads another file "
                       f"than {{flag}}: {message[:300]}")
    return True, "the gate refused a new agent run (hook_block) with the budget stop message"


def run(settings: Settings, agent: str = "main", timeout: float = 60.0,
        runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> DrillResult:
    if not settings.openclaw_cli:
        raise ConfigError("drill needs BUDGET_OPENCLAW_CLI, the OpenClaw CLI as the gateway runs it "
                          "(e.g. `docker exec -i openclaw-gateway node /app/dist/entry.js`)")
    argv = list(settings.openclaw_cli) + ["agent", "--agent", agent, "--message", DRILL_MESSAGE, "--json"]
    store = StateStore(settings.state_dir)
    started = time.monotonic()
    with store.lock(settings.lock_timeout):
        on_disk = flagfile.read(settings.flag_file)
        drill_id = None
        if on_disk.status == "absent":
            drill_id = f"drill-{secrets.token_hex(4)}"
            try:
                flagfile.write(settings.flag_file, drill_flag(settings, drill_id, settings.now()))
            except OSError as exc:  # the real stop could not be written either: that is the finding
                summary = (f"cannot write the flag {settings.flag_file}: {exc.strerror or exc}; the enforcer "
                           "could not close the gate either (`python -m enforcer doctor` checks the path)")
                store.append_journal({"ts": iso(settings.now()), "command": "drill", "passed": False,
                                      "summary": summary, "flag": "absent", "agent": agent})
                return DrillResult(False, summary, "absent", time.monotonic() - started)
        try:
            try:
                proc = runner(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc = subprocess.CompletedProcess(argv, -1, "", f"no answer within {timeout:g}s (a refused run "
                                                   "answers in seconds: the gate is probably not blocking)")
            except OSError as exc:
                proc = subprocess.CompletedProcess(argv, -1, "", f"cannot run {argv[0]}: {exc.strerror or exc}")
        finally:
            if drill_id is not None:
                current = flagfile.read(settings.flag_file)
                if current.status == "ours" and (current.content or {}).get("drill") == drill_id:
                    flagfile.remove_if_ours(settings.flag_file)
        passed, summary = judge(proc, drill_id)
        summary = summary.replace("{flag}", str(settings.flag_file))
        record = {"ts": iso(settings.now()), "command": "drill", "passed": passed, "summary": summary,
                  "flag": "drill" if drill_id else on_disk.status, "agent": agent}
        store.append_journal(record)
    return DrillResult(passed, summary, "drill" if drill_id else on_disk.status, time.monotonic() - started)
