"""The whole metrics path on real components, on loopback: gateway -> collector -> Prometheus.

* **Prometheus 2.42** (Debian) with the remote-write receiver (``tests/enforcer/helpers/prom.py``);
* **the OpenTelemetry Collector** (ocb build of the pinned contrib release) running the config that
  ``render_collector_config`` renders for a remote-write stack, with only its listen addresses and the
  remote-write URL moved to free loopback ports (the collector tests' ``on_loopback``);
* **OpenClaw 2026.4.26** (``tests/support/otlp_emitter.py``) whose ``diagnostics.otel`` block is the one the
  gateway component renders for the same stack (``components.gateway.spec.otel_block``), its endpoint moved
  to the collector's loopback port, and a fake OpenAI-compatible model (1000 input + 200 output tokens per
  answer at 3 / 15 USD per 1M tokens = 0.006 USD per message).

Used by ``tests/e2e/test_metrics_pipeline.py`` and ``benchmarks/pipeline_latency.py``.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import yaml

from components.collector import probe, render
from components.config import StackConfig
from components.gateway.spec import otel_block
from tests.components.collector.configs import build
from tests.components.collector.services import log_tail
from tests.components.collector.test_otelcol import collector_env, on_loopback
from tests.enforcer.helpers.prom import PrometheusServer
from tests.support import tools
from tests.support.fake_openai import FakeOpenAI
from tests.support.otlp_emitter import VERSION, EmitterGateway

#: One message: 1000 input tokens at 3 USD/1M + 200 output tokens at 15 USD/1M.
USD_PER_MESSAGE = 0.006
INPUT_TOKENS_PER_MESSAGE = 1000
OUTPUT_TOKENS_PER_MESSAGE = 200

COST_SERIES = "openclaw_cost_usd_total"
TOKENS_SERIES = "openclaw_tokens_total"

Vector = List[Dict[str, Any]]


def stack_config(flush_interval_ms: int, batch_timeout_seconds: float) -> StackConfig:
    """The reference (workstation) stack with a fast export: what the test deploys, minus the addresses."""
    return build({"batchTimeoutSeconds": batch_timeout_seconds}, otlp={"flushIntervalMs": flush_interval_ms})


def total(vector: Vector) -> float:
    return sum(float(sample["value"][1]) for sample in vector)


class CollectorProcess:
    """The ocb-built collector on a config file; stopped with SIGTERM (SIGKILL after 15 s)."""

    def __init__(self, workdir: Path, document: Dict[str, Any], memory_limit_mib: int) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "otelcol.yaml"
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        self.log_path = self.workdir / "otelcol.log"
        self.memory_limit_mib = memory_limit_mib
        self.proc: Optional[subprocess.Popen] = None

    def start(self, health_url: str, timeout: float = 60) -> "CollectorProcess":
        env = collector_env()
        env["GOMEMLIMIT"] = f"{self.memory_limit_mib}MiB"  # as the component sets it on the container
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen([str(tools.otelcol_bin()), f"--config={self.config_path}"],
                                         stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(self.workdir))
        health = probe.probe_health(health_url, timeout=timeout, interval=0.2)
        if not health.ok:
            raise AssertionError(f"collector not healthy: {health.message}\n{self.tail()}")
        return self

    def tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class MetricsPipeline:
    """Prometheus, collector, fake model and emitting gateway, started in that order, stopped in reverse."""

    def __init__(self, workdir: Path, flush_interval_ms: int = 1000, batch_timeout_seconds: float = 1.0) -> None:
        self.workdir = Path(workdir)
        self.cfg = stack_config(flush_interval_ms, batch_timeout_seconds)
        self.flush_interval_ms = flush_interval_ms
        self.batch_timeout_seconds = batch_timeout_seconds
        self.prom: Optional[PrometheusServer] = None
        self.collector: Optional[CollectorProcess] = None
        self.fake: Optional[FakeOpenAI] = None
        self.gateway: Optional[EmitterGateway] = None
        self.collector_document: Dict[str, Any] = {}
        self.otel: Dict[str, Any] = {}

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> "MetricsPipeline":
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.prom = PrometheusServer(self.workdir / "prometheus").start()
        # Our rendered text, parsed back: what the collector container would read, addresses aside.
        rendered = yaml.safe_load(render.render_collector_config(self.cfg))
        self.collector_document, ports = on_loopback(rendered, self.prom.url)
        self.collector = CollectorProcess(self.workdir / "collector", self.collector_document,
                                          render.memory_limits(self.cfg)["gomemlimit_mib"])
        self.collector.start(f"http://127.0.0.1:{ports['health']}/")
        self.fake = FakeOpenAI().start()
        # The block the gateway component patches into openclaw.json, pointed at the loopback collector.
        self.otel = otel_block(self.cfg)
        self.otel["endpoint"] = f"http://127.0.0.1:{ports['otlp']}"
        self.gateway = EmitterGateway(self.workdir / "gateway", self.fake.base_url, self.otel)
        self.gateway.start()

    def stop(self) -> None:
        for stop in (self.gateway and self.gateway.stop, self.fake and self.fake.stop,
                     self.collector and self.collector.stop, self.prom and self.prom.stop):
            if stop:
                try:
                    stop()
                except Exception:  # keep stopping the rest
                    pass

    def __enter__(self) -> "MetricsPipeline":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observing -------------------------------------------------------------------------------------
    def query(self, expr: str) -> Vector:
        assert self.prom is not None
        return self.prom.query(expr)

    def wait_for(self, expr: str, done: Callable[[Vector], bool], timeout: float, what: str,
                 interval: float = 0.1) -> Vector:
        """Poll ``expr`` until ``done(result)``; on timeout fail with the last result and every log tail."""
        deadline = time.monotonic() + timeout
        result: Vector = []
        while True:
            result = self.query(expr)
            if done(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{what}: not reached within {timeout:.0f}s; last {expr} = {result}\n"
                                     f"{self.logs()}")
            time.sleep(interval)

    def logs(self) -> str:
        """The last lines of every component's log, for failure messages."""
        parts = []
        if self.gateway is not None:
            parts.append("--- gateway (last lines) ---\n" + self.gateway.console_tail(30))
        if self.collector is not None:
            parts.append("--- collector (last lines) ---\n" + self.collector.tail(20))
        if self.prom is not None:
            parts.append("--- prometheus (last lines) ---\n" + log_tail(self.prom.log_path, 10))
        return "\n".join(parts)


def environment_summary() -> Dict[str, str]:
    """Versions of what ran, for benchmark output."""
    out = {"openclaw": VERSION}
    try:
        out["node"] = subprocess.run([str(tools.node_bin_dir() / "node"), "--version"], capture_output=True,
                                     text=True, timeout=30).stdout.strip()
        out["otelcol"] = subprocess.run([str(tools.otelcol_bin()), "--version"], capture_output=True, text=True,
                                        timeout=30).stdout.strip()
        out["prometheus"] = subprocess.run([str(tools.prometheus_bin()), "--version"], capture_output=True,
                                           text=True, timeout=30).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    out["cpus"] = str(os.cpu_count())
    return out
