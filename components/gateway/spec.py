"""The patch spec: what ``openclaw_patch.py`` makes true in the gateway's openclaw.json.

Pure functions of the stack config.  The spec is the single source of the values the gateway gets: the
OTLP export (``diagnostics``), the plugins to enable (``diagnostics-otel`` and the budget gate, loaded from
the directory the component copies it to), and the per-model prices.  When the collector requires a bearer
token the spec holds it (``diagnostics.otel.headers.Authorization``), so the component handles the spec as a
Pulumi secret and only the masked copy (:func:`masked_patch_spec`) is ever rendered or shown.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from components.config import MASKED, StackConfig
from components.gateway.host_files import gate_sha256

SPEC_VERSION = 1
OTEL_PLUGIN_ID = "diagnostics-otel"
#: The official listing OpenClaw's docs install from (npm installs since 2026.5.2 don't bundle the plugin).
OTEL_PLUGIN_INSTALL_SPEC = "clawhub:@openclaw/diagnostics-otel"


def otel_block(cfg: StackConfig) -> dict[str, Any]:
    """``diagnostics.otel`` as a whole block: every key we want, and nothing left over from older setups."""
    otlp = cfg.otlp
    block: dict[str, Any] = {
        "enabled": True,
        "endpoint": cfg.otlp_endpoint,
        "protocol": otlp.protocol,
        "serviceName": otlp.service_name,
        "metrics": otlp.metrics,
        "traces": otlp.traces,
        "logs": otlp.logs,
        "flushIntervalMs": otlp.flush_interval_ms,
    }
    if otlp.bearer_token is not None:
        block["headers"] = {"Authorization": f"Bearer {otlp.bearer_token.get_secret_value()}"}
    return block


def gate_entry(cfg: StackConfig) -> dict[str, Any]:
    """``plugins.entries.<gate id>`` plus the ``loadPath`` the gateway loads it from (inside the container)."""
    load_path = cfg.gate_container_dir
    if load_path is None:  # the config model rejects this already; keep the type checker honest
        raise ValueError("gate.hostDir: must be inside a directory the gateway container mounts")
    return {
        "enabled": True,
        # Required for a non-bundled plugin that uses before_agent_run (openclaw.md §7).
        "hooks": {"allowConversationAccess": True},
        "config": {"flagFile": cfg.gate_flag_path, "blockToolCalls": cfg.gate.block_tool_calls},
        "loadPath": load_path,
    }


def render_patch_spec(cfg: StackConfig) -> dict[str, Any]:
    """The spec ``openclaw_patch.py apply --spec`` reads (holds the OTLP bearer token when one is set)."""
    plugins: dict[str, Any] = {OTEL_PLUGIN_ID: {"enabled": True}}
    revisions: dict[str, str] = {}
    if cfg.gate.enabled:
        plugins[cfg.gate.plugin_id] = gate_entry(cfg)
        # New gate code must reach the running gateway: a changed revision makes the tool reload it.
        revisions[cfg.gate.plugin_id] = gate_sha256()
    prices: dict[str, Any] = {}
    for provider, models in sorted(cfg.prices.items()):
        for model_id, price in sorted(models.items()):
            entry: dict[str, Any] = {}
            if price.name is not None:
                entry["name"] = price.name
            entry.update(
                input=price.input, output=price.output, cacheRead=price.cache_read, cacheWrite=price.cache_write
            )
            prices.setdefault(provider, {})[model_id] = entry
    gateway = cfg.gateway
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "diagnostics": {"enabled": True, "otel": otel_block(cfg)},
        "plugins": plugins,
        "prices": prices,
        "pluginRevisions": revisions,
        "otelPlugin": {"check": True, "install": gateway.install_otel_plugin, "installSpec": OTEL_PLUGIN_INSTALL_SPEC},
        "apply": {"restartCommand": gateway.effective_restart_command} if gateway.apply == "restart" else {},
        "verify": {
            "enabled": gateway.verify,
            "configGet": True,
            "exporter": True,
            "logCommand": gateway.effective_log_command,
            "timeoutSeconds": gateway.verify_timeout_seconds,
        },
    }
    return spec


def spec_is_secret(cfg: StackConfig) -> bool:
    """True when the spec carries a secret (then it must travel as a Pulumi secret)."""
    return cfg.otlp.bearer_token is not None


def masked_patch_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to show: every OTLP header value masked."""
    shown = copy.deepcopy(spec)
    headers = shown.get("diagnostics", {}).get("otel", {}).get("headers")
    if isinstance(headers, dict):
        for key in headers:
            headers[key] = MASKED
    return shown


def spec_json(spec: dict[str, Any]) -> str:
    """The spec file's text: stable key order, so equal specs are equal bytes (and hashes)."""
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"
