"""The rendered collector config, scrape snippet and existing-collector snippet, parsed back and checked."""
from __future__ import annotations

from typing import Any

import pytest
import yaml

from components.collector import render
from tests.components.collector.configs import BEARER, build


def parsed(text: str) -> dict[str, Any]:
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


class TestRemoteWrite:
    """Mode remote-write (the default and the reference stack)."""

    def test_pipeline_is_otlp_memory_limiter_spend_by_model_batch_remote_write(self) -> None:
        config = parsed(render.render_collector_config(build()))
        assert config["service"]["pipelines"] == {
            "metrics": {
                "receivers": ["otlp"],
                "processors": ["memory_limiter", "metrics_transform", "batch"],
                "exporters": ["prometheus_remote_write"],
            }
        }
        # Only metrics: the gateway exports no traces or logs to this collector.
        assert set(config["service"]["pipelines"]) == {"metrics"}

    def test_spend_by_model_copy_sums_cost_over_agents_and_channels(self) -> None:
        """The enforcer's fast path: a copy of the cost counter keeping only provider and model."""
        config = parsed(render.render_collector_config(build()))
        assert config["processors"]["metrics_transform"] == {
            "transforms": [
                {
                    "include": "openclaw.cost.usd",
                    "match_type": "strict",
                    "action": "insert",  # the per-agent series pass through unchanged
                    "new_name": "openclaw.cost.usd.by_model",
                    "operations": [
                        {
                            "action": "aggregate_labels",
                            "label_set": ["openclaw.provider", "openclaw.model"],
                            "aggregation_type": "sum",
                        }
                    ],
                }
            ]
        }

    def test_servers_bind_all_interfaces_inside_the_container(self) -> None:
        config = parsed(render.render_collector_config(build()))
        assert config["receivers"]["otlp"]["protocols"] == {"http": {"endpoint": "0.0.0.0:4318"}}
        assert config["extensions"]["health_check"] == {"endpoint": "0.0.0.0:13133"}
        assert config["service"]["extensions"] == ["health_check"]

    def test_internal_ports_do_not_follow_published_ports(self) -> None:
        cfg = build({"otlpPort": 14318, "healthPort": 23133, "bindAddress": "127.0.0.1"})
        config = parsed(render.render_collector_config(cfg))
        assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
        assert config["extensions"]["health_check"]["endpoint"] == "0.0.0.0:13133"

    def test_localhost_prometheus_is_reached_through_the_host_gateway(self) -> None:
        cfg = build()  # prometheusUrl: http://localhost:9090, as on the workstation
        exporter = parsed(render.render_collector_config(cfg))["exporters"]["prometheus_remote_write"]
        assert exporter == {"endpoint": "http://host.docker.internal:9090/api/v1/write", "tls": {"insecure": True}}
        assert render.uses_host_gateway(cfg)
        assert render.prometheus_host_url(cfg) == "http://localhost:9090"

    @pytest.mark.parametrize("url", ["http://127.0.0.1:9090", "http://[::1]:9090/"])
    def test_any_loopback_prometheus_is_rewritten(self, url: str) -> None:
        cfg = build({"prometheusUrl": url})
        assert render.remote_write_url(cfg) == "http://host.docker.internal:9090/api/v1/write"

    def test_a_routable_prometheus_url_is_used_as_given(self) -> None:
        cfg = build({"prometheusUrl": "https://prom.example.org/prometheus/"})
        exporter = parsed(render.render_collector_config(cfg))["exporters"]["prometheus_remote_write"]
        assert exporter == {"endpoint": "https://prom.example.org/prometheus/api/v1/write"}
        assert not render.uses_host_gateway(cfg)

    def test_prometheus_on_its_docker_network_is_reached_by_name(self) -> None:
        cfg = build(
            {"prometheusNetwork": "monitoring", "prometheusContainerUrl": "http://prometheus:9090"}
        )
        exporter = parsed(render.render_collector_config(cfg))["exporters"]["prometheus_remote_write"]
        assert exporter["endpoint"] == "http://prometheus:9090/api/v1/write"
        assert not render.uses_host_gateway(cfg)
        # The host-side check still uses the URL as the host sees it.
        assert render.prometheus_host_url(cfg) == "http://localhost:9090"

    @pytest.mark.parametrize(
        ("version", "exporter_type"),
        [
            ("0.159.0", "prometheus_remote_write"),
            ("0.154.0", "prometheus_remote_write"),
            ("1.0.0", "prometheus_remote_write"),
            ("0.153.2", "prometheusremotewrite"),
            ("0.120.0", "prometheusremotewrite"),
        ],
    )
    def test_exporter_type_follows_the_image_version(self, version: str, exporter_type: str) -> None:
        config = parsed(render.render_collector_config(build({"version": version})))
        assert list(config["exporters"]) == [exporter_type]
        assert config["service"]["pipelines"]["metrics"]["exporters"] == [exporter_type]

    @pytest.mark.parametrize(
        ("version", "transform_type"),
        [
            ("0.159.0", "metrics_transform"),
            ("0.152.0", "metrics_transform"),
            ("0.151.9", "metricstransform"),
            ("0.120.0", "metricstransform"),
        ],
    )
    def test_metrics_transform_type_follows_the_image_version(self, version: str, transform_type: str) -> None:
        config = parsed(render.render_collector_config(build({"version": version})))
        assert list(config["processors"]) == ["memory_limiter", transform_type, "batch"]
        assert config["service"]["pipelines"]["metrics"]["processors"] == ["memory_limiter", transform_type, "batch"]

    def test_batch_timeout_comes_from_the_config(self) -> None:
        assert parsed(render.render_collector_config(build()))["processors"]["batch"] == {"timeout": "30s"}
        cfg = build({"batchTimeoutSeconds": 0.5})
        assert parsed(render.render_collector_config(cfg))["processors"]["batch"] == {"timeout": "500ms"}

    def test_memory_limiter_stays_under_the_container_limit(self) -> None:
        cfg = build({"memoryLimitMib": 512})
        limiter = parsed(render.render_collector_config(cfg))["processors"]["memory_limiter"]
        assert limiter == {"check_interval": "1s", "limit_mib": 409, "spike_limit_mib": 81}
        assert render.memory_limits(cfg)["gomemlimit_mib"] == 409
        assert limiter["limit_mib"] < 512

    def test_self_metrics_use_the_current_telemetry_readers(self) -> None:
        telemetry = parsed(render.render_collector_config(build()))["service"]["telemetry"]
        assert telemetry == {
            "metrics": {"readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": 8888}}}}]}
        }
        assert "address" not in telemetry["metrics"]  # deprecated v0.111, ignored since v0.123

    def test_no_auth_without_a_token(self) -> None:
        config = parsed(render.render_collector_config(build()))
        assert "auth" not in config["receivers"]["otlp"]["protocols"]["http"]
        assert not any(name.startswith("bearertokenauth") for name in config["extensions"])


class TestBearerToken:
    def test_receiver_requires_the_token_from_the_environment(self) -> None:
        cfg = build(otlp={"bearerToken": BEARER})
        text = render.render_collector_config(cfg)
        config = parsed(text)
        assert config["extensions"]["bearertokenauth/otlp"] == {"token": "${env:OPENCLAW_OTLP_BEARER_TOKEN}"}
        assert config["receivers"]["otlp"]["protocols"]["http"]["auth"] == {"authenticator": "bearertokenauth/otlp"}
        assert config["service"]["extensions"] == ["health_check", "bearertokenauth/otlp"]
        assert BEARER not in text

    def test_existing_snippet_never_holds_the_token(self) -> None:
        cfg = build({"mode": "existing"}, otlp={"bearerToken": BEARER})
        text = render.render_existing_snippet(cfg)
        snippet = parsed(text)
        assert snippet["extensions"]["bearertokenauth/openclaw"] == {"token": "${env:OPENCLAW_OTLP_BEARER_TOKEN}"}
        http = snippet["receivers"]["otlp/openclaw"]["protocols"]["http"]
        assert http["auth"] == {"authenticator": "bearertokenauth/openclaw"}
        assert snippet["service"]["extensions"] == ["bearertokenauth/openclaw"]
        assert BEARER not in text


class TestScrape:
    def test_prometheus_exporter_on_8889(self) -> None:
        cfg = build({"mode": "scrape", "prometheusUrl": None})
        config = parsed(render.render_collector_config(cfg))
        assert config["exporters"] == {
            "prometheus": {"endpoint": "0.0.0.0:8889", "metric_expiration": "300s", "send_timestamps": False}
        }
        assert config["service"]["pipelines"]["metrics"]["exporters"] == ["prometheus"]
        assert config["service"]["pipelines"]["metrics"]["processors"] == ["memory_limiter", "metrics_transform", "batch"]

    def test_series_outlive_slow_gateway_exports(self) -> None:
        cfg = build({"mode": "scrape"}, otlp={"flushIntervalMs": 600_000})
        exporter = parsed(render.render_collector_config(cfg))["exporters"]["prometheus"]
        assert exporter["metric_expiration"] == "1800s"

    def test_scrape_snippet_honors_labels_and_targets_the_published_port(self) -> None:
        cfg = build({"mode": "scrape", "scrapePort": 18889})
        snippet = parsed(render.render_scrape_snippet(cfg))
        assert snippet == {
            "scrape_configs": [
                {
                    "job_name": "openclaw-otel-collector",
                    "honor_labels": True,
                    "static_configs": [{"targets": ["192.168.1.111:18889"]}],
                }
            ]
        }

    def test_scrape_target_is_the_bind_address_when_specific(self) -> None:
        cfg = build({"mode": "scrape", "bindAddress": "127.0.0.1"})
        assert render.scrape_target(cfg) == "127.0.0.1:8889"

    def test_prometheus_on_the_network_scrapes_the_container_by_name(self) -> None:
        cfg = build({"mode": "scrape", "prometheusNetwork": "monitoring"})
        assert render.scrape_target(cfg) == "openclaw-otel-collector:8889"


class TestExisting:
    def test_snippet_pushes_to_the_given_prometheus_with_suffixed_names(self) -> None:
        cfg = build({"mode": "existing", "host": None})
        snippet = parsed(render.render_existing_snippet(cfg))
        assert snippet["receivers"] == {"otlp/openclaw": {"protocols": {"http": {"endpoint": "0.0.0.0:4318"}}}}
        # An existing collector may run on the host itself: the URL is used as given, not rewritten.
        assert snippet["exporters"] == {
            "prometheusremotewrite/openclaw": {
                "endpoint": "http://localhost:9090/api/v1/write",
                "tls": {"insecure": True},
            }
        }
        assert snippet["service"]["pipelines"] == {
            "metrics/openclaw": {
                "receivers": ["otlp/openclaw"],
                "processors": ["memory_limiter/openclaw", "metricstransform/openclaw", "batch/openclaw"],
                "exporters": ["prometheusremotewrite/openclaw"],
            }
        }
        assert "extensions" not in snippet and "extensions" not in snippet["service"]

    def test_receiver_port_follows_the_gateway_endpoint(self) -> None:
        cfg = build({"mode": "existing"}, otlp={"endpoint": "http://alloy.lan:14318"})
        snippet = parsed(render.render_existing_snippet(cfg))
        assert snippet["receivers"]["otlp/openclaw"]["protocols"]["http"]["endpoint"] == "0.0.0.0:14318"
        assert "http://alloy.lan:14318" in render.render_existing_snippet(cfg)

    def test_without_prometheus_url_the_snippet_exposes_a_scrape_endpoint(self) -> None:
        cfg = build({"mode": "existing", "prometheusUrl": None})
        snippet = parsed(render.render_existing_snippet(cfg))
        assert list(snippet["exporters"]) == ["prometheus/openclaw"]
        assert snippet["exporters"]["prometheus/openclaw"]["endpoint"] == "0.0.0.0:8889"

    def test_there_is_no_collector_config_of_ours(self) -> None:
        with pytest.raises(ValueError, match="existing"):
            render.render_collector_config(build({"mode": "existing"}))


class TestRenderFiles:
    def test_collector_host_gets_otel_collector_yaml(self) -> None:
        cfg = build()
        files = render.render_files(cfg)
        assert files == {"workstation": {"otel-collector.yaml": render.render_collector_config(cfg)}}

    def test_scrape_mode_adds_the_prometheus_job(self) -> None:
        files = render.render_files(build({"mode": "scrape"}))
        assert set(files["workstation"]) == {"otel-collector.yaml", "prometheus-scrape-config.yaml"}

    def test_existing_mode_renders_the_snippet_in_a_pseudo_host_folder(self) -> None:
        cfg = build({"mode": "existing", "host": None})
        files = render.render_files(cfg)
        assert files == {"_existing-collector": {"otel-collector-snippet.yaml": render.render_existing_snippet(cfg)}}


class TestText:
    """What a person reviewing the file sees."""

    def test_output_is_stable(self) -> None:
        cfg = build(otlp={"bearerToken": BEARER})
        assert render.render_collector_config(cfg) == render.render_collector_config(cfg)

    def test_sections_in_reading_order(self) -> None:
        text = render.render_collector_config(build())
        top_level = [line.split(":")[0] for line in text.splitlines() if line and line[0].isalpha()]
        assert top_level == ["extensions", "receivers", "processors", "exporters", "service"]

    def test_comments_explain_the_non_obvious(self) -> None:
        text = render.render_collector_config(build())
        assert "--web.enable-remote-write-receiver" in text
        assert "host.docker.internal is the Docker host (host-gateway)" in text
        assert "First in the pipeline" in text
        scrape = render.render_collector_config(build({"mode": "scrape"}))
        assert "honor_labels: true" in scrape

    @pytest.mark.parametrize("mode", ["remote-write", "scrape", "existing"])
    def test_lines_stay_readable(self, mode: str) -> None:
        cfg = build({"mode": mode}, otlp={"bearerToken": BEARER})
        files = render.render_files(cfg)
        for host_files in files.values():
            for name, text in host_files.items():
                long_lines = [line for line in text.splitlines() if len(line) > 120]
                assert not long_lines, f"{name}: {long_lines}"
