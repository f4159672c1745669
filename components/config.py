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
import shlex
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
# Room ids: "!opaque:server", or from room version 12 on just "!opaque" (Synapse 1.163 creates those).
_ROOM_ID = re.compile(r"^![A-Za-z0-9._=/+-]+(:[A-Za-z0-9.-]+(:[0-9]+)?)?$")
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


def is_loopback(host: str) -> bool:
    """True for localhost names and loopback addresses (inside a container they mean the container)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# --------------------------------------------------------------------------------------------- hosts


class Host(_Model):
    """A machine Pulumi reaches over SSH (the gateway host, the collector host, the enforcer host)."""

    address: str = Field(description="IP address or DNS name Pulumi connects to.")
    port: int = Field(22, ge=1, le=65535, description="SSH port.")
    user: str = Field("root", min_length=1, pattern=r"^[a-z_][a-z0-9_.-]*$", description="SSH user.")
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

    host: str = Field(description="Name of the host (in `hosts`) running the gateway container.")
    container: str = Field("openclaw-gateway", pattern=_DOCKER_NAME.pattern, description="Gateway container name.")
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
    python: str = Field(
        "python3",
        pattern=r"^[A-Za-z0-9._/+-]+$",
        description="Python 3.9+ on the gateway host that runs the patch tool (standard library only).",
    )
    verify: bool = Field(
        True,
        description="After a change, check that the gateway runs with it (`config get diagnostics`, the "
        "diagnostics-otel metrics exporter's start event, the gateway log) and fail `up` with the evidence if not.",
    )
    verify_timeout_seconds: int = Field(120, ge=10, le=1800, description="How long the verification waits.")
    log_command: Optional[str] = Field(
        None,
        description="Prints the gateway log since {since} (an RFC 3339 time) for the verification. Default "
        "`docker logs --since {since} <container>`; an empty string reads no log.",
    )
    restart_command: Optional[str] = Field(
        None, description="How `apply: restart` restarts the gateway. Default `docker restart <container>`."
    )

    @field_validator("config_path")
    @classmethod
    def _config_path(cls, value: str) -> str:
        return _absolute_posix_path(value)

    @field_validator("work_dir")
    @classmethod
    def _work_dir(cls, value: str) -> str:
        # Used in shell commands and SFTP paths: "~/..." (the SSH user's home) or an absolute path.
        if not re.match(r"^(~/|/)[A-Za-z0-9._/@+-]*[A-Za-z0-9._@+-]$", value) or "/../" in value + "/":
            raise ValueError(f"must be '~/<dir>' or an absolute path of letters, digits and . _ - + @ (got {value!r})")
        return value

    @field_validator("cli", "log_command", "restart_command")
    @classmethod
    def _command_line(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        if "\n" in value or "\x00" in value:
            raise ValueError("must be a single-line command")
        try:
            shlex.split(value)
        except ValueError as error:
            raise ValueError(f"cannot be split like a shell command ({error}): {value!r}") from None
        return value

    @model_validator(mode="after")
    def _config_mount(self) -> "Gateway":
        for mount in self.mounts:
            if mount.host_path == self.config_path:
                raise ValueError(
                    f"mounts: {self.config_path} is bind-mounted as a single file; the patch tool replaces "
                    "openclaw.json atomically (a new file), which a single-file bind mount never shows the "
                    "container. Mount its directory instead"
                )
        return self

    @property
    def effective_log_command(self) -> Optional[str]:
        """The gateway-log command of the verification (None: read no log)."""
        if self.log_command is None:
            return f"docker logs --since {{since}} {self.container}"
        return self.log_command or None

    @property
    def effective_restart_command(self) -> str:
        return self.restart_command or f"docker restart {self.container}"

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
    protocol: Literal["http/protobuf"] = Field("http/protobuf", description="The only protocol OpenClaw supports.")
    service_name: str = Field(
        "openclaw-gateway", min_length=1, max_length=128, description="OTel service.name: the `job` label."
    )
    metrics: bool = Field(True, description="Export metrics (required: the budget is computed from them).")
    traces: bool = Field(False, description="Export traces too.")
    logs: bool = Field(False, description="Export logs too.")
    flush_interval_ms: int = Field(
        30000, ge=1000, le=3_600_000, description="Export interval; part of the overshoot bound (README)."
    )
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
    input: float = Field(ge=0, le=10_000, description="USD per 1M input tokens.")
    output: float = Field(ge=0, le=10_000, description="USD per 1M output tokens.")
    cache_read: float = Field(ge=0, le=10_000, description="USD per 1M cache-read tokens.")
    cache_write: float = Field(ge=0, le=10_000, description="USD per 1M cache-write tokens.")


# ------------------------------------------------------------------------------------------ collector


class Collector(_Model):
    """The OpenTelemetry Collector between the gateway and Prometheus."""

    mode: Literal["remote-write", "scrape", "existing"] = Field(
        "remote-write", description="How metrics reach Prometheus (README 'The collector')."
    )
    host: Optional[str] = Field(None, description="Host running the collector container (not for 'existing').")
    image: str = Field(
        "otel/opentelemetry-collector-contrib", pattern=r"^[a-z0-9./_-]+$", description="Collector image (contrib)."
    )
    version: str = Field(DEFAULT_COLLECTOR_VERSION, description="Pinned image tag, e.g. 0.159.0 (never latest).")
    container_name: str = Field("openclaw-otel-collector", pattern=_DOCKER_NAME.pattern)
    docker_host: Optional[str] = Field(
        None,
        description="Docker daemon of the collector host. Default ssh://<user>@<address>:<port> of that host; "
        "unix:///var/run/docker.sock when Pulumi runs on the collector host itself.",
    )
    bind_address: str = Field("0.0.0.0", description="Host address the published ports bind to.")
    otlp_port: int = Field(4318, ge=1, le=65535, description="Published OTLP/HTTP port.")
    health_port: int = Field(13133, ge=1, le=65535, description="Published health_check port.")
    scrape_port: int = Field(8889, ge=1, le=65535, description="Prometheus exporter port (mode 'scrape').")
    self_metrics_port: Optional[int] = Field(None, ge=1, le=65535, description="Publish the collector's :8888.")
    prometheus_url: Optional[AnyHttpUrl] = Field(
        None, description="Prometheus base URL as seen from the collector host (mode 'remote-write')."
    )
    prometheus_network: Optional[str] = Field(
        None,
        pattern=_DOCKER_NAME.pattern,
        description="Docker network of an existing Prometheus container to join (reach it by name).",
    )
    prometheus_container_url: Optional[AnyHttpUrl] = Field(
        None,
        description="Prometheus as the collector container reaches it, e.g. http://prometheus:9090 on "
        "prometheusNetwork. Default: prometheusUrl, a loopback host replaced by the Docker host gateway.",
    )
    network_name: str = Field("openclaw-usage", pattern=_DOCKER_NAME.pattern, description="Bridge network created.")
    batch_timeout_seconds: float = Field(5, gt=0, le=300, description="Batch processor timeout (overshoot bound).")
    memory_limit_mib: int = Field(256, ge=64, le=65536, description="Container memory limit.")
    deploy_checks: bool = Field(
        True,
        description="At `pulumi up`, probe the collector's health_check endpoint and Prometheus's remote-write "
        "receiver from the collector host (needs python3 there).",
    )

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

    @field_validator("docker_host")
    @classmethod
    def _docker_host(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.match(r"^(unix:///\S+|ssh://\S+|tcp://\S+)$", value):
            raise ValueError(
                f"must be a Docker daemon URL: unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376 "
                f"(got {value!r})"
            )
        return value

    @field_validator("prometheus_url", "prometheus_container_url")
    @classmethod
    def _prometheus_base(cls, value: Optional[AnyHttpUrl]) -> Optional[AnyHttpUrl]:
        if value is None:
            return value
        if value.query or value.fragment:
            raise ValueError(f"must be a base URL without query or fragment (got {str(value)!r})")
        if (value.path or "").rstrip("/").endswith("/api/v1/write"):
            raise ValueError(f"give Prometheus's base URL, without /api/v1/write (got {str(value)!r})")
        return value

    @model_validator(mode="after")
    def _mode_requirements(self) -> "Collector":
        problems = []
        if self.mode != "existing" and not self.host:
            problems.append(f"host: required when mode is {self.mode!r}")
        if self.mode == "remote-write" and self.prometheus_url is None:
            problems.append("prometheusUrl: required when mode is 'remote-write'")
        if self.mode == "remote-write" and self.prometheus_network and self.prometheus_container_url is None:
            problems.append(
                "prometheusContainerUrl: required when prometheusNetwork is set (Prometheus by its container "
                "name on that network, e.g. http://prometheus:9090)"
            )
        if self.prometheus_container_url is not None and is_loopback(self.prometheus_container_url.host or ""):
            problems.append(
                f"prometheusContainerUrl: {self.prometheus_container_url.host} is the collector container itself; "
                "use Prometheus's container name on prometheusNetwork"
            )
        if self.prometheus_network is not None and self.prometheus_network == self.network_name:
            problems.append(
                f"prometheusNetwork: {self.prometheus_network!r} is also networkName, the network this stack "
                "creates; give Prometheus's existing network, or another networkName"
            )
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

    host: str = Field(description="Host (in `hosts`) the enforcer runs on: the gateway host, so the gate sees the flag.")
    daily_cap_usd: float = Field(gt=0, le=1_000_000, description="Cap in USD per window.")
    warn_ratio: float = Field(0.8, gt=0, lt=1, description="Warn (once per window) at this share of the cap.")
    window: Literal["rolling-24h", "calendar-day"] = Field(
        "rolling-24h", description="Rolling last 24 h, or since local midnight in `timezone`."
    )
    timezone: str = Field("UTC", description="IANA time zone for calendar days and messages.")
    on_backend_error: Literal["open", "closed", "hold"] = Field(
        "closed",
        description="When Prometheus fails: closed (block: the hard stop never silently opens), open (don't block), "
        "hold (keep the last decision). Every outage is reported once.",
    )
    run_as: Literal["watch", "timer"] = Field(
        "watch", description="watch: a long-running loop (fast); timer: a oneshot service on a systemd timer."
    )
    interval_seconds: int = Field(
        10,
        ge=1,
        le=86_400,
        description="Seconds between checks. Keep it at 10 (watch) to close the gate within 15 s of the cost "
        "reaching Prometheus; with runAs 'timer' it must divide a minute, an hour or a day (e.g. 300).",
    )
    flag_file: str = Field(
        "/tmp/openclaw-budget-exceeded",
        description="The flag on the enforcer host. With the gate on, it must sit in a directory the gateway "
        "container mounts (gateway.mounts), e.g. <mount hostPath>/budget/openclaw-budget-exceeded.",
    )
    state_dir: str = Field(
        "/var/lib/openclaw-budget", description="Decision log, undelivered alerts and the run lock (0700)."
    )
    install_dir: str = Field(
        "/opt/openclaw-budget", description="Code and virtualenv (root-owned); `destroy` deletes this directory."
    )
    user: str = Field(
        "openclaw-budget",
        pattern=r"^[a-z_][a-z0-9_-]*$",
        description="User the service runs as, created as a system user if missing. It must reach the flag's "
        "directory: a dedicated user cannot enter a 0700 home, so with flagFile under /home/<you>, use <you>.",
    )
    prometheus_url: Optional[AnyHttpUrl] = Field(None, description="Prometheus as seen from the enforcer host.")
    model_caps: dict[str, float] = Field(
        default_factory=dict, description="Optional caps per 'provider' or 'provider/model', USD per window."
    )
    metrics_file: Optional[str] = Field(
        None, description="Optional node_exporter textfile output (*.prom); its directory must exist."
    )
    keep_state_on_destroy: bool = Field(
        True, description="Keep stateDir (decision log, undelivered alerts) on `pulumi destroy`."
    )
    python: str = Field(
        "python3",
        pattern=r"^[A-Za-z0-9._/+-]+$",
        description="Interpreter on the enforcer host that creates the virtualenv (3.9+; Debian/Ubuntu also "
        "need python3-venv).",
    )
    pip_args: tuple[str, ...] = Field(
        (),
        description="Extra `pip install` arguments for offline or mirrored hosts, e.g. ['--no-index', "
        "'--find-links', '/srv/wheels'] or ['--index-url', 'https://pypi.example/simple'].",
    )
    sudo: Optional[str] = Field(
        None,
        description="Command prefix that runs the install as root. Default: none when the host's SSH user is "
        "root, else 'sudo -n' (passwordless sudo required).",
    )
    systemctl: str = Field(
        "systemctl",
        min_length=1,
        description="How the install calls systemctl (split like a shell command). Sandboxes and tests point "
        "it at a recorder.",
    )
    root_dir: str = Field(
        "/",
        description="Install every file under this directory instead of / (sandboxes and tests only: the "
        "units still name the real paths, and systemd does not run them there).",
    )

    @field_validator("flag_file", "state_dir", "install_dir", "metrics_file", "root_dir")
    @classmethod
    def _paths(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        value = _absolute_posix_path(value)
        # These paths go verbatim into systemd unit files and shell commands: no spaces, quotes or '%'.
        if not re.match(r"^/[A-Za-z0-9._/@+-]*$", value):
            raise ValueError(f"may only contain letters, digits and . _ - + @ / (got {value!r})")
        return value

    @field_validator("install_dir", "state_dir")
    @classmethod
    def _dedicated_dir(cls, value: str) -> str:
        # `destroy` deletes the install dir (and the state dir unless kept): never a shared system directory.
        shared = ("/usr/local", "/usr/lib", "/usr/share", "/var/lib", "/var/cache", "/var/log", "/var/tmp")
        if value.count("/") < 2 or value in shared or re.match(r"^/home/[^/]+$", value):
            raise ValueError(f"must be a directory of its own, such as /opt/openclaw-budget (got {value!r})")
        return value

    @field_validator("metrics_file")
    @classmethod
    def _prom(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not value.endswith(".prom"):
            raise ValueError(f"must end in .prom: the node_exporter textfile collector reads only *.prom (got {value!r})")
        return value

    @field_validator("pip_args")
    @classmethod
    def _pip_args(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arg in value:
            if not arg or "\n" in arg or "\x00" in arg:
                raise ValueError(f"each argument must be a non-empty single line (got {arg!r})")
        return value

    @field_validator("sudo", "systemctl")
    @classmethod
    def _command(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return None
        try:
            words = shlex.split(value)
        except ValueError as error:
            raise ValueError(f"cannot be split like a shell command ({error}): {value!r}") from None
        if "\n" in value or (not words and value.strip()):
            raise ValueError(f"must be a single-line command (got {value!r})")
        return value

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

    @model_validator(mode="after")
    def _layout(self) -> "Enforcer":
        problems = []
        if self.run_as == "timer" and self.on_calendar is None:
            problems.append(
                f"intervalSeconds: with runAs 'timer' it must divide a minute, an hour or a day so the timer fires "
                f"evenly (e.g. 10, 30, 60, 300, 3600; got {self.interval_seconds})"
            )
        for key, path in (("flagFile", self.flag_file), ("stateDir", self.state_dir)):
            if _is_within(path, self.install_dir):
                problems.append(f"{key}: {path} is inside installDir {self.install_dir}, which `destroy` deletes")
        if _is_within(self.flag_file, self.state_dir):
            problems.append(
                f"flagFile: {self.flag_file} is inside stateDir {self.state_dir}, which is private to the enforcer "
                "(mode 0700): the gate could not read it"
            )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def on_calendar(self) -> Optional[str]:
        """systemd OnCalendar= spec that fires every ``interval_seconds``, or None if none fires evenly."""
        seconds = self.interval_seconds
        if seconds < 60 and 60 % seconds == 0:
            return f"*-*-* *:*:00/{seconds}"
        if seconds % 60 == 0 and seconds < 3600 and 60 % (seconds // 60) == 0:
            return f"*-*-* *:00/{seconds // 60}:00"
        if seconds == 86_400:
            return "*-*-* 00:00:00"
        if seconds % 3600 == 0 and 24 % (seconds // 3600) == 0:
            return f"*-*-* 00/{seconds // 3600}:00:00"
        return None


# ----------------------------------------------------------------------------------------------- gate


class Gate(_Model):
    """The budget gate plugin, loaded by the gateway from a directory the container mounts."""

    enabled: bool = Field(True, description="Deploy the gate plugin (without it the budget only alerts).")
    plugin_id: str = Field("openclaw-budget-gate", pattern=_PLUGIN_ID.pattern, description="Plugin id.")
    host_dir: Optional[str] = Field(None, description="Where the plugin is copied on the gateway host.")
    block_tool_calls: bool = Field(
        True,
        description="Also refuse the tool calls of runs already in progress while the flag is set, so a "
        "runaway loop inside one run stops too.",
    )

    @field_validator("host_dir")
    @classmethod
    def _host_dir(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else _absolute_posix_path(value)


# --------------------------------------------------------------------------------------------- matrix


class Matrix(_Model):
    """The Matrix room the enforcer reports to."""

    homeserver: AnyHttpUrl = Field(description="Homeserver base URL.")
    room_id: str = Field(description="Room id ('!…'), not an alias; the bot must have joined it.")
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
        flag = self.enforcer.flag_file
        if any(mount.host_path == flag for mount in self.gateway.mounts):
            problems.append(
                f"enforcer.flagFile: {flag} is bind-mounted into the container as a single file; the enforcer "
                "replaces the flag atomically (a new file each time) and creates and deletes it, which a file bind "
                "mount never shows. Mount its directory instead"
            )
        if flag == self.gateway.config_path:
            problems.append(f"enforcer.flagFile: {flag} is the gateway's openclaw.json (gateway.configPath)")
        if self.gate.host_dir is not None and _is_within(flag, self.gate.host_dir):
            problems.append(
                f"enforcer.flagFile: {flag} is inside gate.hostDir {self.gate.host_dir}, which the gate plugin's "
                "deployment replaces; put the flag in its own directory, e.g. <mount hostPath>/budget/"
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
