"""Pure renderers for the collector: its config, the Prometheus scrape snippet, the existing-collector snippet.

Text in, text out, no Pulumi: the component wires these into resources, ``python -m components render``
writes them for review, and the tests parse them (and, where the binary exists, run ``otelcol validate``).

Container-side ports are fixed (4318 OTLP/HTTP, 13133 health_check, 8889 prometheus exporter, 8888 self
metrics); the stack config only chooses where they are published on the collector host.  Every server binds
``0.0.0.0`` *inside* the container: since collector v0.104 the default is ``localhost``, which a published
port cannot reach.

The OTLP bearer token never appears in any rendered text: the receiver reads it from the environment
variable :data:`BEARER_TOKEN_ENV`, which the component sets on the container from the Pulumi secret.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Optional

from components.collector import yamltext
from components.config import StackConfig, is_loopback

#: Where the config is uploaded in the container; the contrib image's default ``--config`` path.
CONFIG_PATH = "/etc/otelcol-contrib/config.yaml"

#: Ports inside the container.
OTLP_HTTP_PORT = 4318
HEALTH_PORT = 13133
EXPORTER_PORT = 8889
SELF_METRICS_PORT = 8888

#: The receiver's bearer token comes from this environment variable (set from the Pulumi secret).
BEARER_TOKEN_ENV = "OPENCLAW_OTLP_BEARER_TOKEN"
BEARER_AUTH_ID = "bearertokenauth/otlp"

#: The remote-write exporter's type, and the release that renamed it (contrib PR #48705).
REMOTE_WRITE_TYPE = "prometheus_remote_write"
LEGACY_REMOTE_WRITE_TYPE = "prometheusremotewrite"
REMOTE_WRITE_RENAMED_IN = (0, 154)
#: The metrics transform processor's type, and the release that renamed it (from ``metricstransform``).
METRICS_TRANSFORM_TYPE = "metrics_transform"
LEGACY_METRICS_TRANSFORM_TYPE = "metricstransform"
METRICS_TRANSFORM_RENAMED_IN = (0, 152)

#: The budget enforcer's own copy of the cost counter: ``openclaw.cost.usd`` summed over every label but
#: provider and model (agent, channel), per gateway (resource), by the metricstransform processor.  The
#: enforcer's spend query then reads one series per provider/model instead of one per agent x channel x
#: provider x model, so its cost stays flat however many agents and channels a gateway has
#: (benchmarks/README.md).  Summing cumulative counters of one process is exact: they reset together
#: when the gateway restarts, and a series new to the process adds its whole value as a jump of the sum.
#: The original series pass through unchanged (per-agent dashboards keep working).  In Prometheus:
#: ``openclaw_cost_usd_by_model_total`` (enforcer.settings.DEFAULT_SPEND_BY_MODEL_NAMES).
COST_METRIC = "openclaw.cost.usd"
SPEND_BY_MODEL_METRIC = "openclaw.cost.usd.by_model"
SPEND_BY_MODEL_LABELS = ("openclaw.provider", "openclaw.model")

#: Name a container uses for the Docker host when the stack maps it to ``host-gateway``.
HOST_GATEWAY_NAME = "host.docker.internal"

#: Suffix of every component in the existing-collector snippet, so it cannot clash with names already there.
SNIPPET_SUFFIX = "openclaw"

#: Pseudo-host folder of ``render_files`` for mode ``existing`` (host names can't start with ``_``).
EXISTING_FOLDER = "_existing-collector"

#: Share of the container memory limit given to the memory_limiter hard limit and to GOMEMLIMIT: the rest
#: is headroom for memory the Go heap doesn't count, so the kernel's OOM killer stays out of the picture.
MEMORY_SHARE = 0.8
#: Share of the hard limit kept free for a spike between two checks (the processor's own default).
SPIKE_SHARE = 0.2


# ------------------------------------------------------------------------------------------ derived values


def _base(url: Any) -> str:
    return str(url).rstrip("/")


def prometheus_host_url(cfg: StackConfig) -> Optional[str]:
    """Prometheus's base URL as seen from the collector host (used by the deploy-time check)."""
    url = cfg.collector.prometheus_url
    return None if url is None else _base(url)


def uses_host_gateway(cfg: StackConfig) -> bool:
    """True when the container reaches a Prometheus listening on the host's loopback via the host gateway."""
    collector = cfg.collector
    if collector.mode == "existing":
        return False  # that collector may well run on the host itself: its URL is used as given
    if collector.prometheus_container_url is not None or collector.prometheus_url is None:
        return False
    return is_loopback(collector.prometheus_url.host or "")


def prometheus_container_url(cfg: StackConfig) -> Optional[str]:
    """Prometheus's base URL as the collector container reaches it.

    ``localhost`` inside the container is the container: a Prometheus on the host's loopback is reached as
    ``host.docker.internal`` (mapped to ``host-gateway`` by the component), one in Docker by its name on
    ``prometheusNetwork`` (``prometheusContainerUrl``).
    """
    collector = cfg.collector
    if collector.prometheus_container_url is not None:
        return _base(collector.prometheus_container_url)
    url = collector.prometheus_url
    if url is None:
        return None
    if not uses_host_gateway(cfg):
        return _base(url)
    path = (url.path or "").rstrip("/")
    return f"{url.scheme}://{HOST_GATEWAY_NAME}:{url.port}{path}"


def remote_write_url(cfg: StackConfig) -> Optional[str]:
    base = prometheus_container_url(cfg)
    return None if base is None else f"{base}/api/v1/write"


def memory_limits(cfg: StackConfig) -> dict[str, int]:
    """Container limit, memory_limiter hard and spike limits, GOMEMLIMIT (all MiB)."""
    container = cfg.collector.memory_limit_mib
    hard = int(container * MEMORY_SHARE)
    return {
        "container_mib": container,
        "limit_mib": hard,
        "spike_limit_mib": max(1, int(hard * SPIKE_SHARE)),
        "gomemlimit_mib": hard,
    }


def duration(seconds: float) -> str:
    """A Go duration string: ``30s``, ``500ms``."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"


def _local_address(bind_address: str) -> str:
    """Where a published port is reached from the collector host itself."""
    address = ipaddress.ip_address(bind_address)
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "[::1]"
    return str(address) if address.version == 4 else f"[{address}]"


def health_url(cfg: StackConfig) -> str:
    """The health_check endpoint as the collector host reaches it through the published port."""
    return f"http://{_local_address(cfg.collector.bind_address)}:{cfg.collector.health_port}/"


def scrape_target(cfg: StackConfig) -> str:
    """``host:port`` Prometheus scrapes in mode ``scrape``.

    On ``prometheusNetwork`` Prometheus reaches the collector by container name and internal port; otherwise
    through the published port: the bind address if it is a specific one, else the host's address.
    """
    collector = cfg.collector
    if collector.prometheus_network:
        return f"{collector.container_name}:{EXPORTER_PORT}"
    address = ipaddress.ip_address(collector.bind_address)
    if address.is_unspecified:
        host = cfg.hosts[collector.host or ""].address
    else:
        host = str(address) if address.version == 4 else f"[{address}]"
    return f"{host}:{collector.scrape_port}"


def _metric_expiration(cfg: StackConfig) -> str:
    """Keep series for at least three gateway export intervals (and the exporter's default 5m)."""
    return duration(max(300, 3 * cfg.otlp.flush_interval_ms // 1000))


# ------------------------------------------------------------------------------------------ the config


def _receiver(endpoint: str, auth_id: Optional[str]) -> dict[str, Any]:
    http: dict[str, Any] = {"endpoint": endpoint}
    if auth_id:
        http["auth"] = {"authenticator": auth_id}
    return {"protocols": {"http": http}}


def _renamed_type(version: Optional[str], new: str, legacy: str, renamed_in: tuple[int, int]) -> str:
    """A component's type name for a collector ``version`` (None: unknown, e.g. mode existing).

    Contrib renames components to snake case and keeps the old name as a deprecated alias, which 0.159.0
    warns about. Older images know only the old name, which is also the safe choice for a collector whose
    version we don't know."""
    if version is None:
        return legacy
    major, minor, _patch = (int(part) for part in version.split("."))
    return new if (major, minor) >= renamed_in else legacy


def remote_write_exporter_type(version: Optional[str]) -> str:
    """``prometheus_remote_write`` from contrib v0.154.0 (contrib PR #48705), ``prometheusremotewrite`` before."""
    return _renamed_type(version, REMOTE_WRITE_TYPE, LEGACY_REMOTE_WRITE_TYPE, REMOTE_WRITE_RENAMED_IN)


def metrics_transform_type(version: Optional[str]) -> str:
    """``metrics_transform`` from contrib v0.152.0 (read from the module's generated metadata at v0.151.0 and
    v0.152.0), ``metricstransform`` before."""
    return _renamed_type(version, METRICS_TRANSFORM_TYPE, LEGACY_METRICS_TRANSFORM_TYPE, METRICS_TRANSFORM_RENAMED_IN)


def _exporter(cfg: StackConfig, endpoint_host: str = "0.0.0.0") -> tuple[str, dict[str, Any]]:
    """(exporter type, settings) for the stack's mode; ``existing`` pushes if it has a Prometheus URL."""
    write_url = remote_write_url(cfg)
    if cfg.collector.mode == "scrape" or write_url is None:
        return "prometheus", {
            "endpoint": f"{endpoint_host}:{EXPORTER_PORT}",
            "metric_expiration": _metric_expiration(cfg),
            "send_timestamps": False,
        }
    settings: dict[str, Any] = {"endpoint": write_url}
    if write_url.startswith("http://"):
        settings["tls"] = {"insecure": True}
    version = None if cfg.collector.mode == "existing" else cfg.collector.version
    return remote_write_exporter_type(version), settings


def spend_by_model_processor() -> dict[str, Any]:
    """metricstransform settings that add SPEND_BY_MODEL_METRIC beside the cost counter (see above).

    ``insert`` keeps the original metric and adds the aggregated copy.  The processor aggregates only within
    one batch and groups points by attributes *and* timestamp: it runs before ``batch`` on each export as it
    arrives, where every point of the cost counter carries the same collection time."""
    return {
        "transforms": [
            {
                "include": COST_METRIC,
                "match_type": "strict",
                "action": "insert",
                "new_name": SPEND_BY_MODEL_METRIC,
                "operations": [
                    {
                        "action": "aggregate_labels",
                        "label_set": list(SPEND_BY_MODEL_LABELS),
                        "aggregation_type": "sum",
                    }
                ],
            }
        ]
    }


def collector_config(cfg: StackConfig) -> dict[str, Any]:
    """The collector config for mode ``remote-write`` or ``scrape`` as data (what the YAML parses to)."""
    if cfg.collector.mode == "existing":
        raise ValueError("mode 'existing' runs no collector of ours; see existing_collector_snippet()")
    memory = memory_limits(cfg)
    auth_id = BEARER_AUTH_ID if cfg.otlp.bearer_token is not None else None
    exporter_type, exporter = _exporter(cfg)
    transform_type = metrics_transform_type(cfg.collector.version)
    extensions: dict[str, Any] = {"health_check": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"}}
    if auth_id:
        extensions[auth_id] = {"token": "${env:" + BEARER_TOKEN_ENV + "}"}
    return {
        "extensions": extensions,
        "receivers": {"otlp": _receiver(f"0.0.0.0:{OTLP_HTTP_PORT}", auth_id)},
        "processors": {
            "memory_limiter": {
                "check_interval": "1s",
                "limit_mib": memory["limit_mib"],
                "spike_limit_mib": memory["spike_limit_mib"],
            },
            transform_type: spend_by_model_processor(),
            "batch": {"timeout": duration(cfg.collector.batch_timeout_seconds)},
        },
        "exporters": {exporter_type: exporter},
        "service": {
            "extensions": list(extensions),
            "telemetry": {
                "metrics": {
                    "readers": [{"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": SELF_METRICS_PORT}}}}]
                }
            },
            "pipelines": {
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", transform_type, "batch"],
                    "exporters": [exporter_type],
                }
            },
        },
    }


def _config_comments(cfg: StackConfig, exporter_type: str) -> dict[tuple[str, ...], str]:
    comments = {
        ("extensions", "health_check", "endpoint"): "0.0.0.0: the default (localhost) is unreachable through a "
        "published port.",
        ("receivers", "otlp", "protocols", "http", "endpoint"): "OTLP/HTTP from the OpenClaw gateway "
        "(diagnostics-otel): 0.0.0.0 inside the container,\n"
        f"published on {cfg.collector.bind_address}:{cfg.collector.otlp_port} of the collector host.",
        ("processors", "memory_limiter"): f"First in the pipeline: refuses data before the container's "
        f"{cfg.collector.memory_limit_mib} MiB limit is reached\n(GOMEMLIMIT is set to the same hard limit).",
        ("processors", metrics_transform_type(cfg.collector.version)): f"Adds {SPEND_BY_MODEL_METRIC}: the cost summed over agents and channels, "
        "per provider and\nmodel, which the budget enforcer reads (one series per model, however many agents). "
        "Before batch:\nit aggregates each export as it arrives. The per-agent series pass through unchanged.",
        ("processors", "batch"): "After memory_limiter: fewer, larger batches for the exporter.",
        ("service", "telemetry", "metrics"): "The collector's own metrics (otelcol_*) on :8888, for scraping.",
    }
    if cfg.otlp.bearer_token is not None:
        comments[("extensions", BEARER_AUTH_ID)] = (
            f"Bearer token from ${BEARER_TOKEN_ENV}, set on the container from the Pulumi secret\n"
            "otlp.bearerToken; the gateway sends the same secret in diagnostics.otel.headers."
        )
    if exporter_type != "prometheus":
        comments[("exporters", exporter_type)] = (
            "Prometheus must run with --web.enable-remote-write-receiver (checked at `pulumi up`).\n"
            "Flat endpoint/tls keys: an `http:` block is the newer form (0.158+); the flat keys are accepted\n"
            "by 0.159.0 without a warning and by older images too."
        )
        if uses_host_gateway(cfg):
            comments[("exporters", exporter_type, "endpoint")] = (
                f"{HOST_GATEWAY_NAME} is the Docker host (host-gateway):\n"
                f"prometheusUrl {prometheus_host_url(cfg)} is on the host's loopback."
            )
    else:
        comments[("exporters", "prometheus")] = (
            "Prometheus scrapes this endpoint; its scrape config needs honor_labels: true,\n"
            "or job/instance become exported_job/exported_instance."
        )
    return comments


def render_collector_config(cfg: StackConfig) -> str:
    """The collector's config.yaml for mode ``remote-write`` or ``scrape``."""
    document = collector_config(cfg)
    exporter_type = next(iter(document["exporters"]))
    header = (
        f"OpenTelemetry Collector config rendered by openclaw-usage (mode {cfg.collector.mode}).\n"
        f"Image {cfg.collector.image}:{cfg.collector.version}; edit the stack config, not this file."
    )
    return yamltext.dump(document, _config_comments(cfg, exporter_type), header)


# ------------------------------------------------------------------------------------------ snippets


def scrape_config(cfg: StackConfig) -> dict[str, Any]:
    """The Prometheus scrape job for mode ``scrape`` (as data)."""
    return {
        "scrape_configs": [
            {
                "job_name": "openclaw-otel-collector",
                "honor_labels": True,
                "static_configs": [{"targets": [scrape_target(cfg)]}],
            }
        ]
    }


def render_scrape_snippet(cfg: StackConfig) -> str:
    """The scrape job to add to prometheus.yml (mode ``scrape``)."""
    comments = {
        ("scrape_configs",): "honor_labels: keep the job/instance the gateway sent (else they become\n"
        "exported_job/exported_instance, and the budget queries miss them).",
    }
    header = "Add this job to prometheus.yml's scrape_configs (openclaw-usage, collector mode scrape)."
    return yamltext.dump(scrape_config(cfg), comments, header)


def _existing_receiver_endpoint(cfg: StackConfig) -> str:
    port = cfg.otlp.endpoint.port if cfg.otlp.endpoint is not None else cfg.collector.otlp_port
    return f"0.0.0.0:{port}"


def existing_collector_snippet(cfg: StackConfig) -> dict[str, Any]:
    """Components and a pipeline to merge into an existing collector's config (mode ``existing``).

    Every name carries the ``/openclaw`` suffix so nothing clashes with what is already configured; the
    snippet is also a complete, valid config on its own (it can be passed as a second ``--config``).
    """
    name = f"/{SNIPPET_SUFFIX}"
    auth_id = f"bearertokenauth{name}" if cfg.otlp.bearer_token is not None else None
    exporter_type, exporter = _exporter(cfg)
    memory = memory_limits(cfg)
    document: dict[str, Any] = {}
    if auth_id:
        document["extensions"] = {auth_id: {"token": "${env:" + BEARER_TOKEN_ENV + "}"}}
    document["receivers"] = {f"otlp{name}": _receiver(_existing_receiver_endpoint(cfg), auth_id)}
    document["processors"] = {
        f"memory_limiter{name}": {
            "check_interval": "1s",
            "limit_mib": memory["limit_mib"],
            "spike_limit_mib": memory["spike_limit_mib"],
        },
        f"{LEGACY_METRICS_TRANSFORM_TYPE}{name}": spend_by_model_processor(),
        f"batch{name}": {"timeout": duration(cfg.collector.batch_timeout_seconds)},
    }
    document["exporters"] = {f"{exporter_type}{name}": exporter}
    service: dict[str, Any] = {}
    if auth_id:
        service["extensions"] = [auth_id]
    service["pipelines"] = {
        f"metrics{name}": {
            "receivers": [f"otlp{name}"],
            "processors": [f"memory_limiter{name}", f"{LEGACY_METRICS_TRANSFORM_TYPE}{name}", f"batch{name}"],
            "exporters": [f"{exporter_type}{name}"],
        }
    }
    document["service"] = service
    return document


def render_existing_snippet(cfg: StackConfig) -> str:
    """The receiver/exporter snippet for an OpenTelemetry Collector that already runs (mode ``existing``)."""
    document = existing_collector_snippet(cfg)
    exporter_type = next(iter(document["exporters"])).split("/")[0]
    header = (
        "openclaw-usage: add this to the OpenTelemetry Collector that already runs (collector mode existing),\n"
        f"which must listen where the gateway sends: {cfg.otlp_endpoint}.\n"
        "Either merge it into your config, or pass it as an extra file:\n"
        "  otelcol --config main.yaml --config openclaw.yaml\n"
        "If an OTLP/HTTP receiver already listens on that port, drop otlp/openclaw and list your receiver in\n"
        "the metrics/openclaw pipeline instead. Needs the contrib distribution (or one with these components)."
    )
    comments: dict[tuple[str, ...], str] = {
        ("processors", f"{LEGACY_METRICS_TRANSFORM_TYPE}/{SNIPPET_SUFFIX}"): (
            f"Adds {SPEND_BY_MODEL_METRIC} (cost per provider/model, summed over agents and channels), which\n"
            "the budget enforcer reads; keep it before any batch processor. Without it the enforcer reads the\n"
            "per-agent series instead: the same answer, at a cost that grows with the number of series.\n"
            "Collectors 0.152+ name this processor metrics_transform (the old name still works, with a warning)."
        ),
    }
    if cfg.otlp.bearer_token is not None:
        comments[("extensions",)] = (
            f"Set ${BEARER_TOKEN_ENV} in the collector's environment to the stack's otlp.bearerToken\n"
            "(`pulumi config get --path otlp.bearerToken`); never paste the token into this file."
        )
        comments[("service", "extensions")] = (
            "A second --config REPLACES this list: keep your own extensions in it when merging."
        )
    if exporter_type != "prometheus":
        comments[("exporters",)] = (
            "Prometheus must run with --web.enable-remote-write-receiver. Collectors 0.154+ name this\n"
            "exporter prometheus_remote_write (the old name still works there, with a warning)."
        )
    else:
        comments[("exporters",)] = (
            f"No collector.prometheusUrl: Prometheus scrapes :{EXPORTER_PORT} with honor_labels: true."
        )
    return yamltext.dump(document, comments, header)


def render_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Files for review: ``{collector host: {"otel-collector.yaml": ...}}``.

    Mode ``scrape`` adds ``prometheus-scrape-config.yaml`` (the job to add to Prometheus).  Mode ``existing``
    runs nothing of ours: its snippets go to the pseudo-host folder ``_existing-collector``.
    """
    collector = cfg.collector
    if collector.mode == "existing":
        return {
            EXISTING_FOLDER: {
                "otel-collector-snippet.yaml": render_existing_snippet(cfg),
            }
        }
    files = {"otel-collector.yaml": render_collector_config(cfg)}
    if collector.mode == "scrape":
        files["prometheus-scrape-config.yaml"] = render_scrape_snippet(cfg)
    return {collector.host or "": files}
