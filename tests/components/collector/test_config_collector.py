"""Bad collector settings are rejected before any resource exists, each problem naming its key."""
from __future__ import annotations

from typing import Any

import pytest

from tests.components.collector.configs import build, problems


@pytest.mark.parametrize(
    ("collector", "expected"),
    [
        # Port clashes between published ports.
        ({"healthPort": 4318}, "collector.healthPort: port 4318 clashes with otlpPort"),
        ({"mode": "scrape", "scrapePort": 13133}, "collector.scrapePort: port 13133 clashes with healthPort"),
        ({"selfMetricsPort": 4318}, "collector.selfMetricsPort: port 4318 clashes with otlpPort"),
        ({"otlpPort": 70000}, "collector.otlpPort: Input should be less than or equal to 65535"),
        # Bind address.
        ({"bindAddress": "all"}, "collector.bindAddress: must be an IP address"),
        ({"bindAddress": "192.168.1.111:4318"}, "collector.bindAddress: must be an IP address"),
        # Remote write needs a Prometheus, given as a base URL.
        ({"prometheusUrl": None}, "collector.prometheusUrl: required when mode is 'remote-write'"),
        ({"prometheusUrl": "http://localhost:9090/api/v1/write"}, "collector.prometheusUrl: give Prometheus's base URL"),
        ({"prometheusUrl": "localhost:9090"}, "collector.prometheusUrl:"),
        ({"prometheusUrl": "http://localhost:9090/?x=1"}, "collector.prometheusUrl: must be a base URL"),
        # Host and image pin.
        ({"host": None}, "collector.host: required when mode is 'remote-write'"),
        ({"host": "nas"}, "collector.host: unknown host 'nas'"),
        ({"version": "latest"}, "collector.version: must be a pinned version like 0.159.0 (got 'latest')"),
        ({"version": "0.159"}, "collector.version: must be a pinned version"),
        # Docker daemon and names.
        ({"dockerHost": "/var/run/docker.sock"}, "collector.dockerHost: must be a Docker daemon URL"),
        ({"containerName": "otel collector"}, "collector.containerName:"),
        ({"networkName": "-bad"}, "collector.networkName:"),
        # Prometheus in Docker.
        ({"prometheusNetwork": "monitoring"}, "collector.prometheusContainerUrl: required when prometheusNetwork"),
        (
            {"prometheusNetwork": "monitoring", "prometheusContainerUrl": "http://localhost:9090"},
            "collector.prometheusContainerUrl: localhost is the collector container itself",
        ),
        (
            {"prometheusNetwork": "openclaw-usage", "prometheusContainerUrl": "http://prometheus:9090"},
            "collector.prometheusNetwork: 'openclaw-usage' is also networkName",
        ),
        # Limits.
        ({"memoryLimitMib": 16}, "collector.memoryLimitMib: Input should be greater than or equal to 64"),
        ({"batchTimeoutSeconds": 0}, "collector.batchTimeoutSeconds: Input should be greater than 0"),
        ({"mode": "push"}, "collector.mode:"),
        ({"deployCheck": False}, "collector.deployCheck: unknown key"),
    ],
)
def test_bad_collector_config_is_rejected_naming_the_key(collector: dict[str, Any], expected: str) -> None:
    found = problems(collector)
    assert any(line.startswith(expected) for line in found), found


def test_existing_mode_needs_the_gateway_endpoint() -> None:
    found = problems({"mode": "existing"}, otlp={"endpoint": None})
    assert any(line.startswith("otlp.endpoint: required when collector.mode is 'existing'") for line in found), found


def test_field_problems_are_reported_together() -> None:
    found = problems({"bindAddress": "nope", "version": "latest", "dockerHost": "docker.lan"})
    assert {line.split(":")[0] for line in found} >= {
        "collector.bindAddress",
        "collector.version",
        "collector.dockerHost",
    }, found


def test_cross_field_problems_are_reported_together() -> None:
    found = problems({"healthPort": 4318, "prometheusUrl": None, "prometheusNetwork": "openclaw-usage"})
    assert {line.split(":")[0] for line in found} >= {
        "collector.healthPort",
        "collector.prometheusUrl",
        "collector.prometheusNetwork",
    }, found


@pytest.mark.parametrize(
    "collector",
    [
        {},
        {"mode": "scrape", "prometheusUrl": None},
        {"mode": "existing", "host": None},
        {"bindAddress": "::"},
        {"dockerHost": "unix:///var/run/docker.sock"},
        {"prometheusNetwork": "monitoring", "prometheusContainerUrl": "http://prometheus:9090"},
        {"selfMetricsPort": 18888, "deployChecks": False},
    ],
)
def test_good_collector_configs_load(collector: dict[str, Any]) -> None:
    build(collector)
