"""Rendered configs against a real OpenTelemetry Collector (ocb build of the pinned contrib release).

``otelcol validate`` builds every component of a config without running it: each rendered variant must
pass.  One run test then starts the collector on a rendered remote-write config and checks the whole path
into a real Prometheus 2.42, the health_check endpoint (what ``pulumi up`` probes) and the bearer token.
Only the listen addresses change for the run (loopback, free ports): the tests never bind 0.0.0.0.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from components.collector import probe, render
from components.config import StackConfig
from enforcer.settings import DEFAULT_BY_MODEL_NAMES
from tests.components.collector.configs import BEARER, build
from tests.components.collector.services import free_port, log_tail, prometheus, query, stop, wait_http
from tests.support.tools import otelcol_bin

VARIANTS: dict[str, Callable[[], tuple[StackConfig, Callable[[StackConfig], str]]]] = {
    "remote-write (workstation)": lambda: (build(), render.render_collector_config),
    "remote-write + bearer token": lambda: (build(otlp={"bearerToken": BEARER}), render.render_collector_config),
    "remote-write https": lambda: (
        build({"prometheusUrl": "https://prom.example.org/prometheus"}),
        render.render_collector_config,
    ),
    "remote-write on prometheusNetwork": lambda: (
        build({"prometheusNetwork": "monitoring", "prometheusContainerUrl": "http://prometheus:9090"}),
        render.render_collector_config,
    ),
    "remote-write sub-second batch": lambda: (build({"batchTimeoutSeconds": 0.5}), render.render_collector_config),
    "scrape": lambda: (build({"mode": "scrape", "prometheusUrl": None}), render.render_collector_config),
    "scrape + token + self metrics": lambda: (
        build({"mode": "scrape", "selfMetricsPort": 18888}, otlp={"bearerToken": BEARER}),
        render.render_collector_config,
    ),
    "existing snippet, remote write + token": lambda: (
        build({"mode": "existing", "host": None}, otlp={"bearerToken": BEARER}),
        render.render_existing_snippet,
    ),
    "existing snippet, scrape endpoint": lambda: (
        build({"mode": "existing", "prometheusUrl": None}),
        render.render_existing_snippet,
    ),
}


def collector_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp"), render.BEARER_TOKEN_ENV: BEARER}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_rendered_config_validates(variant: str, tmp_path: Path) -> None:
    cfg, render_text = VARIANTS[variant]()
    config = tmp_path / "config.yaml"
    config.write_text(render_text(cfg))
    done = subprocess.run(
        [str(otelcol_bin()), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=collector_env(),
    )
    assert done.returncode == 0, f"{variant}:\n{done.stdout}\n{done.stderr}"
    assert BEARER not in done.stdout + done.stderr


def test_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    """The validation above can fail: an unknown key in a rendered config is refused."""
    document = render.collector_config(build())
    document["processors"]["batch"]["timeout_typo"] = "1s"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document))
    done = subprocess.run(
        [str(otelcol_bin()), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=collector_env(),
    )
    assert done.returncode != 0
    assert "timeout_typo" in done.stdout + done.stderr


# ------------------------------------------------------------------------------------------- a real run


def on_loopback(document: dict[str, Any], prometheus_base: str | None) -> tuple[dict[str, Any], dict[str, int]]:
    """The rendered config with listen addresses moved to free loopback ports (and Prometheus on loopback)."""
    document = copy.deepcopy(document)
    ports = {"otlp": free_port(), "health": free_port(), "self": free_port(), "exporter": free_port()}
    document["receivers"]["otlp"]["protocols"]["http"]["endpoint"] = f"127.0.0.1:{ports['otlp']}"
    document["extensions"]["health_check"]["endpoint"] = f"127.0.0.1:{ports['health']}"
    reader = document["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    reader.update(host="127.0.0.1", port=ports["self"])
    if render.REMOTE_WRITE_TYPE in document["exporters"]:
        assert prometheus_base is not None
        document["exporters"][render.REMOTE_WRITE_TYPE]["endpoint"] = f"{prometheus_base}/api/v1/write"
    if "prometheus" in document["exporters"]:
        document["exporters"]["prometheus"]["endpoint"] = f"127.0.0.1:{ports['exporter']}"
    return document, ports


@pytest.fixture
def run_collector(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], subprocess.Popen]]:
    procs: list[subprocess.Popen] = []

    def start(document: dict[str, Any]) -> subprocess.Popen:
        config = tmp_path / f"config-{len(procs)}.yaml"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        log = tmp_path / f"otelcol-{len(procs)}.log"
        env = collector_env()
        env["GOMEMLIMIT"] = "204MiB"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(otelcol_bin()), f"--config={config}"], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        proc.log = log  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop(proc)
        assert BEARER not in log_tail(proc.log, 10_000)  # type: ignore[attr-defined]


def otlp_cost_payload(value: float) -> bytes:
    """OTLP/JSON: a cumulative monotonic sum like the gateway's openclaw.cost.usd (unit "1")."""
    return otlp_costs_payload([("anthropic", "claude-sonnet-4", "main", "webchat", value)])


def otlp_costs_payload(points: list[tuple[str, str, str, str, float]], now_ns: int | None = None) -> bytes:
    """One export of the gateway's openclaw.cost.usd with a point per (provider, model, agent, channel): as
    the OpenTelemetry JS SDK sends it, every point carries the same collection time."""
    now = time.time_ns() if now_ns is None else now_ns
    data_points = []
    for provider, model, agent, channel, value in points:
        attributes = [
            {"key": "openclaw.provider", "value": {"stringValue": provider}},
            {"key": "openclaw.model", "value": {"stringValue": model}},
            {"key": "openclaw.agent", "value": {"stringValue": agent}},
            {"key": "openclaw.channel", "value": {"stringValue": channel}},
        ]
        data_points.append({"attributes": attributes, "startTimeUnixNano": str(now - 60_000_000_000),
                            "timeUnixNano": str(now), "asDouble": value})
    metric = {
        "name": "openclaw.cost.usd",
        "unit": "1",
        "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": data_points},
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "openclaw-gateway"}}]}
    body = {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"scope": {"name": "openclaw"}, "metrics": [metric]}]}]}
    return json.dumps(body).encode()


def post_otlp(port: int, body: bytes, token: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/metrics", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_remote_write_path_health_and_token(tmp_path: Path, run_collector: Callable[..., subprocess.Popen]) -> None:
    cfg = build({"batchTimeoutSeconds": 1}, otlp={"bearerToken": BEARER})
    with prometheus(tmp_path / "prom", remote_write_receiver=True) as base:
        document, ports = on_loopback(render.collector_config(cfg), base)
        proc = run_collector(document)

        # What `pulumi up` does after creating the container: probe the health_check extension.
        health = probe.probe_health(f"http://127.0.0.1:{ports['health']}/", timeout=30, interval=0.2)
        assert health.ok, f"{health.message}\n{log_tail(proc.log)}"

        # The receiver refuses requests without the token, accepts them with it.
        assert post_otlp(ports["otlp"], otlp_cost_payload(1.25), token=None) == 401
        assert post_otlp(ports["otlp"], otlp_cost_payload(1.25), token="wrong") == 401
        assert post_otlp(ports["otlp"], otlp_cost_payload(1.25), token=BEARER) == 200

        # memory_limiter -> batch (1 s) -> remote write: the series lands under the contract's name.
        deadline = time.monotonic() + 30
        result: list = []
        while time.monotonic() < deadline and not result:
            result = query(base, 'openclaw_cost_usd_total{openclaw_provider="anthropic"}')
            time.sleep(0.5)
        assert result, f"no openclaw_cost_usd_total in Prometheus:\n{log_tail(proc.log)}"
        labels = result[0]["metric"]
        assert labels["openclaw_model"] == "claude-sonnet-4" and labels["job"] == "openclaw-gateway"
        assert float(result[0]["value"][1]) == 1.25

        # The collector's own metrics on the telemetry reader.
        wait_http(f"http://127.0.0.1:{ports['self']}/metrics", proc, proc.log, timeout=10)
    assert proc.poll() is None, log_tail(proc.log)
    # Current keys and names only: the pinned release warns about nothing in the rendered config.
    warnings = [line for line in log_tail(proc.log, 10_000).splitlines() if "\twarn\t" in line]
    assert not warnings, warnings


def test_scrape_mode_exposes_the_series(tmp_path: Path, run_collector: Callable[..., subprocess.Popen]) -> None:
    cfg = build({"mode": "scrape", "batchTimeoutSeconds": 1})
    document, ports = on_loopback(render.collector_config(cfg), None)
    proc = run_collector(document)
    assert probe.probe_health(f"http://127.0.0.1:{ports['health']}/", timeout=30, interval=0.2).ok, log_tail(proc.log)
    assert post_otlp(ports["otlp"], otlp_cost_payload(2.5), token=None) == 200
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline and "openclaw_cost_usd_total" not in text:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{ports['exporter']}/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            pass
        time.sleep(0.5)
    assert 'openclaw_cost_usd_total{' in text, f"{text[-2000:]}\n{log_tail(proc.log)}"
    assert 'openclaw_provider="anthropic"' in text


def _by_labels(vector: list, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(item["metric"].get(k, "") for k in keys): float(item["value"][1]) for item in vector}


BY_MODEL = DEFAULT_BY_MODEL_NAMES[0]


def test_spend_by_model_sums_agents_and_channels_exactly(tmp_path: Path,
                                                          run_collector: Callable[..., subprocess.Popen]) -> None:
    """The series the enforcer reads (under the name it looks for): per provider/model, the exact sum of the
    per-agent series of each export.

    Two exports a second apart land in one batch (5 s timeout): the aggregation runs per export, before the
    batch, so the second doesn't add to the first."""
    cfg = build({"batchTimeoutSeconds": 5})
    with prometheus(tmp_path / "prom", remote_write_receiver=True) as base:
        document, ports = on_loopback(render.collector_config(cfg), base)
        proc = run_collector(document)
        assert probe.probe_health(f"http://127.0.0.1:{ports['health']}/", timeout=30, interval=0.2).ok, \
            log_tail(proc.log)
        first = [("anthropic", "claude-sonnet-4", "main", "webchat", 1.25),
                 ("anthropic", "claude-sonnet-4", "ops", "webchat", 0.5),
                 ("anthropic", "claude-sonnet-4", "ops", "telegram", 0.125),
                 ("openai", "gpt-5", "main", "webchat", 2.0)]
        assert post_otlp(ports["otlp"], otlp_costs_payload(first), token=None) == 200
        time.sleep(1.0)
        second = [(p, m, a, c, v + 0.25) for p, m, a, c, v in first[:2]] + first[2:]
        assert post_otlp(ports["otlp"], otlp_costs_payload(second), token=None) == 200

        expected = {("anthropic", "claude-sonnet-4"): 2.375, ("openai", "gpt-5"): 2.0}
        deadline = time.monotonic() + 40
        by_model: dict = {}
        while time.monotonic() < deadline and by_model != expected:
            by_model = _by_labels(query(base, BY_MODEL), "openclaw_provider", "openclaw_model")
            time.sleep(0.5)
        assert by_model == expected, f"{by_model}\n{log_tail(proc.log)}"

        series = query(base, BY_MODEL)
        for item in series:
            labels = item["metric"]
            # Agent and channel are summed away; the gateway's identity (job) stays.
            assert "openclaw_agent" not in labels and "openclaw_channel" not in labels, labels
            assert labels["job"] == "openclaw-gateway", labels
        # Each export became one sample per model, never a partial sum: the history holds only totals.
        history = query(base, BY_MODEL + '{openclaw_model="claude-sonnet-4"}[5m]')
        values = [float(v) for _, v in history[0]["values"]]
        assert values == [1.875, 2.375], values

        # The per-agent series are still there, unchanged.
        raw = _by_labels(query(base, "openclaw_cost_usd_total"), "openclaw_agent", "openclaw_channel", "openclaw_model")
        assert raw == {("main", "webchat", "claude-sonnet-4"): 1.5, ("ops", "webchat", "claude-sonnet-4"): 0.75,
                       ("ops", "telegram", "claude-sonnet-4"): 0.125, ("main", "webchat", "gpt-5"): 2.0}, raw
    assert proc.poll() is None, log_tail(proc.log)
    warnings = [line for line in log_tail(proc.log, 10_000).splitlines() if "\twarn\t" in line]
    assert not warnings, warnings
