"""Wires the components of one stack together and names the outputs a user looks for after ``up``."""
from __future__ import annotations

from typing import Any

import pulumi

from components.collector import OtelCollector
from components.config import StackConfig
from components.enforcer_service import BudgetEnforcer
from components.gateway import GatewayConfig

COST_SERIES = 'openclaw_cost_usd_total'


def spend_promql(cfg: StackConfig) -> str:
    """PromQL for the spend the enforcer compares with the cap, by provider and model.

    For calendar days the window is "since local midnight", whose length changes all day; the enforcer
    computes it on every check, so the output shows the rolling form with a note.
    """
    return f"sum by (openclaw_provider, openclaw_model) (increase({COST_SERIES}[24h]))"


def deploy(cfg: StackConfig) -> dict[str, Any]:
    """Create every resource of the stack; returns the stack outputs (never a secret)."""
    collector = OtelCollector("collector", cfg)
    enforcer = BudgetEnforcer("enforcer", cfg)
    # The gate plugin reads the flag the enforcer writes, and the gateway exports to the collector:
    # patch the gateway last so it never points at a collector or a gate that isn't there yet.
    gateway = GatewayConfig("gateway", cfg, pulumi.ResourceOptions(depends_on=[collector, enforcer]))
    outputs: dict[str, Any] = {
        "otlpEndpoint": collector.otlp_endpoint,
        "collectorMode": cfg.collector.mode,
        "spendPromql": spend_promql(cfg),
        "budget": {
            "dailyCapUsd": cfg.enforcer.daily_cap_usd,
            "window": cfg.enforcer.window,
            "timezone": cfg.enforcer.timezone,
        },
        "flagFile": {
            "host": cfg.enforcer.host,
            "hostPath": cfg.enforcer.flag_file,
            "gatewayContainerPath": cfg.gate_flag_path,
        },
        "enforcerUnits": enforcer.unit_names,
        "gatewayHost": cfg.gateway.host,
    }
    # What to add to a Prometheus (mode "scrape") or to a collector that already runs (mode "existing").
    if collector.scrape_snippet is not None:
        outputs["prometheusScrapeConfig"] = collector.scrape_snippet
    if collector.existing_snippet is not None:
        outputs["collectorSnippet"] = collector.existing_snippet
    return outputs
