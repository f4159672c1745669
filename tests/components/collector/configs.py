"""Stack configs for the collector tests: the reference workstation stack with one section changed."""
from __future__ import annotations

import json
from typing import Any

from components.config import ConfigError, StackConfig, parse_stack_config
from tests.support.pulumi_mocks import FAKE_SECRETS, stack_file_config

BEARER = FAKE_SECRETS["bearerToken"]


def workstation_raw() -> dict[str, Any]:
    """The workstation stack's raw config objects, fake secrets included."""
    config, _ = stack_file_config("workstation")
    return {key.split(":", 1)[1]: json.loads(value) for key, value in config.items()}


def build(collector: dict[str, Any] | None = None, otlp: dict[str, Any] | None = None, **sections: Any) -> StackConfig:
    """The workstation config with ``collector``/``otlp`` keys overridden (None values delete a key)."""
    raw = workstation_raw()
    for name, changes in (("collector", collector), ("otlp", otlp), *sections.items()):
        for key, value in (changes or {}).items():
            if value is None:
                raw[name].pop(key, None)
            else:
                raw[name][key] = value
    return parse_stack_config(raw, secret_paths_ok=lambda path: True)


def problems(collector: dict[str, Any] | None = None, otlp: dict[str, Any] | None = None) -> list[str]:
    """The ConfigError lines for a broken collector/otlp section (fails if the config is accepted)."""
    try:
        build(collector, otlp)
    except ConfigError as error:
        return error.problems
    raise AssertionError(f"config accepted: collector={collector!r} otlp={otlp!r}")
