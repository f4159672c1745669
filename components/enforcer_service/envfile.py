"""The enforcer's EnvironmentFile: every setting from the stack config, in one root-only file.

The file is read by systemd (``EnvironmentFile=``) and sourced by the operator wrapper (``set -a; .``), so
every value is written in the subset of syntax both read the same way: bare when it only has safe
characters, else single-quoted, else double-quoted with ``\\ " ` $`` escaped (systemd.exec(5),
"EnvironmentFile=": same rules as POSIX shell quoting).  Newlines and other control characters are refused.
"""
from __future__ import annotations

import json
import re

from components.config import MASKED, StackConfig
from components.enforcer_service.layout import layout

_BARE = re.compile(r"^[A-Za-z0-9_@%+=:,./!-]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

HEADER = (
    "# openclaw-usage budget enforcer settings (read by systemd: EnvironmentFile=).\n"
    "# Managed by `pulumi up`: edits here are overwritten. Root-only (0600): it holds the Matrix token.\n"
)


def quote_env_value(name: str, value: str) -> str:
    """``value`` written so systemd and sh both read back exactly ``value``."""
    if _CONTROL.search(value):
        raise ValueError(f"{name}: control characters or newlines can't go into an environment file")
    if _BARE.match(value) and not value.startswith(("#", ";")):
        return value
    if "'" not in value:
        return f"'{value}'"
    return '"' + re.sub(r'([\\"`$])', r"\\\1", value) + '"'


def free_models(cfg: StackConfig) -> list[str]:
    """provider/model ids priced at zero on purpose (so ``doctor`` doesn't call them a missing price)."""
    free = []
    for provider, models in sorted(cfg.prices.items()):
        for model, price in sorted(models.items()):
            if price.input == price.output == price.cache_read == price.cache_write == 0:
                free.append(f"{provider}/{model}")
    return free


def lift_hint(cfg: StackConfig) -> str:
    """What the flag and the Matrix messages tell an operator to run to lift a block."""
    return f"sudo {layout(cfg).wrapper} allow --for 2h"


def env_settings(cfg: StackConfig, matrix_token: str) -> list[tuple[str, str]]:
    """(variable, value) pairs, in the order of the enforcer's ``--help``."""
    enforcer, paths = cfg.enforcer, layout(cfg)
    settings = [
        ("PROMETHEUS_URL", cfg.enforcer_prometheus_url),
        ("MAX_DAILY_USD", format(enforcer.daily_cap_usd, "g")),
        ("BUDGET_WARN_RATIO", format(enforcer.warn_ratio, "g")),
        ("BUDGET_WINDOW", enforcer.window),
        ("BUDGET_TZ", enforcer.timezone),
        ("BUDGET_ON_BACKEND_ERROR", enforcer.on_backend_error),
        ("MATRIX_HOMESERVER", str(cfg.matrix.homeserver).rstrip("/")),
        ("MATRIX_ROOM_ID", cfg.matrix.room_id),
        ("MATRIX_ACCESS_TOKEN", matrix_token),
        ("BUDGET_FLAG_FILE", paths.flag_file),
        ("BUDGET_STATE_DIR", paths.state_dir),
    ]
    if paths.metrics_file:
        settings.append(("BUDGET_METRICS_FILE", paths.metrics_file))
    if enforcer.model_caps:
        settings.append(("BUDGET_MODEL_CAPS", json.dumps(enforcer.model_caps, sort_keys=True, separators=(",", ":"))))
    if free_models(cfg):
        settings.append(("BUDGET_FREE_MODELS", ",".join(free_models(cfg))))
    if cfg.gateway.host == enforcer.host:
        # For `openclaw-budget doctor`: compares Prometheus with OpenClaw's own ledger (not used by checks).
        settings.append(("BUDGET_OPENCLAW_CLI", cfg.gateway.cli))
    settings.append(("BUDGET_LIFT_HINT", lift_hint(cfg)))
    return settings


def render_env_file(cfg: StackConfig, matrix_token: str) -> str:
    """The file's text; pass ``MASKED`` as the token for anything a human or a log may see."""
    if not matrix_token:
        raise ValueError("matrix.accessToken: empty")
    lines = [f"{name}={quote_env_value(name, value)}" for name, value in env_settings(cfg, matrix_token)]
    return HEADER + "\n".join(lines) + "\n"


def render_masked_env_file(cfg: StackConfig) -> str:
    return render_env_file(cfg, MASKED)
