"""Enforcer service component: ships the enforcer package to its host and runs it under systemd.

Resources, all over SSH on ``enforcer.host`` (children of :class:`BudgetEnforcer`):

1. ``<name>-upload-dir`` (remote.Command, as the SSH user): a private ``~/.openclaw-usage/enforcer-upload``;
2. ``<name>-package`` (remote.CopyToRemote): the ``enforcer/`` package of this repository, as a
   deterministic tar (``package.py``), uploaded there; its sha256 is a trigger, so a change of the
   package's content uploads it again;
3. ``<name>-install`` (remote.Command, as root through ``enforcer.sudo``): the install script
   (``commands.py``), with the environment file (Matrix token included) on its stdin, a Pulumi secret.
   The script names the package's sha256, so a new package is an *update* that re-runs the idempotent
   install, which verifies the upload against that hash and restarts the service.  Its delete is the
   uninstall script.

The install is updated in place, never replaced, for code or settings changes: a replacement would run the
old resource's delete (the uninstall) *after* the new install.  Only a change of *where* it lives (host,
root, install/state dir, flag file) replaces it, deleting first, so the old place is cleaned up and never
left with an enforcer running on its own.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

import pulumi
from pulumi_command import remote

from components.config import StackConfig
from components.enforcer_service.commands import (
    install_command,
    render_scripts,
    render_wrapper,
    uninstall_command,
    upload_dir_cleanup_command,
    upload_dir_command,
)
from components.enforcer_service.envfile import render_env_file, render_masked_env_file
from components.enforcer_service.layout import ENV_FILE, UPLOAD_PATH_FROM_HOME, layout, unit_names
from components.enforcer_service.package import ENFORCER_SOURCE, build_archive, describe_archive
from components.enforcer_service.units import unit_paths
from components.hosts import connection_args

#: Folder (in the host's render folder) for the scripts the deployment runs; they are not host files.
COMMANDS_DIR = "_commands"


def _host_rel(root_dir: str, path: str) -> str:
    """Path of a host file inside the host's render folder (under ``root_dir`` when sandboxed)."""
    return posixpath.join(root_dir, path.lstrip("/")).lstrip("/")


def render_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Files this component puts on hosts: ``{host name: {relative path: content}}``, secrets masked.

    The units under their real names, the environment file with the Matrix token masked, the operator
    wrapper, and (under ``_commands/``) the install and uninstall scripts the deployment runs.
    """
    root = cfg.enforcer.root_dir
    files = {_host_rel(root, path): text for path, text in unit_paths(cfg).items()}
    files[_host_rel(root, ENV_FILE)] = render_masked_env_file(cfg)
    files[_host_rel(root, layout(cfg).wrapper)] = render_wrapper(cfg)
    for name, text in render_scripts(cfg, describe_archive()).items():
        files[f"{COMMANDS_DIR}/enforcer-{name}"] = text
    return {cfg.enforcer.host: files}


class BudgetEnforcer(pulumi.ComponentResource):
    """The budget enforcer under systemd on ``enforcer.host`` (see the module docstring).

    Attributes: ``unit_names`` (unit file names, the enabled one last), ``flag_host`` and ``flag_file``
    (the flag on that host), ``gate_flag_path`` (the same file inside the gateway container),
    ``package_sha256``, and ``install_log`` (the install's stdout: what it changed).
    """

    def __init__(
        self,
        name: str,
        cfg: StackConfig,
        opts: pulumi.ResourceOptions | None = None,
        *,
        package_source: Path = ENFORCER_SOURCE,
    ):
        super().__init__("openclaw-usage:enforcer:BudgetEnforcer", name, None, opts)
        enforcer = cfg.enforcer
        host = cfg.hosts[enforcer.host]
        connection = connection_args(host)
        package = build_archive(package_source)
        if cfg.matrix.access_token is None:  # the config model requires it; keep the type checker honest
            raise ValueError("matrix.accessToken: missing")
        matrix_token = cfg.matrix.access_token.get_secret_value()

        upload_dir = remote.Command(
            f"{name}-upload-dir",
            connection=connection,
            create=upload_dir_command(),
            delete=upload_dir_cleanup_command(),
            triggers=[host.address, host.port],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        upload = remote.CopyToRemote(
            f"{name}-package",
            connection=connection,
            source=pulumi.FileAsset(str(package.path)),
            # Relative to the SFTP session's directory: the SSH user's home (OpenSSH chdirs there), the
            # same "$HOME" the install command expands, so no command output is needed to name it.
            remote_path=UPLOAD_PATH_FROM_HOME,
            triggers=[package.sha256],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[upload_dir]),
        )
        env_file = pulumi.Output.secret(matrix_token).apply(lambda token: render_env_file(cfg, token))
        install = install_command(cfg, package)
        installed = remote.Command(
            f"{name}-install",
            connection=connection,
            create=install,
            update=install,
            delete=uninstall_command(cfg),
            stdin=env_file,
            triggers=[
                host.address,
                host.port,
                enforcer.root_dir,
                enforcer.install_dir,
                enforcer.state_dir,
                enforcer.flag_file,
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[upload],
                delete_before_replace=True,
                additional_secret_outputs=["stdin"],
            ),
        )

        self.unit_names: list[str] = unit_names(cfg)
        self.flag_host: str = enforcer.host
        self.flag_file: str = enforcer.flag_file
        self.gate_flag_path: str = cfg.gate_flag_path
        self.package_sha256: str = package.sha256
        self.install_log: pulumi.Output[str] = installed.stdout
        self.register_outputs(
            {
                "unitNames": self.unit_names,
                "flagHost": self.flag_host,
                "flagFile": self.flag_file,
                "packageSha256": self.package_sha256,
            }
        )
