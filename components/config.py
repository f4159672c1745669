"""Typed stack configuration: read once, validated once, before any resource exists.

The stack file (``Pulumi.<stack>.yaml``) holds one object per concern under the project's namespace
(``openclaw-usage:hosts``, ``openclaw-usage:gateway``, ...).  :func:`parse_stack_config` turns those raw
objects into a frozen :class:`StackConfig` or raises :class:`ConfigError` listing *every* problem, one line
each, naming the config key (``enforcer.dailyCapUsd: must be greater than 0 (got -1)``).  Both the Pulumi
program and ``python -m components render`` go through it, so a config that renders is a config that
deploys.

Secrets (SSH private keys, the OTLP bearer token, the Matrix access token) must be stored with
``pulumi config set --secret``; a secret field holding a plaintext value is rejected, so a token can never
end up in the stack file in clear.
"""
from __future__ import annotations

import ipaddress
import json
import posixpath
import re
import zoneinfo
from typing import Any, Literal, Mapping, Optional

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
import yaml

PROJECT = "openclaw-usage"

#: Top-level config keys (``openclaw-usage:<key>``), in the order they are documented.
SECTIONS = ("hosts", "gateway", "otlp", "prices", "collector", "enforcer", "gate", "matrix")

#: Dotted paths (with ``*`` for map keys) of fields that must be Pulumi secrets.
SECRET_FIELDS = ("hosts.*.privateKey", "otlp.bearerToken", "matrix.accessToken")

_SECRET_LEAF_NAMES = frozenset(path.rsplit(".", 1)[-1] for path in SECRET_FIELDS)

#: Written in place of a secret's value wherever a secret can't be decrypted or must not be shown.
MASKED = "********"

DEFAULT_COLLECTOR_VERSION = "0.159.0"
DEFAULT_GATEWAY_CLI = "docker exec -i openclaw-gateway node /app/dist/entry.js"

_HOST_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_ROOM_ID = re.compile(r"^![A-Za-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]+)?$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
_DOCKER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_PLUGIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ConfigError(ValueError):
    """The stack configuration is invalid; ``problems`` has one line per problem, each naming its key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid stack configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class _Model(BaseModel):
    """Strict, immutable, camelCase in the stack file, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, str_strip_whitespace=True
    )


def _absolute_posix_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path (got {value!r})")
    if "\n" in value or "\x00" in value:
        raise ValueError("must not contain newlines or NUL bytes")
    return posixpath.normpath(value)


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# --------------------------------------------------------------------------------------------- hosts


class Host(_Model):
    """A machine Pulumi reaches over SSH (the gateway host, the collector host, the enforcer host)."""

    address: str = Field(description="IP address or DNS name Pulumi connects to.")
    port: int = Field(22, ge=1, le=65535)
    user: str = Field("root", min_length=1, pattern=r"^[a-z_][a-z0-9_.-]*$")
    private_key: Optional[SecretStr] = Field(None, description="SSH private key (secret).")
    use_ssh_agent: bool = Field(False, description="Authenticate with the local ssh-agent instead of privateKey.")
    host_key: Optional[str] = Field(
        None, description="Pinned SSH host public key ('ssh-ed25519 AAAA...'); unpinned keys are not verified."
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "/" in value or "@" in value:
            raise ValueError(f"must be a bare host name or IP address (got {value!r})")
        return value

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.match(r"^(ssh-|ecdsa-sha2-|sk-)[A-Za-z0-9@.-]+ [A-Za-z0-9+/=]+", value):
            raise ValueError("must be an OpenSSH public key line such as 'ssh-ed25519 AAAA...'")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> "Host":
        if self.private_key is None and not self.use_ssh_agent:
            raise ValueError(
                "privateKey: missing secret; set it with `pulumi config set --secret --path "
                "'hosts.<name>.privateKey' -- \"$(cat ~/.ssh/id_ed25519)\"`, or set useSshAgent: true"
            )
        return self


# ------------------------------------------------------------------------------------------- gateway


class Mount(_Model):
    """A bind mount of the gateway container: ``hostPath`` on the host is ``containerPath`` inside."""

    host_path: str
    container_path: str

    @field_validator("host_path", "container_path")
    @classmethod
    def _paths(cls, value: str) -> str:
        return _absolute_posix_path(value)


class Gateway(_Model):
    """The OpenClaw gateway whose openclaw.json we patch (over SSH, on its host)."""

    host: str
    container: str = Field("openclaw-gateway", pattern=_DOCKER_NAME.pattern)
    config_path: str = Field(description="openclaw.json on the host (bind-mounted into the container).")
    cli: str = Field(DEFAULT_GATEWAY_CLI, min_length=1, description="How to run the OpenClaw CLI on the host.")
    apply: Literal["hot-reload", "restart"] = Field(
        "hot-reload", description="hot-reload: the gateway picks changes up itself; restart: `docker restart`."
    )
    mounts: tuple[Mount, ...] = Field((), description="The container's bind mounts we rely on (flag, plugin).")
    install_otel_plugin: bool = Field(
        False, description="Install the official diagnostics-otel plugin if the gateway lacks it."
    )
    work_dir: str = Field(
        "~/.openclaw-usage", description="Where the patch tool keeps its state and backups on the host."
    )

    @field_validator("config_path")
    @classmethod
    def _config_path(cls, value: str) -> str:
        return _absolute_posix_path(value)

    def container_path_of(self, host_path: str) -> Optional[str]:
        """The path inside the container of ``host_path``, or None if no mount exposes it."""
        for mount in sorted(self.mounts, key=lambda m: len(m.host_path), reverse=True):
            if _is_within(host_path, mount.host_path):
                return posixpath.normpath(mount.container_path + host_path[len(mount.host_path):])
        return None


# ---------------------------------------------------------------------------------------------- otlp


class Otlp(_Model):
    """How the gateway's diagnostics-otel plugin exports (``diagnostics.otel`` in openclaw.json)."""

    endpoint: Optional[AnyHttpUrl] = Field(None, description="Defaults to the collector's published endpoint.")
    protocol: Literal["http/protobuf"] = "http/protobuf"
    service_name: str = Field("openclaw-gateway", min_length=1, max_length=128)
    metrics: bool = True
    traces: bool = False
    logs: bool = False
    flush_interval_ms: int = Field(30000, ge=1000, le=3_600_000)
    bearer_token: Optional[SecretStr] = Field(None, description="Shared with the collector's receiver (secret).")

    @model_validator(mode="after")
    def _metrics_on(self) -> "Otlp":
        if not self.metrics:
            raise ValueError("metrics: must be true: the budget is computed from the exported cost metrics")
        return self


# -------------------------------------------------------------------------------------------- prices


class ModelPrice(_Model):
    """USD per 1M tokens; all four are required because OpenClaw only uses a config price when all are set."""

    name: Optional[str] = Field(None, min_length=1, description="Display name when the model entry is added.")
    input: float = Field(ge=0, le=10_000)
    output: float = Field(ge=0, le=10_000)
    cache_read: float = Field(ge=0, le=10_000)
    cache_write: float = Field(ge=0, le=10_000)


# ------------------------------------------------------------------------------------------ collector


class Collector(_Model):
    """The OpenTelemetry Collector between the gateway and Prometheus."""

    mode: Literal["remote-write", "scrape", "existing"] = "remote-write"
    host: Optional[str] = Field(None, description="Host running the collector container (not for 'existing').")
    image: str = Field("otel/opentelemetry-collector-contrib", pattern=r"^[a-z0-9./_-]+$")
    version: str = Field(DEFAULT_COLLECTOR_VERSION, description="Pinned image tag, e.g. 0.159.0 (never latest).")
    bind_address: str = Field("0.0.0.0", description="Host address the published ports bind to.")
    otlp_port: int = Field(4318, ge=1, le=65535)
    health_port: int = Field(13133, ge=1, le=65535)
    scrape_port: int = Field(8889, ge=1, le=65535, description="Prometheus exporter port (mode 'scrape').")
    self_metrics_port: Optional[int] = Field(None, ge=1, le=65535, description="Publish the collector's :8888.")
    prometheus_url: Optional[AnyHttpUrl] = Field(None, description="Prometheus base URL (mode 'remote-write').")
    prometheus_network: Optional[str] = Field(
        None, description="Docker network of an existing Prometheus container to join (reach it by name)."
    )
    network_name: str = Field("openclaw-usage", pattern=_DOCKER_NAME.pattern)
    batch_timeout_seconds: float = Field(5, gt=0, le=300)
    memory_limit_mib: int = Field(256, ge=64, le=65536)

    @field_validator("version")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(f"must be a pinned version like {DEFAULT_COLLECTOR_VERSION} (got {value!r})")
        return value

    @field_validator("bind_address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            raise ValueError(f"must be an IP address such as 0.0.0.0 or 127.0.0.1 (got {value!r})") from None

    @model_validator(mode="after")
    def _mode_requirements(self) -> "Collector":
        problems = []
        if self.mode != "existing" and not self.host:
            problems.append(f"host: required when mode is {self.mode!r}")
        if self.mode == "remote-write" and self.prometheus_url is None:
            problems.append("prometheusUrl: required when mode is 'remote-write'")
        published = {"otlpPort": self.otlp_port, "healthPort": self.health_port}
        if self.mode == "scrape":
            published["scrapePort"] = self.scrape_port
        if self.self_metrics_port is not None:
            published["selfMetricsPort"] = self.self_metrics_port
        seen: dict[int, str] = {}
        for key, port in published.items():
            if port in seen:
                problems.append(f"{key}: port {port} clashes with {seen[port]}")
            seen[port] = key
        if problems:
            raise ValueError("\n".join(problems))
        return self


# ------------------------------------------------------------------------------------------- enforcer


class Enforcer(_Model):
    """The budget enforcer: runs on its host, queries Prometheus, writes the flag, alerts Matrix."""

    host: str
    daily_cap_usd: float = Field(gt=0, le=1_000_000)
    warn_ratio: float = Field(0.8, gt=0, lt=1)
    window: Literal["rolling-24h", "calendar-day"] = "rolling-24h"
    timezone: str = "UTC"
    on_backend_error: Literal["open", "closed", "hold"] = "hold"
    run_as: Literal["watch", "timer"] = Field(
        "watch", description="watch: a long-running loop (fast); timer: a oneshot service on a systemd timer."
    )
    interval_seconds: int = Field(10, ge=1, le=86_400)
    flag_file: str = "/tmp/openclaw-budget-exceeded"
    state_dir: str = "/var/lib/openclaw-budget"
    install_dir: str = "/opt/openclaw-budget"
    user: str = Field("openclaw-budget", pattern=r"^[a-z_][a-z0-9_-]*$")
    prometheus_url: Optional[AnyHttpUrl] = Field(None, description="Prometheus as seen from the enforcer host.")
    model_caps: dict[str, float] = Field(
        default_factory=dict, description="Optional caps per 'provider' or 'provider/model', USD per window."
    )

    @field_validator("flag_file", "state_dir", "install_dir")
    @classmethod
    def _paths(cls, value: str) -> str:
        return _absolute_posix_path(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Rome)") from None
        return value

    @field_validator("model_caps")
    @classmethod
    def _caps(cls, value: dict[str, float]) -> dict[str, float]:
        for scope, cap in value.items():
            if not scope or scope.count("/") > 2:
                raise ValueError(f"{scope!r}: must be 'provider' or 'provider/model'")
            if not cap > 0:
                raise ValueError(f"{scope!r}: cap must be greater than 0 (got {cap})")
        return value


# ----------------------------------------------------------------------------------------------- gate


class Gate(_Model):
    """The budget gate plugin, loaded by the gateway from a directory the container mounts."""

    enabled: bool = True
    plugin_id: str = Field("openclaw-budget-gate", pattern=_PLUGIN_ID.pattern)
    host_dir: Optional[str] = Field(None, description="Where the plugin is copied on the gateway host.")

    @field_validator("host_dir")
    @classmethod
    def _host_dir(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else _absolute_posix_path(value)


# --------------------------------------------------------------------------------------------- matrix


class Matrix(_Model):
    """The Matrix room the enforcer reports to."""

    homeserver: AnyHttpUrl
    room_id: str
    access_token: Optional[SecretStr] = Field(None, description="Bot access token (secret).")

    @field_validator("room_id")
    @classmethod
    def _room(cls, value: str) -> str:
        if not _ROOM_ID.match(value):
            raise ValueError(f"must be a room id like '!abc123:example.org' (got {value!r})")
        return value

    @model_validator(mode="after")
    def _token(self) -> "Matrix":
        if self.access_token is None:
            raise ValueError(
                "accessToken: missing secret; set it with "
                "`pulumi config set --secret --path matrix.accessToken '<bot access token>'`"
            )
        return self


# ---------------------------------------------------------------------------------------------- stack


class StackConfig(_Model):
    """Everything one stack deploys."""

    hosts: dict[str, Host]
    gateway: Gateway
    otlp: Otlp = Field(default_factory=Otlp)
    prices: dict[str, dict[str, ModelPrice]] = Field(default_factory=dict)
    collector: Collector
    enforcer: Enforcer
    gate: Gate = Field(default_factory=Gate)
    matrix: Matrix

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict[str, Host]) -> dict[str, Host]:
        if not value:
            raise ValueError("at least one host is required")
        for name in value:
            if not _HOST_NAME.match(name):
                raise ValueError(f"{name!r}: host names are lower-case letters, digits and '-'")
        return value

    @field_validator("prices")
    @classmethod
    def _price_keys(cls, value: dict[str, dict[str, ModelPrice]]) -> dict[str, dict[str, ModelPrice]]:
        for provider, models in value.items():
            if not re.match(r"^[a-z0-9][a-z0-9._-]*$", provider):
                raise ValueError(f"{provider!r}: not a valid OpenClaw provider id")
            for model_id in models:
                if not model_id.strip():
                    raise ValueError(f"{provider}: a price has an empty model id")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> "StackConfig":
        problems: list[str] = []
        for key, host in (
            ("gateway.host", self.gateway.host),
            ("collector.host", self.collector.host),
            ("enforcer.host", self.enforcer.host),
        ):
            if host is not None and host not in self.hosts:
                problems.append(f"{key}: unknown host {host!r} (defined hosts: {', '.join(sorted(self.hosts))})")
        if self.collector.mode == "existing" and self.otlp.endpoint is None:
            problems.append("otlp.endpoint: required when collector.mode is 'existing' (where does it listen?)")
        if self.enforcer.prometheus_url is None and self.collector.prometheus_url is None:
            problems.append("enforcer.prometheusUrl: required (the Prometheus URL as seen from the enforcer host)")
        if self.gateway.host in self.hosts and self.enforcer.host in self.hosts:
            problems += self._flag_reaches_gate()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _flag_reaches_gate(self) -> list[str]:
        """The enforcer's flag and the gate's flag must be the same file, or the stop is an illusion."""
        if not self.gate.enabled:
            return []
        problems = []
        if self.enforcer.host != self.gateway.host:
            problems.append(
                f"enforcer.host: the enforcer writes the flag file on its own host ({self.enforcer.host!r}) but the "
                f"gate reads it inside the gateway container on {self.gateway.host!r}; set enforcer.host to "
                f"{self.gateway.host!r}"
            )
        if self.gateway.container_path_of(self.enforcer.flag_file) is None:
            mounted = ", ".join(m.host_path for m in self.gateway.mounts) or "none configured"
            problems.append(
                f"enforcer.flagFile: {self.enforcer.flag_file} is not inside any directory the gateway container "
                f"mounts (gateway.mounts: {mounted}); put it under a mounted directory, e.g. "
                f"<hostPath>/budget/openclaw-budget-exceeded, or add the mount to gateway.mounts"
            )
        if self.gate.host_dir is None:
            problems.append("gate.hostDir: required (a directory under a gateway mount to copy the plugin into)")
        elif self.gateway.container_path_of(self.gate.host_dir) is None:
            problems.append(
                f"gate.hostDir: {self.gate.host_dir} is not inside any directory the gateway container mounts "
                "(gateway.mounts), so the gateway could not load the plugin from it"
            )
        return problems

    # Derived values every component agrees on -------------------------------------------------------

    @property
    def otlp_endpoint(self) -> str:
        """The OTLP/HTTP base URL the gateway exports to."""
        if self.otlp.endpoint is not None:
            return str(self.otlp.endpoint).rstrip("/")
        host = self.hosts[self.collector.host or ""]
        return f"http://{host.address}:{self.collector.otlp_port}"

    @property
    def enforcer_prometheus_url(self) -> str:
        return str(self.enforcer.prometheus_url or self.collector.prometheus_url).rstrip("/")

    @property
    def gate_flag_path(self) -> str:
        """The flag file as the gate plugin sees it, inside the gateway container."""
        path = self.gateway.container_path_of(self.enforcer.flag_file)
        return path if path is not None else self.enforcer.flag_file

    @property
    def gate_container_dir(self) -> Optional[str]:
        """The plugin directory as the gateway sees it, inside the container."""
        return None if self.gate.host_dir is None else self.gateway.container_path_of(self.gate.host_dir)


# --------------------------------------------------------------------------------------------- parsing


def _secret_paths(raw: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Concrete paths (tuples of keys) of every secret field present in ``raw``."""
    found = []
    for pattern in SECRET_FIELDS:
        parts = pattern.split(".")

        def walk(node: Any, depth: int, path: tuple[str, ...]) -> None:
            if depth == len(parts):
                found.append(path)
                return
            if not isinstance(node, Mapping):
                return
            keys = list(node) if parts[depth] == "*" else [parts[depth]]
            for key in keys:
                if key in node:
                    walk(node[key], depth + 1, path + (str(key),))

        walk(raw, 0, ())
    return found


def _error_lines(error: ValidationError) -> list[str]:
    """One line per problem: ``<dotted.key>: <what is wrong>``."""
    lines = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"])
        message = item["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            if message.startswith(prefix):
                message = message[len(prefix):]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see README 'Configuration reference')"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif (
            item["type"] != "value_error"
            and not isinstance(item.get("input"), (dict, list, tuple))
            and not _SECRET_LEAF_NAMES.intersection(str(p) for p in item["loc"])
        ):
            message = f"{message} (got {item.get('input')!r})"
        # Model-level validators report several problems, one per line, each naming its own sub-key.
        for part in message.split("\n"):
            key, sep, rest = part.partition(": ")
            if sep and item["type"] == "value_error" and re.match(r"^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*$", key):
                lines.append(f"{loc}.{key}: {rest}" if loc else f"{key}: {rest}")
            else:
                lines.append(f"{loc}: {part}" if loc else part)
    return lines


def parse_stack_config(raw: Mapping[str, Any], secret_paths_ok: Any = None) -> StackConfig:
    """Validate the raw config objects (one per section, without the project prefix).

    ``secret_paths_ok(path) -> bool`` says whether the value at a secret field's path was stored as a Pulumi
    secret; a secret field stored in plain text is an error.  Raises :class:`ConfigError` with every problem.
    """
    problems: list[str] = []
    unknown = sorted(set(raw) - set(SECTIONS))
    for key in unknown:
        problems.append(f"{key}: unknown top-level key (known: {', '.join(SECTIONS)})")
    if secret_paths_ok is not None:
        for path in _secret_paths(raw):
            if not secret_paths_ok(path):
                dotted = ".".join(path)
                problems.append(
                    f"{dotted}: must be a secret; remove it from the stack file and run "
                    f"`pulumi config set --secret --path '{dotted}' ...`"
                )
    known = {k: v for k, v in raw.items() if k in SECTIONS}
    try:
        config = StackConfig.model_validate(known)
    except ValidationError as error:
        problems += _error_lines(error)
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


# --------------------------------------------------------------------------------------------- loading


def load_from_pulumi() -> StackConfig:
    """Read and validate this stack's config inside a Pulumi program (or under Pulumi mocks)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    all_config = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{pulumi.get_project()}:"
    raw: dict[str, Any] = {}
    problems: list[str] = []
    for full_key in sorted(all_config):
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        value = pulumi.Config().get(key)
        try:
            raw[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError as error:
            problems.append(f"{key}: must be an object, not {value!r} ({error.msg})")
    secret_sections = {
        key[len(prefix):]
        for key in set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
        if key.startswith(prefix)
    }
    if problems:
        raise ConfigError(problems)
    # Pulumi marks a whole top-level key secret when any leaf under it was set with --secret.
    return parse_stack_config(raw, secret_paths_ok=lambda path: path[0] in secret_sections)


def _fill_missing_secrets(raw: dict[str, Any]) -> list[str]:
    """Put masked placeholders where required secrets are unset; returns the dotted keys filled."""
    filled = []
    for name, host in (raw.get("hosts") or {}).items():
        if isinstance(host, dict) and "privateKey" not in host and not host.get("useSshAgent"):
            host["privateKey"] = MASKED
            filled.append(f"hosts.{name}.privateKey")
    matrix = raw.get("matrix")
    if isinstance(matrix, dict) and "accessToken" not in matrix:
        matrix["accessToken"] = MASKED
        filled.append("matrix.accessToken")
    return filled


def load_from_stack_file(path: str, unset_secrets: Optional[list[str]] = None) -> StackConfig:
    """Validate ``Pulumi.<stack>.yaml`` without the Pulumi CLI; secrets stay encrypted and are masked.

    When ``unset_secrets`` is a list, required secrets that are not set yet are masked instead of being an
    error (for review renders), and their keys are appended to it.
    """
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    config = document.get("config") or {}
    raw: dict[str, Any] = {}
    secure_paths: set[tuple[str, ...]] = set()

    def unwrap(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict) and set(node) == {"secure"}:
            secure_paths.add(path)
            return MASKED
        if isinstance(node, dict):
            return {k: unwrap(v, path + (str(k),)) for k, v in node.items()}
        if isinstance(node, list):
            return [unwrap(v, path + (str(i),)) for i, v in enumerate(node)]
        return node

    problems = []
    for full_key, value in config.items():
        project, _, key = str(full_key).partition(":")
        if not key:
            problems.append(f"{full_key}: config keys must be namespaced, e.g. {PROJECT}:{full_key}")
            continue
        if project != PROJECT:
            continue
        raw[key] = unwrap(value, (key,))
    if problems:
        raise ConfigError(problems)
    if unset_secrets is not None:
        for key in _fill_missing_secrets(raw):
            unset_secrets.append(key)
            secure_paths.add(tuple(key.split(".")))
    return parse_stack_config(raw, secret_paths_ok=lambda p: p in secure_paths)
