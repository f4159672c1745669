"""Collector component: a pinned OpenTelemetry Collector container feeding Prometheus."""
from __future__ import annotations

import pulumi

from components.config import StackConfig


def render_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Files this component puts on hosts: ``{host name: {relative path: content}}``."""
    return {}


class OtelCollector(pulumi.ComponentResource):
    """Placeholder until the collector issue lands."""

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openclaw-usage:collector:OtelCollector", name, None, opts)
        self.register_outputs({})
