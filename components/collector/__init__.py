"""Collector: a pinned OpenTelemetry Collector container feeding Prometheus (or a snippet for one that runs).

``render`` holds the pure renderers (collector config, scrape snippet, existing-collector snippet),
``component`` the Pulumi component that deploys them, ``probe`` the stdlib checks run on the collector host.
"""
from __future__ import annotations

from components.collector.component import OtelCollector
from components.collector.render import (
    render_collector_config,
    render_existing_snippet,
    render_files,
    render_scrape_snippet,
)

__all__ = [
    "OtelCollector",
    "render_collector_config",
    "render_existing_snippet",
    "render_files",
    "render_scrape_snippet",
]
