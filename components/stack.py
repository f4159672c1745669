"""Wires the components of one stack together and names the outputs a user looks for after ``up``."""
from __future__ import annotations

from typing import Any

import pulumi

from components.collector import OtelCollector
from components.config import StackConfig
from components.enforcer_service import BudgetEnforcer
from components.gateway import GatewayConfig
from enforcer.prometheus import LOOKBACK_SECONDS, spend_query
from enforcer.settings import DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES

def spend_promql(cfg: StackConfig) -> dict[str, str]:
    """The enforcer's own spend query (``enforcer.prometheus.spend_query``), to paste into Prometheus or
    Grafana as an instant query: exact per provider/model, where plain ``increase()`` would lose new
    series' first values.

    A calendar day's window is "since local midnight", whose length changes all day; the enforcer computes
    it on every check, so that form is shown with ``<W>`` in place of the window's seconds.

    ``last24hByModel`` is the same measure on the collector's by-model sums: the same rows, at a cost that
    does not grow with agents and channels (the enforcer uses it while the sums cover the window).
    """
    shown = {"last24h": spend_query(DEFAULT_COST_NAMES, 86400),
             "last24hByModel": spend_query(DEFAULT_BY_MODEL_NAMES, 86400)}
    if cfg.enforcer.window == "calendar-day":
        sentinel = 987654321  # a window length no real query has, replaced by the placeholder below
        template = spend_query(DEFAULT_COST_NAMES, sentinel)
        shown["calendarDay"] = (template.replace(f"{sentinel + LOOKBACK_SECONDS}s", f"<W+{LOOKBACK_SECONDS}>s")
                                .replace(f"{sentinel}s", "<W>s"))
        shown["note"] = (f"<W> is the number of seconds since midnight in {cfg.enforcer.timezone} when the query "
                         "runs; `python -m enforcer status --json` on the enforcer host prints the query of the "
                         "moment")
    return shown


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
