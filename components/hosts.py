"""SSH connections to the stack's hosts, built once from the typed config."""
from __future__ import annotations

import pulumi
from pulumi_command import remote

from components.config import Host


def connection_args(host: Host) -> remote.ConnectionArgs:
    """pulumi-command connection for ``host``; the private key only ever travels as a Pulumi secret."""
    return remote.ConnectionArgs(
        host=host.address,
        port=host.port,
        user=host.user,
        private_key=(
            pulumi.Output.secret(host.private_key.get_secret_value()) if host.private_key is not None else None
        ),
        host_key=host.host_key,
        # Fail fast instead of retrying a dead host for minutes.
        dial_error_limit=3,
    )
