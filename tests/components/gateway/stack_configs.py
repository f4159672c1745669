"""Stack configs for the gateway component tests: the reference workstation stack with sections changed."""
from __future__ import annotations

import json
from typing import Any

from components.config import StackConfig, parse_stack_config
from tests.support.pulumi_mocks import FAKE_SECRETS, stack_file_config

BEARER = FAKE_SECRETS["bearerToken"]
PRIVATE_KEY = FAKE_SECRETS["privateKey"]


def workstation_raw() -> dict[str, Any]:
    """The workstation stack's raw config objects, fake secrets included."""
    config, _ = stack_file_config("workstation")
    return {key.split(":", 1)[1]: json.loads(value) for key, value in config.items()}


def build(**sections: dict[str, Any]) -> StackConfig:
    """The workstation config with keys of some sections overridden (a None value deletes the key)."""
    raw = workstation_raw()
    for name, changes in sections.items():
        section = raw.setdefault(name, {})
        for key, value in changes.items():
            if value is None:
                section.pop(key, None)
            else:
                section[key] = value
    return parse_stack_config(raw, secret_paths_ok=lambda path: True)
