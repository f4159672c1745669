"""A real OpenClaw gateway (``openclaw gateway run``) for tests, isolated under a temporary directory.

Everything the gateway and its CLI touch lives under ``workdir``: ``HOME``, ``OPENCLAW_STATE_DIR``,
``OPENCLAW_CONFIG_PATH`` (plain JSON, which is valid JSON5), the log file. The config is the smallest one that
runs agent turns offline (reference: openclaw.md §9): ``gateway.mode: "local"`` on a free loopback port with a
token, one custom provider ``fake`` whose ``baseUrl`` points at a :class:`tests.support.fake_openai.FakeOpenAI`
and whose ``apiKey`` is a dummy, model prices of 3 / 15 / 0.3 / 3.75 USD per 1M tokens (so 1000 input + 200
output tokens cost 0.006 USD), heartbeats and mDNS off.

Typical use::

    with FakeOpenAI() as fake, OpenClawGateway(tmp_path / "gw", fake.base_url) as gateway:
        result = gateway.agent("ping")
        assert result.ok and fake.completion_count() == 1

To change the config before start, edit :attr:`OpenClawGateway.config` (a dict) and call
:meth:`write_config`, or run a tool against :attr:`config_path`; while the gateway runs it hot-reloads most
keys itself (``plugins.*``, ``models``, ``agents``; openclaw.md §6). :meth:`openclaw_command` gives the CLI
command line for tools that take one (e.g. ``openclaw_patch.py --openclaw``).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import requests

from tests.support import tools

DEFAULT_VERSION = "2026.9.6"
PROVIDER_ID = "fake"
MODEL_ID = "fake-model"
# USD per 1M tokens, all four fields set so OpenClaw uses them as they are (openclaw.md §5).
MODEL_COST = {"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75}
# Not a secret: a loopback-only test gateway's shared token.
TEST_GATEWAY_TOKEN = "test-gateway-token-not-a-secret"
FAKE_API_KEY = "sk-fake-test-key"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_config(port: int, model_base_url: str, log_file: Path) -> Dict[str, Any]:
    """The minimal offline gateway config (a plain dict; tests add their own keys)."""
    return {
        "gateway": {"mode": "local", "port": port, "bind": "loopback"},
        "discovery": {"mdns": {"mode": "off"}},
        "logging": {"file": str(log_file)},
        "models": {
            "mode": "merge",
            "providers": {
                PROVIDER_ID: {
                    "baseUrl": model_base_url,
                    "apiKey": FAKE_API_KEY,
                    "api": "openai-completions",
                    "models": [{"id": MODEL_ID, "name": "Fake Model", "cost": dict(MODEL_COST)}],
                }
            },
        },
        # Heartbeat turns would call the model on their own and disturb request counts.
        "agents": {"defaults": {"model": {"primary": f"{PROVIDER_ID}/{MODEL_ID}"}, "heartbeat": {"every": "0m"}}},
    }


@dataclass
class AgentResult:
    """Outcome of one ``openclaw agent ... --json`` call."""

    returncode: int
    stdout: str
    stderr: str
    envelope: Optional[Dict[str, Any]]  # the parsed --json envelope, None if stdout was not JSON

    @property
    def status(self) -> Optional[str]:
        """``ok``, ``error`` or ``timeout`` (OpenClaw's envelope), None without an envelope."""
        return (self.envelope or {}).get("status")

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.status == "ok"

    @property
    def error(self) -> Optional[Dict[str, Any]]:
        """``{kind, message}`` of a failed run; OpenClaw 2026.9.6 puts it under ``result.meta.error``."""
        env = self.envelope or {}
        return env.get("error") or ((env.get("result") or {}).get("meta") or {}).get("error")

    @property
    def error_kind(self) -> Optional[str]:
        return (self.error or {}).get("kind")

    @property
    def text(self) -> str:
        """The reply text(s) the user would see."""
        payloads = ((self.envelope or {}).get("result") or {}).get("payloads") or []
        return "\n".join(p.get("text") or "" for p in payloads)

    def describe(self) -> str:
        """Compact description for assertion messages (no secrets: the test token never appears here)."""
        return (f"rc={self.returncode} status={self.status} error={self.error}\n"
                f"text={self.text!r}\nstderr tail:\n{self.stderr[-2000:]}")


@dataclass
class ChatResult:
    """Outcome of one ``chat.send`` (the webchat / channel auto-reply path) awaited with ``agent.wait``."""

    run_id: str
    send: Dict[str, Any]   # chat.send's acknowledgement, e.g. {"runId": ..., "status": "started"}
    wait: Dict[str, Any]   # agent.wait's answer, e.g. {"runId", "status": "ok"|"error", "error", "terminalReply"}

    @property
    def status(self) -> Optional[str]:
        return self.wait.get("status")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def error(self) -> Optional[str]:
        error = self.wait.get("error")
        return error if isinstance(error, str) or error is None else json.dumps(error)

    @property
    def reply_text(self) -> Optional[str]:
        """The text the user sees for this turn (``terminalReply.text``), when OpenClaw reports one."""
        return (self.wait.get("terminalReply") or {}).get("text")


class OpenClawGateway:
    """One ``openclaw gateway run`` process with isolated state; a context manager (start/stop)."""

    def __init__(self, workdir: Path, model_base_url: str, version: str = DEFAULT_VERSION,
                 config: Optional[Dict[str, Any]] = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.version = version
        self.home = self.workdir / "home"
        self.state_dir = self.workdir / "state"
        self.config_path = self.workdir / "openclaw.json"
        self.log_file = self.workdir / "openclaw.log"       # OpenClaw's own JSON-lines log
        self.console_log = self.workdir / "gateway.out"      # the process's stdout/stderr
        self.port = free_port()
        self.token = TEST_GATEWAY_TOKEN
        self.config: Dict[str, Any] = config if config is not None else base_config(
            self.port, model_base_url, self.log_file)
        self.proc: Optional[subprocess.Popen] = None
        self.home.mkdir(exist_ok=True)
        self.state_dir.mkdir(exist_ok=True)
        self.write_config()

    # -- environment and CLI ---------------------------------------------------------------------------
    @property
    def cli(self) -> List[str]:
        """argv prefix of the OpenClaw CLI (Node 24 + openclaw.mjs of :attr:`version`)."""
        return tools.openclaw_cli(self.version)

    def openclaw_command(self) -> str:
        """The CLI as one shell-quoted command line, for tools taking ``--openclaw CMD``."""
        return " ".join(shlex.quote(part) for part in self.cli)

    @property
    def env(self) -> Dict[str, str]:
        """Environment isolating the gateway and its CLI from the machine's real OpenClaw state."""
        env = {
            "PATH": f"{tools.node_bin_dir()}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "OPENCLAW_STATE_DIR": str(self.state_dir),
            "OPENCLAW_CONFIG_PATH": str(self.config_path),
            "OPENCLAW_GATEWAY_TOKEN": self.token,
            "OPENCLAW_GATEWAY_PORT": str(self.port),
            "NO_COLOR": "1",
            "TMPDIR": str(self.workdir),
        }
        for passthrough in ("LANG", "LC_ALL", "TZ"):
            if passthrough in os.environ:
                env[passthrough] = os.environ[passthrough]
        return env

    def run_cli(self, *args: str, timeout: float = 120, input: Optional[str] = None) -> subprocess.CompletedProcess:
        """Run ``openclaw <args>`` in the isolated environment (works with or without the gateway running)."""
        return subprocess.run([*self.cli, *args], env=self.env, cwd=str(self.workdir), input=input,
                              capture_output=True, text=True, timeout=timeout)

    def write_config(self) -> None:
        """Write :attr:`config` to :attr:`config_path` atomically (the gateway watches this file)."""
        tmp = self.config_path.with_name(self.config_path.name + ".tmp")
        tmp.write_text(json.dumps(self.config, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.config_path)

    def read_config(self) -> Dict[str, Any]:
        """The config file as it is now (plain JSON: OpenClaw and our tools write JSON)."""
        return json.loads(self.config_path.read_text(encoding="utf-8"))

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self, timeout: float = 240) -> "OpenClawGateway":
        """Start ``openclaw gateway run`` and wait until ``/readyz`` answers 200 (about 30-60 s on 2 cores)."""
        log = open(self.console_log, "ab")
        self.proc = subprocess.Popen([*self.cli, "gateway", "run", "--port", str(self.port)], env=self.env,
                                     cwd=str(self.workdir), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"openclaw gateway exited with {self.proc.returncode}:\n{self.console_tail()}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"openclaw gateway not ready after {timeout:.0f}s:\n{self.console_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM the gateway's process group (it spawns helpers), SIGKILL if it doesn't exit in time.

        A gateway that restarted itself (a config change that needs a restart) runs on as a new process in
        a session of its own, out of reach of the first process group: it is found by its state dir."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.proc = None
        terminate(processes_with_env("OPENCLAW_STATE_DIR", str(self.state_dir)), timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "OpenClawGateway":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- logs ------------------------------------------------------------------------------------------
    def console_text(self) -> str:
        """Everything the gateway printed so far, without ANSI colours."""
        try:
            return _ANSI.sub("", self.console_log.read_text(encoding="utf-8", errors="replace"))
        except FileNotFoundError:
            return ""

    def console_tail(self, lines: int = 40) -> str:
        return "\n".join(self.console_text().splitlines()[-lines:])

    def wait_for_console(self, predicate: Callable[[str], bool], timeout: float = 60, what: str = "") -> str:
        """Poll the console log until ``predicate(text)``; return the text, or fail with the log tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.console_text()
            if predicate(text):
                return text
            if not self.running:
                break
            time.sleep(0.5)
        raise AssertionError(f"gateway log never showed {what or 'the expected line'} within {timeout:.0f}s:\n"
                             f"{self.console_tail()}")

    # -- agent turns -----------------------------------------------------------------------------------
    def agent(self, message: str, agent: str = "main", timeout: float = 180,
              extra_args: Sequence[str] = ()) -> AgentResult:
        """``openclaw agent --agent <agent> --message <message> --json`` through this gateway."""
        proc = self.run_cli("agent", "--agent", agent, "--message", message, "--json", *extra_args,
                            timeout=timeout)
        try:
            envelope = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            envelope = None
        return AgentResult(proc.returncode, proc.stdout, proc.stderr, envelope)


    def call(self, method: str, params: Mapping[str, Any], timeout: float = 60) -> Dict[str, Any]:
        """``openclaw gateway call <method> --json`` (the Gateway RPC); fails on a non-JSON answer."""
        proc = self.run_cli("gateway", "call", method, "--json", "--timeout", str(int(timeout * 1000)),
                            "--params", json.dumps(params), timeout=timeout + 60)
        try:
            answer = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError(f"gateway call {method} gave no JSON (rc={proc.returncode}):\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}") from None
        if proc.returncode != 0:
            raise AssertionError(f"gateway call {method} failed (rc={proc.returncode}): {answer}")
        return answer

    def chat_send(self, message: str, session_key: str = "agent:main:main", timeout: float = 180) -> ChatResult:
        """Send ``message`` the way webchat and channels do (RPC ``chat.send``) and wait for the run to end.

        This path (the auto-reply runner) is the one that emits ``model.usage``, hence the OTLP token and
        cost metrics (openclaw.md §9/§12); ``openclaw agent`` is the CLI path.
        """
        run_id = f"test-{uuid.uuid4()}"
        send = self.call("chat.send", {"sessionKey": session_key, "message": message, "idempotencyKey": run_id})
        run_id = send.get("runId", run_id)
        wait = self.call("agent.wait", {"runId": run_id, "timeoutMs": int(timeout * 1000)}, timeout=timeout + 10)
        return ChatResult(run_id, send, wait)


def merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """Recursive dict merge (``extra`` wins), for building test configs from :func:`base_config`."""
    out: Dict[str, Any] = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def processes_with_env(name: str, value: str, prefix: bool = False) -> List[int]:
    """PIDs of processes whose environment has ``name=value`` (or, with ``prefix``, a path inside the
    directory ``value``), from Linux /proc."""
    wanted = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours
            continue
        # a prefix is a directory: /tmp/pytest-2 must not match /tmp/pytest-21/...
        if any(v == wanted or (prefix and v.startswith(wanted + b"/")) for v in variables):
            found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(gone)"


def terminate(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM, then SIGKILL whatever is still alive after ``timeout`` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
            time.sleep(0.1)
        pids = alive
        if not pids:
            return


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
