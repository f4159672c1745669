"""Enforcer configuration from environment variables (so a systemd EnvironmentFile works).

Every variable is validated up front and a bad value stops the run with a message naming the variable,
the value and what would be accepted: a budget that is silently ignored is the worst failure a budget
tool can have (see budget-anchors.md §3.5).
"""
from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlparse

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9 is not supported; keep the error readable
    raise SystemExit("enforcer needs Python 3.9+ (zoneinfo)")

WINDOWS = ("rolling-24h", "calendar-day")
POLICIES = ("open", "closed", "hold")
DEFAULT_FLAG_FILE = "/tmp/openclaw-budget-exceeded"
# Default cost series: both OTLP unit spellings (otel-prometheus.md §1.2) are accepted.
DEFAULT_COST_SELECTOR = '{__name__=~"openclaw_cost_usd(_USD)?_total"}'
# The same two names, one selector each, for the spend query: after a collector upgrade both can hold the
# same labels for a while, and one selector matching both would make its arithmetic fail (duplicate series).
DEFAULT_COST_NAMES = ("openclaw_cost_usd_total", "openclaw_cost_usd_USD_total")
DEFAULT_TOKENS_SELECTOR = '{__name__="openclaw_tokens_total"}'
# The collector's copy of the cost summed over agents and channels, per provider/model and gateway
# (components/collector/render.py, SPEND_BY_MODEL_METRIC): the fast path of the spend query, with the same
# two unit spellings as the cost series.
DEFAULT_BY_MODEL_SELECTOR = '{__name__=~"openclaw_cost_usd_by_model(_USD)?_total"}'
DEFAULT_BY_MODEL_NAMES = ("openclaw_cost_usd_by_model_total", "openclaw_cost_usd_by_model_USD_total")


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable and the fix."""


@dataclass(frozen=True)
class Cap:
    """A cap on one scope: everything (provider=None), a provider, or one provider/model."""

    usd: float
    provider: Optional[str] = None
    model: Optional[str] = None

    @property
    def scope(self) -> str:
        if self.provider is None:
            return "total"
        return self.provider if self.model is None else f"{self.provider}/{self.model}"

    def matches(self, provider: str, model: str) -> bool:
        if self.provider is None:
            return True
        return self.provider == provider and (self.model is None or self.model == model)


@dataclass(frozen=True)
class Settings:
    prometheus_url: str
    max_daily_usd: float = 5.0
    warn_ratio: float = 0.8
    window: str = "rolling-24h"
    tz_name: str = "UTC"
    on_backend_error: str = "closed"
    matrix_homeserver: Optional[str] = None
    matrix_room_id: Optional[str] = None
    matrix_access_token: Optional[str] = field(default=None, repr=False)  # never printed
    flag_file: Path = Path(DEFAULT_FLAG_FILE)
    state_dir: Path = Path("/var/lib/openclaw-budget")
    metrics_file: Optional[Path] = None
    model_caps: Tuple[Cap, ...] = ()
    free_models: Tuple[str, ...] = ()
    cost_selector: str = DEFAULT_COST_SELECTOR
    # None: no by-model series; spend is measured from the per-agent series only.
    by_model_selector: Optional[str] = DEFAULT_BY_MODEL_SELECTOR
    query_mode: str = "exact"
    tokens_selector: str = DEFAULT_TOKENS_SELECTOR
    http_timeout: float = 10.0
    lock_timeout: float = 30.0
    openclaw_cli: Tuple[str, ...] = ()
    lift_hint: str = "python -m enforcer allow --for 2h"
    # Test-only hooks (documented as such; a warning is logged when set).
    test_now: Optional[datetime] = None
    test_crash_at: Optional[str] = None
    test_hold_lock: float = 0.0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    @property
    def matrix_enabled(self) -> bool:
        return self.matrix_homeserver is not None

    @property
    def caps(self) -> Tuple[Cap, ...]:
        """The global cap first, then optional per-provider / per-model caps."""
        return (Cap(self.max_daily_usd),) + self.model_caps

    @property
    def spend_selectors(self) -> Tuple[str, ...]:
        """What the spend query measures: the default names one by one, or the configured selector."""
        if self.cost_selector == DEFAULT_COST_SELECTOR:
            return DEFAULT_COST_NAMES
        return (self.cost_selector,)

    @property
    def by_model_selectors(self) -> Tuple[str, ...]:
        """The by-model series the fast path measures (empty: no fast path), like spend_selectors."""
        if self.by_model_selector is None:
            return ()
        if self.by_model_selector == DEFAULT_BY_MODEL_SELECTOR:
            return DEFAULT_BY_MODEL_NAMES
        return (self.by_model_selector,)

    def now(self) -> datetime:
        return self.test_now if self.test_now is not None else datetime.now(timezone.utc)


def _get(env: Mapping[str, str], name: str) -> Optional[str]:
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (example: {name}={default})") from None
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name}={raw!r} must be a positive number (example: {name}={default})")
    return value


def _url(name: str, raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name}={raw!r} is not an http(s) URL (example: {name}=http://127.0.0.1:9090)")
    return raw.rstrip("/")


def _parse_model_caps(raw: str) -> Tuple[Cap, ...]:
    """BUDGET_MODEL_CAPS: JSON object {"provider": usd, "provider/model": usd}. The model part may itself
    contain '/' (openrouter "google/gemini-2.5-flash"), so only the first '/' separates provider."""
    example = 'BUDGET_MODEL_CAPS=\'{"anthropic": 3.0, "openrouter/google/gemini-2.5-flash": 1.0}\''
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"BUDGET_MODEL_CAPS is not valid JSON ({exc}); example: {example}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"BUDGET_MODEL_CAPS must be a JSON object; example: {example}")
    caps: List[Cap] = []
    for key, value in data.items():
        if not isinstance(key, str) or not key.strip("/"):
            raise ConfigError(f"BUDGET_MODEL_CAPS key {key!r} must be 'provider' or 'provider/model'")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"BUDGET_MODEL_CAPS[{key!r}]={value!r} must be a positive number of USD")
        provider, _, model = key.partition("/")
        caps.append(Cap(float(value), provider, model or None))
    return tuple(caps)


def _parse_test_now(raw: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(raw), timezone.utc)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"BUDGET_TEST_NOW={raw!r} is neither unix seconds nor ISO-8601") from None
    if value.tzinfo is None:
        raise ConfigError(f"BUDGET_TEST_NOW={raw!r} needs a UTC offset")
    return value


def _default_state_dir(env: Mapping[str, str]) -> Path:
    # systemd's StateDirectory= exports STATE_DIRECTORY; otherwise a per-user location.
    if _get(env, "STATE_DIRECTORY"):
        return Path(str(_get(env, "STATE_DIRECTORY")).split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/openclaw-budget")
    return Path.home() / ".local" / "state" / "openclaw-budget"


def load(env: Optional[Mapping[str, str]] = None, require_prometheus: bool = True) -> Settings:
    """Read and validate every setting; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    errors: List[str] = []

    def attempt(fn, *args):
        try:
            return fn(*args)
        except ConfigError as exc:
            errors.append(str(exc))
            return None

    prom_raw = _get(env, "PROMETHEUS_URL")
    prometheus_url = ""
    if prom_raw is None:
        if require_prometheus:
            errors.append("PROMETHEUS_URL is not set (example: PROMETHEUS_URL=http://127.0.0.1:9090)")
    else:
        prometheus_url = attempt(_url, "PROMETHEUS_URL", prom_raw) or ""

    cap = attempt(_positive_float, env, "MAX_DAILY_USD", 5.0)
    warn = _get(env, "BUDGET_WARN_RATIO")
    warn_ratio = 0.8
    if warn is not None:
        try:
            warn_ratio = float(warn)
            if not (0 < warn_ratio <= 1):
                raise ValueError
        except ValueError:
            errors.append(f"BUDGET_WARN_RATIO={warn!r} must be a number in (0, 1], e.g. 0.8 for 80% of the cap")

    window = _get(env, "BUDGET_WINDOW") or "rolling-24h"
    if window not in WINDOWS:
        errors.append(f"BUDGET_WINDOW={window!r} must be one of: {', '.join(WINDOWS)}")

    tz_name = _get(env, "BUDGET_TZ") or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"BUDGET_TZ={tz_name!r} is not an IANA time zone name (example: BUDGET_TZ=Europe/Rome; "
                      "if the name is right, the host lacks a tz database: install the tzdata package)")

    policy = (_get(env, "BUDGET_ON_BACKEND_ERROR") or "closed").lower()
    if policy == "hold_last":
        policy = "hold"
    if policy not in POLICIES:
        errors.append(f"BUDGET_ON_BACKEND_ERROR={policy!r} must be one of: {', '.join(POLICIES)}")

    hs = _get(env, "MATRIX_HOMESERVER")
    room = _get(env, "MATRIX_ROOM_ID")
    token = _get(env, "MATRIX_ACCESS_TOKEN")
    token_file = _get(env, "MATRIX_ACCESS_TOKEN_FILE")
    if token and token_file:
        errors.append("set only one of MATRIX_ACCESS_TOKEN and MATRIX_ACCESS_TOKEN_FILE")
    if token_file and not token:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip() or None
            if token is None:
                errors.append(f"MATRIX_ACCESS_TOKEN_FILE={token_file!r} is empty")
        except OSError as exc:
            errors.append(f"MATRIX_ACCESS_TOKEN_FILE={token_file!r} cannot be read: {exc.strerror}")
    if hs is not None:
        hs = attempt(_url, "MATRIX_HOMESERVER", hs)
        if room is None:
            errors.append("MATRIX_HOMESERVER is set but MATRIX_ROOM_ID is not (example: !abcdef:matrix.lan)")
        elif not room.startswith("!") or len(room) < 2:
            # Room versions up to 11 look like !abc:server; version 12 (Synapse >= 1.135 default) drops the
            # server part (!<hash>). Aliases (#room:server) are refused: they can be repointed.
            errors.append(f"MATRIX_ROOM_ID={room!r} must be a room id starting with '!' (not an #alias)")
        if token is None and not token_file:
            errors.append("MATRIX_HOMESERVER is set but neither MATRIX_ACCESS_TOKEN nor MATRIX_ACCESS_TOKEN_FILE is")
    elif room or token:
        errors.append("MATRIX_ROOM_ID / MATRIX_ACCESS_TOKEN are set but MATRIX_HOMESERVER is not")

    flag_file = Path(_get(env, "BUDGET_FLAG_FILE") or DEFAULT_FLAG_FILE)
    if not flag_file.is_absolute():
        errors.append(f"BUDGET_FLAG_FILE={str(flag_file)!r} must be an absolute path")
    state_raw = _get(env, "BUDGET_STATE_DIR")
    state_dir = Path(state_raw) if state_raw else _default_state_dir(env)
    if not state_dir.is_absolute():
        errors.append(f"BUDGET_STATE_DIR={str(state_dir)!r} must be an absolute path")
    metrics_raw = _get(env, "BUDGET_METRICS_FILE")
    metrics_file = Path(metrics_raw) if metrics_raw else None
    if metrics_file is not None and (not metrics_file.is_absolute() or not metrics_file.name.endswith(".prom")):
        errors.append(f"BUDGET_METRICS_FILE={metrics_raw!r} must be an absolute path ending in .prom "
                      "(the node_exporter textfile collector only reads *.prom)")

    model_caps: Tuple[Cap, ...] = ()
    caps_raw = _get(env, "BUDGET_MODEL_CAPS")
    if caps_raw:
        model_caps = attempt(_parse_model_caps, caps_raw) or ()
    free_models = tuple(x.strip() for x in (_get(env, "BUDGET_FREE_MODELS") or "").split(",") if x.strip())

    query_mode = (_get(env, "BUDGET_QUERY_MODE") or "exact").lower()
    if query_mode not in ("exact", "fast"):
        errors.append(f"BUDGET_QUERY_MODE={query_mode!r} must be exact (default) or fast")

    cost_selector = _get(env, "BUDGET_COST_SELECTOR") or DEFAULT_COST_SELECTOR
    by_model_raw = _get(env, "BUDGET_COST_BY_MODEL_SELECTOR")
    by_model_selector: Optional[str]
    if by_model_raw is not None and by_model_raw.lower() == "off":
        by_model_selector = None
    elif by_model_raw is not None:
        by_model_selector = by_model_raw
    else:
        # The default by-model series sum the default cost series; a custom cost selector (another name, a
        # label filter) has no such copy unless one is named.
        by_model_selector = DEFAULT_BY_MODEL_SELECTOR if cost_selector == DEFAULT_COST_SELECTOR else None

    http_timeout = attempt(_positive_float, env, "BUDGET_HTTP_TIMEOUT", 10.0)
    lock_timeout = attempt(_positive_float, env, "BUDGET_LOCK_TIMEOUT", 30.0)

    cli_raw = _get(env, "BUDGET_OPENCLAW_CLI")
    openclaw_cli: Tuple[str, ...] = ()
    if cli_raw:
        try:
            openclaw_cli = tuple(shlex.split(cli_raw))
        except ValueError as exc:
            errors.append(f"BUDGET_OPENCLAW_CLI={cli_raw!r} cannot be split like a shell command: {exc}")

    test_now = None
    if _get(env, "BUDGET_TEST_NOW"):
        test_now = attempt(_parse_test_now, str(_get(env, "BUDGET_TEST_NOW")))
    test_hold = 0.0
    if _get(env, "BUDGET_TEST_HOLD_LOCK"):
        test_hold = attempt(_positive_float, env, "BUDGET_TEST_HOLD_LOCK", 1.0) or 0.0

    if errors:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(errors))
    return Settings(
        prometheus_url=prometheus_url,
        max_daily_usd=float(cap),
        warn_ratio=warn_ratio,
        window=window,
        tz_name=tz_name,
        on_backend_error=policy,
        matrix_homeserver=hs,
        matrix_room_id=room,
        matrix_access_token=token,
        flag_file=flag_file,
        state_dir=state_dir,
        metrics_file=metrics_file,
        model_caps=model_caps,
        free_models=free_models,
        cost_selector=cost_selector,
        by_model_selector=by_model_selector,
        tokens_selector=_get(env, "BUDGET_TOKENS_SELECTOR") or DEFAULT_TOKENS_SELECTOR,
        query_mode=query_mode,
        http_timeout=float(http_timeout),
        lock_timeout=float(lock_timeout),
        openclaw_cli=openclaw_cli,
        lift_hint=_get(env, "BUDGET_LIFT_HINT") or "python -m enforcer allow --for 2h",
        test_now=test_now,
        test_crash_at=_get(env, "BUDGET_TEST_CRASH_AT"),
        test_hold_lock=test_hold,
    )


def describe(settings: Settings) -> Dict[str, object]:
    """Settings for `status --json`/doctor output, with the Matrix token masked."""
    return {
        "prometheus_url": settings.prometheus_url,
        "max_daily_usd": settings.max_daily_usd,
        "warn_ratio": settings.warn_ratio,
        "window": settings.window,
        "timezone": settings.tz_name,
        "on_backend_error": settings.on_backend_error,
        "matrix_homeserver": settings.matrix_homeserver,
        "matrix_room_id": settings.matrix_room_id,
        "matrix_access_token": "***" if settings.matrix_access_token else None,
        "flag_file": str(settings.flag_file),
        "state_dir": str(settings.state_dir),
        "metrics_file": str(settings.metrics_file) if settings.metrics_file else None,
        "model_caps": {c.scope: c.usd for c in settings.model_caps},
        "free_models": list(settings.free_models),
        "query_mode": settings.query_mode,
        "cost_selector": settings.cost_selector,
        "by_model_selector": settings.by_model_selector,
    }
