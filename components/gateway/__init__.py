"""Gateway component: patches openclaw.json on the gateway host and deploys the budget-gate plugin."""
from __future__ import annotations

import pulumi

from components.config import StackConfig


def render_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Files this component puts on hosts: ``{host name: {relative path: content}}``."""
    return {}


class GatewayConfig(pulumi.ComponentResource):
    """Placeholder until the gateway issue lands."""

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openclaw-usage:gateway:GatewayConfig", name, None, opts)
        self.register_outputs({})
