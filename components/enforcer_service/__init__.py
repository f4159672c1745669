"""Enforcer service component: ships the enforcer package to its host and runs it under systemd."""
from __future__ import annotations

import pulumi

from components.config import StackConfig


def render_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Files this component puts on hosts: ``{host name: {relative path: content}}``."""
    return {}


class BudgetEnforcer(pulumi.ComponentResource):
    """Placeholder until the enforcer-deployment issue lands."""

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openclaw-usage:enforcer:BudgetEnforcer", name, None, opts)
        self.register_outputs({})
