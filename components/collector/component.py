"""The collector component: a pinned OpenTelemetry Collector container on the collector host.

Creates, on the collector host's Docker daemon: a named bridge network, the pinned contrib image, and the
container (config uploaded into it, ports published on ``collector.bindAddress``).  With
``collector.deployChecks`` it also runs, on that host at ``pulumi up``, the remote-write check (before the
container) and the health probe (after it).  Mode ``existing`` creates nothing and only exposes the snippet
to add to the collector that already runs.
"""
from __future__ import annotations

import hashlib
import shlex
from pathlib import Path
from typing import Optional

import pulumi
import pulumi_docker as docker
from pulumi_command import local, remote

from components.collector import render
from components.config import StackConfig
from components.hosts import connection_args

#: The host-side probe script, piped to ``python3 -`` on the collector host.
PROBE_SOURCE = (Path(__file__).parent / "probe.py").read_text(encoding="utf-8")

#: json-file log rotation: at most 3 × 10 MB of collector logs on the host.
LOG_OPTS = {"max-size": "10m", "max-file": "3"}

#: How long ``pulumi up`` waits for the collector's health_check endpoint.
HEALTH_TIMEOUT_SECONDS = 60

#: Aliases of the collector on its own network.
NETWORK_ALIASES = ["otel-collector"]


def docker_host_url(cfg: StackConfig) -> str:
    """The collector host's Docker daemon: the explicit ``dockerHost``, else ``ssh://user@address:port``."""
    collector = cfg.collector
    if collector.docker_host:
        return collector.docker_host
    host = cfg.hosts[collector.host or ""]
    return f"ssh://{host.user}@{host.address}:{host.port}"


def runs_locally(cfg: StackConfig) -> bool:
    """True when Pulumi runs on the collector host itself (a local Docker socket): checks run locally too."""
    return docker_host_url(cfg).startswith("unix://")


def published_ports(cfg: StackConfig) -> list[dict[str, object]]:
    """Container ports and where they are published (``ContainerPortArgs`` fields)."""
    collector = cfg.collector
    ip = collector.bind_address
    ports = [
        {"internal": render.OTLP_HTTP_PORT, "external": collector.otlp_port, "ip": ip, "protocol": "tcp"},
        {"internal": render.HEALTH_PORT, "external": collector.health_port, "ip": ip, "protocol": "tcp"},
    ]
    if collector.mode == "scrape":
        ports.append({"internal": render.EXPORTER_PORT, "external": collector.scrape_port, "ip": ip, "protocol": "tcp"})
    if collector.self_metrics_port is not None:
        ports.append(
            {"internal": render.SELF_METRICS_PORT, "external": collector.self_metrics_port, "ip": ip, "protocol": "tcp"}
        )
    return ports


_NEED_PYTHON = (
    "command -v python3 >/dev/null 2>&1 || { echo 'python3 is needed on the collector host for the deploy "
    "checks (or set collector.deployChecks: false)' >&2; exit 1; }"
)
# The probe source arrives on stdin; saved once so several probes can run.
_SAVE_PROBE = "probe=$(mktemp) || exit 1\ntrap 'rm -f \"$probe\"' EXIT\ncat > \"$probe\""
# The address `host-gateway` maps to: the default bridge's IPv4 gateway (unless dockerd sets host-gateway-ip).
_DOCKER_GATEWAY = (
    "gw=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}} {{end}}' 2>/dev/null "
    "| tr ' ' '\\n' | grep -E '^[0-9.]+$' | head -n 1)"
)


def _probe(args: list[str]) -> str:
    return 'python3 "$probe" ' + " ".join(shlex.quote(a) for a in args)


def probe_script(lines: list[str]) -> str:
    """A POSIX sh script running probes; pulumi-command feeds it :data:`PROBE_SOURCE` on stdin."""
    return "\n".join([_NEED_PYTHON, _SAVE_PROBE, *lines]) + "\n"


def health_check_command(cfg: StackConfig) -> str:
    """Wait for the collector's health_check endpoint; on failure show the container's last log lines."""
    name = shlex.quote(cfg.collector.container_name)
    logs = f"echo '--- last log lines of '{name}':' >&2; docker logs --tail 40 {name} >&2 2>&1 || true"
    probe = _probe(["health", render.health_url(cfg), "--timeout", str(HEALTH_TIMEOUT_SECONDS)])
    return probe_script([f"{probe} || {{ {logs}; exit 1; }}"])


def remote_write_check_command(cfg: StackConfig) -> Optional[str]:
    """Check that Prometheus accepts remote write, as the host sees it and, via host-gateway, as the container will.

    A Prometheus on the host's loopback passes the first probe even when it listens on 127.0.0.1 only, which
    the container can't reach: the second probe goes to the Docker host gateway, where the container's
    ``host.docker.internal`` points.
    """
    url = render.prometheus_host_url(cfg)
    prometheus_url = cfg.collector.prometheus_url
    if cfg.collector.mode != "remote-write" or url is None or prometheus_url is None:
        return None
    lines = [f"{_probe(['remote-write', url])} || exit 1"]
    if render.uses_host_gateway(cfg):
        path = (prometheus_url.path or "").rstrip("/")
        via_gateway = shlex.quote(f"{prometheus_url.scheme}://") + '"$gw"' + shlex.quote(f":{prometheus_url.port}{path}")
        advice = (
            f"The collector container reaches Prometheus as {render.HOST_GATEWAY_NAME} = $gw (the Docker host "
            f"gateway) and gets no remote-write answer there: make Prometheus listen on 0.0.0.0:{prometheus_url.port}"
            ", or set collector.prometheusContainerUrl (e.g. the host's LAN address), or prometheusNetwork."
        )
        lines += [
            _DOCKER_GATEWAY,
            'if [ -z "$gw" ]; then',
            "  echo 'warning: Docker bridge gateway not found; skipped the check from the container side' >&2",
            "else",
            f'  {_probe(["remote-write"])} {via_gateway} || {{ echo "{advice}" >&2; exit 1; }}',
            "fi",
        ]
    return probe_script(lines)


class OtelCollector(pulumi.ComponentResource):
    """A pinned OpenTelemetry Collector (contrib) container receiving the gateway's OTLP/HTTP metrics.

    Attributes consumers use: ``otlp_endpoint`` (where the gateway exports), ``scrape_snippet`` (mode
    ``scrape``: the Prometheus job), ``existing_snippet`` (mode ``existing``: what to add to the running
    collector), ``config_yaml`` (the uploaded config), ``container`` (None in mode ``existing``).
    """

    def __init__(self, name: str, cfg: StackConfig, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("openclaw-usage:collector:OtelCollector", name, None, opts)
        collector = cfg.collector
        self.mode = collector.mode
        self.otlp_endpoint: str = cfg.otlp_endpoint
        self.scrape_snippet: Optional[str] = render.render_scrape_snippet(cfg) if collector.mode == "scrape" else None
        self.existing_snippet: Optional[str] = (
            render.render_existing_snippet(cfg) if collector.mode == "existing" else None
        )
        self.config_yaml: Optional[str] = None
        self.container: Optional[docker.Container] = None
        self.health_url: Optional[str] = None

        if collector.mode != "existing":
            self._deploy(name, cfg)

        self.register_outputs(
            {
                "otlpEndpoint": self.otlp_endpoint,
                "scrapeSnippet": self.scrape_snippet,
                "existingSnippet": self.existing_snippet,
            }
        )

    def _deploy(self, name: str, cfg: StackConfig) -> None:
        collector = cfg.collector
        child = pulumi.ResourceOptions(parent=self)
        provider = docker.Provider(
            f"{name}-docker",
            host=docker_host_url(cfg),
            # Over ssh:// the Docker CLI's helper runs the local `ssh`: never prompt, fail fast.
            ssh_opts=None if runs_locally(cfg) else ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15"],
            opts=child,
        )
        on_host = pulumi.ResourceOptions(parent=self, provider=provider)

        network = docker.Network(f"{name}-network", name=collector.network_name, driver="bridge", opts=on_host)
        image = docker.RemoteImage(
            f"{name}-image",
            name=f"{collector.image}:{collector.version}",
            # Keep the image when the container is replaced: a config change must not re-pull it.
            keep_locally=True,
            opts=on_host,
        )

        checks_before: list[pulumi.Resource] = []
        write_check = remote_write_check_command(cfg) if collector.deploy_checks else None
        if write_check is not None:
            checks_before.append(
                self._host_command(
                    f"{name}-remote-write-check",
                    cfg,
                    write_check,
                    triggers=[render.prometheus_host_url(cfg)],
                    depends_on=[],
                )
            )

        self.config_yaml = render.render_collector_config(cfg)
        memory = render.memory_limits(cfg)
        envs: list[pulumi.Input[str]] = [f"GOMEMLIMIT={memory['gomemlimit_mib']}MiB"]
        if cfg.otlp.bearer_token is not None:
            # The token reaches the container only as a Pulumi secret; the config references the variable.
            envs.append(
                pulumi.Output.secret(f"{render.BEARER_TOKEN_ENV}={cfg.otlp.bearer_token.get_secret_value()}")
            )
        networks = [docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=NETWORK_ALIASES)]
        if collector.prometheus_network:
            # Joined, not created: that network belongs to the Prometheus deployment.
            networks.append(docker.ContainerNetworksAdvancedArgs(name=collector.prometheus_network))
        extra_hosts = (
            [docker.ContainerHostArgs(host=render.HOST_GATEWAY_NAME, ip="host-gateway")]
            if render.uses_host_gateway(cfg)
            else None
        )
        config_digest = hashlib.sha256(self.config_yaml.encode("utf-8")).hexdigest()

        self.container = docker.Container(
            f"{name}-container",
            name=collector.container_name,
            image=image.image_id,
            command=[f"--config={render.CONFIG_PATH}"],
            envs=envs,
            restart="unless-stopped",
            must_run=True,
            memory=memory["container_mib"],
            # Equal to memory: no swap, so the limit is a real limit.
            memory_swap=memory["container_mib"],
            log_driver="json-file",
            log_opts=LOG_OPTS,
            ports=[docker.ContainerPortArgs(**port) for port in published_ports(cfg)],
            networks_advanced=networks,
            hosts=extra_hosts,
            # Uploaded before start; any change of content replaces the container.
            uploads=[docker.ContainerUploadArgs(file=render.CONFIG_PATH, content=self.config_yaml, permissions="0644")],
            labels=[
                docker.ContainerLabelArgs(label="org.openclaw-usage.component", value="otel-collector"),
                docker.ContainerLabelArgs(label="org.openclaw-usage.config-sha256", value=config_digest),
            ],
            destroy_grace_seconds=15,
            opts=pulumi.ResourceOptions.merge(
                on_host,
                pulumi.ResourceOptions(
                    depends_on=checks_before,
                    # Same name and host ports: the old container must go before its replacement starts.
                    delete_before_replace=True,
                ),
            ),
        )

        self.health_url = render.health_url(cfg)
        if collector.deploy_checks:
            self._host_command(
                f"{name}-health-check",
                cfg,
                health_check_command(cfg),
                # Re-probe whenever the container is replaced (new config, new image).
                triggers=[self.container.id],
                depends_on=[self.container],
            )

    def _host_command(
        self,
        name: str,
        cfg: StackConfig,
        command: str,
        triggers: list[pulumi.Input[object]],
        depends_on: list[pulumi.Resource],
    ) -> pulumi.Resource:
        """Run ``command`` (probe source on stdin) on the collector host: locally or over SSH."""
        opts = pulumi.ResourceOptions(parent=self, depends_on=depends_on)
        if runs_locally(cfg):
            return local.Command(name, create=command, stdin=PROBE_SOURCE, triggers=triggers, opts=opts)
        host = cfg.hosts[cfg.collector.host or ""]
        return remote.Command(
            name,
            connection=connection_args(host),
            create=command,
            stdin=PROBE_SOURCE,
            triggers=triggers,
            opts=opts,
        )
