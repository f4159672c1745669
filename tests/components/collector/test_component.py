"""The collector's resource graph under Pulumi mocks (no Docker engine runs here)."""
from __future__ import annotations

import json
from typing import Any, Callable

import pulumi
import pytest
import yaml

from components.collector import OtelCollector, component, render
from components.collector.component import PROBE_SOURCE
from components.config import StackConfig
from tests.components.collector.configs import BEARER, build
from tests.support.pulumi_mocks import (
    FAKE_SECRETS,
    RecordedResource,
    RecordingMocks,
    ResourceTracker,
    plaintext_leaks,
    unwrap_secrets,
)

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
PROVIDER = "pulumi:providers:docker"
REMOTE_COMMAND = "command:remote:Command"
LOCAL_COMMAND = "command:local:Command"


def deploy(cfg: StackConfig, resources: ResourceTracker, check: Callable[[], None]) -> pulumi.Output:
    OtelCollector("collector", cfg)
    return resources.when_registered(check)


def one(mocks: RecordingMocks, typ: str) -> RecordedResource:
    found = mocks.by_type(typ)
    assert len(found) == 1, f"expected one {typ}, found {[r.name for r in found]}"
    return found[0]


def container_inputs(mocks: RecordingMocks) -> dict[str, Any]:
    return unwrap_secrets(one(mocks, CONTAINER).inputs)


@pulumi.runtime.test
def test_image_is_pinned_and_kept(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        image = one(pulumi_mocks, IMAGE).inputs
        assert image["name"] == "otel/opentelemetry-collector-contrib:0.159.0"
        assert image["keepLocally"] is True
        assert container_inputs(pulumi_mocks)["image"] == "sha256:collector-image"

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_upgrade_is_a_version_change(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        assert one(pulumi_mocks, IMAGE).inputs["name"] == "otel/opentelemetry-collector-contrib:0.160.1"

    return deploy(build({"version": "0.160.1"}), resources, check)


@pulumi.runtime.test
def test_ports_are_published_on_the_bind_address(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    cfg = build({"bindAddress": "192.168.1.111", "otlpPort": 14318, "healthPort": 23133, "selfMetricsPort": 18888})

    def check() -> None:
        ports = sorted(container_inputs(pulumi_mocks)["ports"], key=lambda p: p["internal"])
        assert ports == [
            {"internal": 4318, "external": 14318, "ip": "192.168.1.111", "protocol": "tcp"},
            {"internal": 8888, "external": 18888, "ip": "192.168.1.111", "protocol": "tcp"},
            {"internal": 13133, "external": 23133, "ip": "192.168.1.111", "protocol": "tcp"},
        ]

    return deploy(cfg, resources, check)


@pulumi.runtime.test
def test_scrape_mode_publishes_the_exporter_only_then(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    cfg = build({"mode": "scrape", "scrapePort": 18889})

    def check() -> None:
        internal = {p["internal"]: p["external"] for p in container_inputs(pulumi_mocks)["ports"]}
        assert internal == {4318: 4318, 13133: 13133, 8889: 18889}
        # No remote-write check in scrape mode: only the health probe runs.
        assert [c.name for c in pulumi_mocks.by_type(REMOTE_COMMAND)] == ["collector-health-check"]

    return deploy(cfg, resources, check)


@pulumi.runtime.test
def test_uploaded_config_is_the_rendered_one(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    cfg = build()

    def check() -> None:
        inputs = container_inputs(pulumi_mocks)
        assert inputs["uploads"] == [
            {"file": "/etc/otelcol-contrib/config.yaml", "content": render.render_collector_config(cfg), "permissions": "0644"}
        ]
        assert inputs["command"] == ["--config=/etc/otelcol-contrib/config.yaml"]
        uploaded = yaml.safe_load(inputs["uploads"][0]["content"])
        assert uploaded["service"]["pipelines"]["metrics"]["processors"] == ["memory_limiter", "metrics_transform", "batch"]
        labels = {label["label"]: label["value"] for label in inputs["labels"]}
        assert len(labels["org.openclaw-usage.config-sha256"]) == 64

    return deploy(cfg, resources, check)


@pulumi.runtime.test
def test_container_runtime_settings(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        inputs = container_inputs(pulumi_mocks)
        assert inputs["name"] == "openclaw-otel-collector"
        assert inputs["restart"] == "unless-stopped"
        assert inputs["mustRun"] is True
        assert inputs["memory"] == 512
        assert inputs["memorySwap"] == 512
        assert inputs["envs"] == ["GOMEMLIMIT=409MiB"]
        assert inputs["logDriver"] == "json-file"
        assert inputs["logOpts"] == {"max-size": "10m", "max-file": "3"}

    return deploy(build({"memoryLimitMib": 512}), resources, check)


@pulumi.runtime.test
def test_network_is_created_and_joined(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        network = one(pulumi_mocks, NETWORK).inputs
        assert network["name"] == "openclaw-usage" and network["driver"] == "bridge"
        assert container_inputs(pulumi_mocks)["networksAdvanced"] == [
            {"name": "openclaw-usage", "aliases": ["otel-collector"]}
        ]

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_localhost_prometheus_maps_the_host_gateway(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    def check() -> None:
        assert container_inputs(pulumi_mocks)["hosts"] == [{"host": "host.docker.internal", "ip": "host-gateway"}]

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_prometheus_network_is_joined_not_created(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    cfg = build({"prometheusNetwork": "monitoring", "prometheusContainerUrl": "http://prometheus:9090"})

    def check() -> None:
        assert [n.inputs["name"] for n in pulumi_mocks.by_type(NETWORK)] == ["openclaw-usage"]
        inputs = container_inputs(pulumi_mocks)
        assert [n["name"] for n in inputs["networksAdvanced"]] == ["openclaw-usage", "monitoring"]
        assert "hosts" not in inputs

    return deploy(cfg, resources, check)


@pulumi.runtime.test
def test_docker_provider_reaches_the_collector_host_over_ssh(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    def check() -> None:
        provider = one(pulumi_mocks, PROVIDER)
        assert provider.inputs["host"] == "ssh://sam@192.168.1.111:22"
        # Provider config reaches the engine JSON-encoded.
        assert json.loads(provider.inputs["sshOpts"]) == ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"]
        for typ in (CONTAINER, IMAGE, NETWORK):
            assert one(pulumi_mocks, typ).provider.startswith(
                "urn:pulumi:workstation::openclaw-usage::openclaw-usage:collector:OtelCollector$pulumi:providers:docker::collector-docker"
            )

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_local_docker_socket_when_pulumi_runs_on_the_collector_host(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    def check() -> None:
        assert one(pulumi_mocks, PROVIDER).inputs["host"] == "unix:///var/run/docker.sock"
        assert not pulumi_mocks.by_type(REMOTE_COMMAND)
        names = sorted(c.name for c in pulumi_mocks.by_type(LOCAL_COMMAND))
        assert names == ["collector-health-check", "collector-remote-write-check"]

    return deploy(build({"dockerHost": "unix:///var/run/docker.sock"}), resources, check)


@pulumi.runtime.test
def test_health_probe_runs_on_the_host_after_the_container(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    cfg = build({"healthPort": 23133, "bindAddress": "0.0.0.0"})

    def check() -> None:
        health = pulumi_mocks.named("collector-health-check")
        inputs = unwrap_secrets(health.inputs)
        assert 'python3 "$probe" health http://127.0.0.1:23133/ --timeout 60' in inputs["create"]
        assert "docker logs --tail 40 openclaw-otel-collector" in inputs["create"]
        assert inputs["stdin"] == PROBE_SOURCE
        assert inputs["connection"]["host"] == "192.168.1.111"
        # Replaced with the container: a new container is probed again.
        assert inputs["triggers"] == ["collector-container-id"]

    return deploy(cfg, resources, check)


@pytest.fixture
def container_opts(monkeypatch: pytest.MonkeyPatch) -> list[pulumi.ResourceOptions]:
    """The ResourceOptions each docker.Container is created with (mocks don't see them)."""
    seen: list[pulumi.ResourceOptions] = []
    real_container = component.docker.Container

    class SpyContainer(real_container):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, opts: pulumi.ResourceOptions, **kwargs: Any) -> None:
            seen.append(opts)
            super().__init__(*args, opts=opts, **kwargs)

    monkeypatch.setattr(component.docker, "Container", SpyContainer)
    return seen


@pulumi.runtime.test
def test_remote_write_check_runs_before_the_container(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, container_opts: list[pulumi.ResourceOptions]
) -> pulumi.Output:
    def check() -> None:
        write_check = unwrap_secrets(pulumi_mocks.named("collector-remote-write-check").inputs)
        assert 'python3 "$probe" remote-write http://localhost:9090' in write_check["create"]
        assert write_check["stdin"] == PROBE_SOURCE
        assert write_check["triggers"] == ["http://localhost:9090"]
        # A Prometheus without the receiver stops `up` before the container exists.
        (opts,) = container_opts
        assert [r._name for r in opts.depends_on] == ["collector-remote-write-check"]

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_replacement_removes_the_old_container_first(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, container_opts: list[pulumi.ResourceOptions]
) -> pulumi.Output:
    """A config change replaces the container; the new one needs the old one's name and host ports."""

    def check() -> None:
        (opts,) = container_opts
        assert opts.delete_before_replace is True

    return deploy(build(), resources, check)


@pulumi.runtime.test
def test_checks_can_be_turned_off(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check() -> None:
        assert not pulumi_mocks.by_type(REMOTE_COMMAND) and not pulumi_mocks.by_type(LOCAL_COMMAND)
        assert len(pulumi_mocks.by_type(CONTAINER)) == 1

    return deploy(build({"deployChecks": False}), resources, check)


@pulumi.runtime.test
def test_existing_mode_creates_nothing_but_exposes_the_snippet(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    cfg = build({"mode": "existing", "host": None})
    collector = OtelCollector("collector", cfg)

    def check() -> None:
        assert [r.typ for r in pulumi_mocks.resources] == ["openclaw-usage:collector:OtelCollector"]
        assert collector.container is None
        assert collector.existing_snippet == render.render_existing_snippet(cfg)
        assert collector.otlp_endpoint == "http://192.168.1.111:4318"

    return resources.when_registered(check)


@pulumi.runtime.test
def test_scrape_snippet_is_exposed(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    cfg = build({"mode": "scrape"})
    collector = OtelCollector("collector", cfg)

    def check() -> None:
        assert collector.scrape_snippet == render.render_scrape_snippet(cfg)
        assert "honor_labels: true" in (collector.scrape_snippet or "")
        assert collector.existing_snippet is None

    return resources.when_registered(check)


@pulumi.runtime.test
def test_bearer_token_reaches_the_container_only_as_a_secret(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    cfg = build(otlp={"bearerToken": BEARER})

    def check() -> None:
        secrets = list(FAKE_SECRETS.values())
        for resource in pulumi_mocks.resources:
            assert plaintext_leaks(resource.inputs, secrets) == [], resource.name
        inputs = container_inputs(pulumi_mocks)
        # Unwrapped, the env var holds the very token the rendered config references.
        assert f"OPENCLAW_OTLP_BEARER_TOKEN={BEARER}" in inputs["envs"]
        config = yaml.safe_load(inputs["uploads"][0]["content"])
        assert config["extensions"]["bearertokenauth/otlp"]["token"] == "${env:OPENCLAW_OTLP_BEARER_TOKEN}"
        assert BEARER not in inputs["uploads"][0]["content"]

    return deploy(cfg, resources, check)
