"""Gateway component: patches openclaw.json on the gateway host and deploys the budget-gate plugin.

Resources, all over SSH on ``gateway.host`` (children of :class:`GatewayConfig`):

1. ``<name>-work-dir`` (remote.Command): the private ``gateway.workDir`` (tool, spec, state, backups);
2. ``<name>-tool-*`` (remote.CopyToRemote): ``openclaw_patch.py`` and the pure-Python ``json5`` package
   it imports (with json5's licence), one file each;
3. with the gate enabled: ``<name>-gate-stage`` (fresh upload dir), ``<name>-gate-files``
   (remote.CopyToRemote of ``budget_gate/``), ``<name>-gate-install`` (chmod, since SFTP keeps no modes,
   and an atomic swap into ``gate.hostDir``; its delete removes the plugin directory);
4. ``<name>-apply`` (remote.Command): the patch spec on stdin (a Pulumi secret when it holds the OTLP
   bearer token), ``openclaw_patch.py apply`` on create and update, ``openclaw_patch.py revert`` on delete.

Content hashes of the tool and of the plugin are part of the commands' text, so new code is an *update*
that runs them again, never a replacement: a replacement would run the old resource's delete (revert)
*after* the new apply.  Only a change of *where* the patch applies (host, config path, work dir) replaces
the apply command, deleting first, so the old place is reverted before the new one is patched.
"""
from __future__ import annotations

import pulumi
from pulumi_command import remote

from components.config import StackConfig
from components.gateway import commands
from components.gateway.host_files import (
    GATE_SOURCE,
    SPEC_FILE,
    gate_sha256,
    sftp_path,
    tool_files,
    tools_sha256,
    work_path,
)
from components.gateway.spec import masked_patch_spec, render_patch_spec, spec_is_secret, spec_json
from components.hosts import connection_args

#: Folder (in the host's render folder) for the scripts the deployment runs; they are not host files.
COMMANDS_DIR = "_commands"


def render_files(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """Files this component puts on hosts: ``{host name: {relative path: content}}``, secrets masked.

    ``openclaw-patch.json`` is the spec the tool applies (OTLP header values masked); ``_commands/`` holds
    the scripts ``pulumi up`` and ``pulumi destroy`` run on the gateway host.
    """
    files = {
        SPEC_FILE: spec_json(masked_patch_spec(render_patch_spec(cfg))),
        f"{COMMANDS_DIR}/gateway-work-dir.sh": commands.tools_dir_command(cfg),
        f"{COMMANDS_DIR}/gateway-apply.sh": commands.apply_command(cfg, tools_sha256()),
        f"{COMMANDS_DIR}/gateway-revert.sh": commands.revert_command(cfg),
    }
    if cfg.gate.enabled:
        digest = gate_sha256()
        files[f"{COMMANDS_DIR}/gateway-gate-stage.sh"] = commands.gate_stage_command(cfg, digest)
        files[f"{COMMANDS_DIR}/gateway-gate-install.sh"] = commands.gate_install_command(
            cfg, digest, GATE_SOURCE.name
        )
        files[f"{COMMANDS_DIR}/gateway-gate-remove.sh"] = commands.gate_remove_command(cfg)
    return {cfg.gateway.host: files}


class GatewayConfig(pulumi.ComponentResource):
    """The gateway's openclaw.json patched and the budget gate deployed (see the module docstring).

    Attributes: ``apply_log`` (the apply's stdout: what it changed and what it verified; secrets masked),
    ``spec_masked`` (the spec as JSON, header values masked), ``tools_sha256`` and ``gate_sha256``.
    """

    def __init__(self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("openclaw-usage:gateway:GatewayConfig", name, None, opts)
        gateway = cfg.gateway
        host = cfg.hosts[gateway.host]
        connection = connection_args(host)
        child = pulumi.ResourceOptions(parent=self)

        work_dir = remote.Command(
            f"{name}-work-dir",
            connection=connection,
            create=commands.tools_dir_command(cfg),
            triggers=[host.address, host.port, gateway.work_dir],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        copies: list[pulumi.Resource] = []
        for shipped in tool_files():
            copies.append(
                remote.CopyToRemote(
                    f"{name}-tool-{shipped.target.replace('/', '-')}",
                    connection=connection,
                    source=pulumi.FileAsset(str(shipped.source)),
                    remote_path=sftp_path(work_path(cfg, shipped.target)),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[work_dir]),
                )
            )

        self.gate_sha256: str | None = None
        if cfg.gate.enabled:
            digest = gate_sha256()
            self.gate_sha256 = digest
            stage = remote.Command(
                f"{name}-gate-stage",
                connection=connection,
                create=commands.gate_stage_command(cfg, digest),
                opts=child,
            )
            upload = remote.CopyToRemote(
                f"{name}-gate-files",
                connection=connection,
                # No trailing slash: the directory arrives as <upload dir>/budget_gate whatever exists there.
                source=pulumi.FileArchive(str(GATE_SOURCE)),
                remote_path=commands.gate_upload_dir(cfg),
                triggers=[digest],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[stage]),
            )
            install_gate = remote.Command(
                f"{name}-gate-install",
                connection=connection,
                create=commands.gate_install_command(cfg, digest, GATE_SOURCE.name),
                delete=commands.gate_remove_command(cfg),
                triggers=[host.address, host.port, cfg.gate.host_dir],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[upload], delete_before_replace=True),
            )
            copies.append(install_gate)

        spec = render_patch_spec(cfg)
        spec_text = spec_json(spec)
        stdin: pulumi.Input[str] = pulumi.Output.secret(spec_text) if spec_is_secret(cfg) else spec_text
        apply = commands.apply_command(cfg, tools_sha256())
        applied = remote.Command(
            f"{name}-apply",
            connection=connection,
            create=apply,
            update=apply,
            delete=commands.revert_command(cfg),
            stdin=stdin,
            triggers=[host.address, host.port, host.user, gateway.config_path, gateway.work_dir],
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=copies,
                delete_before_replace=True,
                additional_secret_outputs=["stdin"] if spec_is_secret(cfg) else None,
            ),
        )

        self.tools_sha256: str = tools_sha256()
        self.spec_masked: str = spec_json(masked_patch_spec(spec))
        self.apply_log: pulumi.Output[str] = applied.stdout
        self.register_outputs(
            {
                "configPath": gateway.config_path,
                "toolsSha256": self.tools_sha256,
                "gateSha256": self.gate_sha256,
                "specMasked": self.spec_masked,
            }
        )

