"""A real OTLP cost emitter: OpenClaw 2026.4.26 with its bundled ``diagnostics-otel`` plugin.

Why this version (reference: openclaw.md §12): 2026.4.26 is the newest npm release that still bundles
``diagnostics-otel`` and works offline; from 2026.5.2 the plugin is an external package that can't be
installed here, and 2026.4.27-2026.4.30 stage runtime deps for every bundled plugin (a git dependency that
fails offline).  The gateway tests use 2026.9.6; this one only emits the metrics our pipeline carries.

What it takes to make it emit token and cost metrics:

* **runtime deps.** This OpenClaw installs "runtime deps" with npm on first use, into
  ``OPENCLAW_PLUGIN_STAGE_DIR``: the plugin's OpenTelemetry SDK when the gateway starts, then, during the
  first agent run and CLI calls, packages of the agent runtime (``@mariozechner/pi-ai``, ``@google/genai``,
  ``@openai/codex``, ...), although they are installed next to openclaw already.  ``tests/setup/
  otlp-emitter.sh`` stages all of them once, by doing exactly what the tests do (a gateway run with one
  ``chat.send`` message) with the npm registry reachable, into a directory of the tool cache.  The tests'
  gateway then gets a dead loopback registry: a dependency that was not staged fails fast, and
  :func:`install_attempts` shows which one, instead of a silent download;
* ``plugins.allow`` limits loading to ``diagnostics-otel`` and ``memory-core``;
* messages go through the Gateway RPC ``chat.send`` (+ ``agent.wait``): in this version only that path emits
  the ``model.usage`` diagnostic event; ``openclaw agent --message`` exports no token or cost metric;
* heartbeats off (they would call the model and add cost), mDNS off.

Usage::

    with FakeOpenAI() as fake, EmitterGateway(tmp / "gw", fake.base_url, otel_block) as gateway:
        run = gateway.send_message("hello")       # chat.send, then agent.wait
        assert run.ok
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import pytest

from tests.support import tools
from tests.support.fake_openai import FakeOpenAI
from tests.support.openclaw_gateway import OpenClawGateway, base_config, free_port, merged

VERSION = "2026.4.26"
OTEL_PLUGIN_ID = "diagnostics-otel"
#: Only these plugins load; memory-core is the default memory slot.
PLUGIN_ALLOW = [OTEL_PLUGIN_ID, "memory-core"]
#: ``chat.send`` session of the default agent; OpenClaw reports such messages on channel ``webchat``.
SESSION_KEY = "main"
#: A second agent, so that one model's cost comes as two series (openclaw.agent main and ops), which the
#: collector's by-model sum adds up; its session key has the form ``agent:<agentId>:<key>``.
SECOND_AGENT = "ops"
SECOND_AGENT_SESSION_KEY = f"agent:{SECOND_AGENT}:main"
SETUP_SCRIPT = "otlp-emitter.sh"
#: Any npm call of the tests' gateway fails fast here instead of reaching a registry (nothing listens on 9).
DEAD_REGISTRY = "http://127.0.0.1:9/"
#: What npm needs to reach the machine's registry during staging (HOME is a throwaway dir then).
_REGISTRY_ACCESS_VARS = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY",
                         "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")


# ------------------------------------------------------------------------------------------- stage dir


def stage_dir() -> Path:
    """``OPENCLAW_PLUGIN_STAGE_DIR`` of every emitter gateway: the staged runtime deps."""
    return tools.cache_dir() / f"openclaw-{VERSION}-plugin-deps"


def _stamp_path() -> Path:
    return stage_dir() / "staged.json"


def _stamp() -> Dict[str, Any]:
    """What a finished staging records; a different stamp means "stage again" (e.g. openclaw reinstalled:
    OpenClaw keys the staged copy by the package's path)."""
    return {"openclaw": VERSION, "packageRoot": str(tools.openclaw_package_dir(VERSION)), "plugins": PLUGIN_ALLOW}


def is_staged() -> bool:
    try:
        return json.loads(_stamp_path().read_text(encoding="utf-8")) == _stamp()
    except (OSError, ValueError):
        return False


def require_staged() -> Path:
    """The stage dir, or a test failure naming the setup script (never a silent skip or download)."""
    if not is_staged():
        pytest.fail(
            f"runtime deps of openclaw@{VERSION} (diagnostics-otel, agent runtime) are not staged in "
            f"{stage_dir()}; run `bash tests/setup/{SETUP_SCRIPT}` (tests/run does this; it needs the npm "
            "registry once)",
            pytrace=False,
        )
    return stage_dir()


def install_attempts(root: Path, since: float = 0.0) -> List[str]:
    """The ``npm install`` command lines OpenClaw ran in ``root`` since ``since`` (from npm's debug logs)."""
    found = []
    for log in sorted(root.glob("*/.openclaw-npm-cache/_logs/*-debug-*.log")):
        if log.stat().st_mtime < since:
            continue
        text = log.read_text(encoding="utf-8", errors="replace")
        argv = next((line.split(" verbose argv ", 1)[1] for line in text.splitlines() if " verbose argv " in line),
                    "?")
        outcome = "ok" if "verbose exit 0" in text else "failed"
        found.append(f"npm {argv.replace(chr(34), '')} [{outcome}]")
    return found


def _registry_access_env() -> Dict[str, str]:
    """CA bundle, proxies, npm settings and the user's ~/.npmrc (npm wouldn't find it under the fake HOME)."""
    env = {name: value for name, value in os.environ.items()
           if name in _REGISTRY_ACCESS_VARS or name.lower().startswith("npm_config_")}
    user_npmrc = Path.home() / ".npmrc"
    if "NPM_CONFIG_USERCONFIG" not in env and "npm_config_userconfig" not in env and user_npmrc.is_file():
        env["NPM_CONFIG_USERCONFIG"] = str(user_npmrc)
    return env


# ------------------------------------------------------------------------------------------- the gateway


def emitter_config(port: int, model_base_url: str, log_file: Path, otel: Mapping[str, Any]) -> Dict[str, Any]:
    """The gateway config: the offline base (fake provider at 3/15/0.3/3.75 USD per 1M tokens, heartbeat and
    mDNS off) plus ``diagnostics.otel`` = ``otel`` (our rendered block) and the plugin enabled."""
    return merged(base_config(port, model_base_url, log_file), {
        "diagnostics": {"enabled": True, "otel": dict(otel)},
        "plugins": {"allow": list(PLUGIN_ALLOW), "entries": {OTEL_PLUGIN_ID: {"enabled": True}}},
        "agents": {"list": [{"id": "main", "default": True}, {"id": SECOND_AGENT}]},
    })


@dataclass
class MessageRun:
    """One message through ``chat.send`` + ``agent.wait``, with wall-clock times (``time.time()``)."""

    run_id: str
    status: Optional[str]
    sent_at: float        # just before the chat.send CLI call started
    accepted_at: float    # chat.send answered (the gateway has queued the run)
    finished_at: float    # agent.wait answered
    wait_result: Dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class EmitterGateway(OpenClawGateway):
    """``openclaw gateway run`` of 2026.4.26 exporting OTLP metrics as configured by ``otel``.

    ``stage`` overrides the staged runtime deps directory and gives npm registry access (used by
    :func:`stage` only); by default the gateway uses the staged cache and a dead registry.
    """

    def __init__(self, workdir: Path, model_base_url: str, otel: Mapping[str, Any],
                 stage: Optional[Path] = None) -> None:
        workdir = Path(workdir)
        port = free_port()
        self._stage = stage
        super().__init__(workdir, model_base_url, version=VERSION,
                         config=emitter_config(port, model_base_url, workdir / "openclaw.log", otel))
        self.port = port
        self.started_at = time.time()

    @property
    def stage_dir(self) -> Path:
        return self._stage if self._stage is not None else require_staged()

    @property
    def env(self) -> Dict[str, str]:
        env = dict(super().env)
        env["OPENCLAW_PLUGIN_STAGE_DIR"] = str(self.stage_dir)
        if self._stage is not None:
            env.update(_registry_access_env())
        else:
            env["npm_config_registry"] = DEAD_REGISTRY
            env["npm_config_offline"] = "true"
        return env

    def start(self, timeout: float = 600) -> "EmitterGateway":
        """Start and wait for ``/readyz`` (1-2 min on 2 idle cores, several on a loaded machine)."""
        self.started_at = time.time()
        super().start(timeout=timeout)
        return self

    def diagnostics(self, lines: int = 30) -> str:
        """Console tail plus any npm install OpenClaw attempted since start (a dependency not staged)."""
        attempts = install_attempts(self.stage_dir, since=self.started_at)
        text = f"gateway console (last {lines} lines):\n{self.console_tail(lines)}"
        if attempts:
            text += (f"\n{len(attempts)} npm install(s) by OpenClaw since start (a dependency not staged?); "
                     f"the last one:\n{attempts[-1]}")
        return text

    # -- Gateway RPC ---------------------------------------------------------------------------------------
    def call(self, method: str, params: Dict[str, Any], timeout: float = 60,
             connect_retry_seconds: float = 300) -> Dict[str, Any]:
        """``openclaw gateway call <method> --json --params ...``; the parsed answer, or a failure with logs.

        While this OpenClaw installs a runtime dep its event loop stalls and a CLI connect times out
        ("gateway request timeout for connect"); such calls are retried for ``connect_retry_seconds``.
        Only idempotent calls come through here (``chat.send`` carries an idempotency key).
        """
        deadline = time.monotonic() + connect_retry_seconds
        while True:
            proc = self.run_cli("gateway", "call", method, "--json", "--params", json.dumps(params),
                                "--timeout", str(int(timeout * 1000)), timeout=timeout + 90)
            try:
                answer = json.loads(proc.stdout) if proc.stdout.strip() else None
            except ValueError:
                answer = None
            if proc.returncode == 0 and isinstance(answer, dict):
                return answer
            connect_failed = "gateway connect failed" in proc.stderr or "timeout for connect" in proc.stderr
            if not (connect_failed and self.running and time.monotonic() < deadline):
                raise AssertionError(
                    f"gateway call {method} failed: rc={proc.returncode}\nstdout: {proc.stdout[-1500:]}\n"
                    f"stderr: {proc.stderr[-1500:]}\n{self.diagnostics()}")
            time.sleep(5)

    def chat_send(self, message: str, session_key: str = SESSION_KEY) -> str:
        """Queue a message to the agent (the webchat path); returns the run id."""
        answer = self.call("chat.send", {"sessionKey": session_key, "message": message,
                                         "idempotencyKey": uuid.uuid4().hex}, timeout=120)
        run_id = answer.get("runId")
        if not run_id:
            raise AssertionError(f"chat.send answered without a runId: {answer}")
        return str(run_id)

    def agent_wait(self, run_id: str, timeout: float = 300) -> Dict[str, Any]:
        return self.call("agent.wait", {"runId": run_id, "timeoutMs": int(timeout * 1000)}, timeout=timeout + 30)

    def send_message(self, message: str, timeout: float = 300, session_key: str = SESSION_KEY) -> MessageRun:
        """chat.send then agent.wait: one model call (1000 input + 200 output tokens with FakeOpenAI)."""
        sent = time.time()
        run_id = self.chat_send(message, session_key)
        accepted = time.time()
        result = self.agent_wait(run_id, timeout=timeout)
        run = MessageRun(run_id, result.get("status"), sent, accepted, time.time(), result)
        if not run.ok:
            raise AssertionError(f"message {message!r} run {run_id}: agent.wait answered {result}\n"
                                 f"{self.diagnostics()}")
        return run


# ---------------------------------------------------------------------------------------------- staging


def stage() -> None:
    """Stage the runtime deps by running what the tests run, with the npm registry reachable.

    A gateway with the tests' config starts (staging the plugin's OpenTelemetry SDK) and answers one
    ``chat.send`` message (staging the agent runtime's packages).  It works in a sibling directory that is
    renamed into place with a stamp, so an interrupted run never leaves a half-staged directory that looks
    finished.  The OTLP endpoint is a closed loopback port: export errors don't matter here.
    """
    if is_staged():
        print(f"otlp-emitter: reusing {stage_dir()}")
        return
    target = stage_dir()
    partial = target.with_name(target.name + ".tmp")
    # A failed attempt's installs are kept: OpenClaw installs only what is still missing there.
    partial.mkdir(parents=True, exist_ok=True)
    print(f"otlp-emitter: staging runtime deps of openclaw@{VERSION} into {target} (needs the npm registry; "
          "a few minutes)", flush=True)
    started = time.monotonic()
    otel = {"enabled": True, "endpoint": f"http://127.0.0.1:{free_port()}", "protocol": "http/protobuf",
            "metrics": True, "flushIntervalMs": 60000}
    with tempfile.TemporaryDirectory(prefix="otlp-emitter-stage-") as tmp, FakeOpenAI() as fake:
        gateway = EmitterGateway(Path(tmp) / "gw", fake.base_url, otel, stage=partial)
        try:
            gateway.start(timeout=1800)
            gateway.send_message("stage the runtime deps", timeout=1200)
            if fake.completion_count() < 1:
                raise AssertionError("the warm-up message never reached the model")
        except BaseException as exc:
            gateway.stop()
            raise SystemExit(f"otlp-emitter: staging failed (what was installed is kept in {partial} for the "
                             f"next attempt): {exc}") from None
        gateway.stop()
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    _stamp_path().write_text(json.dumps(_stamp()), encoding="utf-8")
    packages = sum(1 for _ in target.glob("*/node_modules/**/package.json"))
    print(f"otlp-emitter: staged in {time.monotonic() - started:.0f}s ({packages} package.json files)")


if __name__ == "__main__":
    if sys.argv[1:] != ["stage"]:
        raise SystemExit("usage: python -m tests.support.otlp_emitter stage")
    stage()
