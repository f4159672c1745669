"""BudgetEnforcer's resource graph under Pulumi mocks: what runs where, in which order, which inputs
re-deploy it, and that the Matrix token only ever travels as a secret."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any, Callable

import pulumi
import pytest

from components.config import StackConfig
from components.enforcer_service import BudgetEnforcer
from components.enforcer_service.commands import install_command, uninstall_command
from components.enforcer_service.envfile import render_env_file
from components.enforcer_service.package import ENFORCER_SOURCE, describe_archive
from components.stack import deploy
from tests.components.enforcer_service.support import fake_token, make_config
from tests.support.pulumi_mocks import (
    FAKE_SECRETS,
    RecordedResource,
    RecordingMocks,
    ResourceTracker,
    plaintext_leaks,
    run_program,
    unwrap_secrets,
)

COMMAND = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
SECRET_SIG = "4dabf18193072939515e22adb298388d"


@pytest.fixture
def options(monkeypatch: pytest.MonkeyPatch) -> dict[str, pulumi.ResourceOptions]:
    """ResourceOptions of every custom resource by name (mocks don't see depends_on and friends)."""
    seen: dict[str, pulumi.ResourceOptions] = {}
    original = pulumi.CustomResource.__init__

    def recording(self: Any, t: str, name: str, props: Any = None, opts: Any = None, *args: Any, **kwargs: Any) -> None:
        seen[name] = opts
        original(self, t, name, props, opts, *args, **kwargs)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", recording)
    return seen


def build(
    resources: ResourceTracker, check: Callable[[BudgetEnforcer], None], cfg: StackConfig | None = None, **kw: Any
) -> pulumi.Output:
    component = BudgetEnforcer("enforcer", cfg or make_config(), **kw)
    return resources.when_registered(lambda: check(component))


def named(mocks: RecordingMocks, name: str) -> RecordedResource:
    return mocks.named(name)


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


@pulumi.runtime.test
def test_three_steps_on_the_enforcer_host(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check(component: BudgetEnforcer) -> None:
        assert [(r.typ, r.name) for r in pulumi_mocks.resources if r.custom] == [
            (COMMAND, "enforcer-upload-dir"),
            (COPY, "enforcer-package"),
            (COMMAND, "enforcer-install"),
        ]
        for resource in pulumi_mocks.resources:
            if resource.custom:
                assert is_secret(resource.inputs["connection"]), "the whole connection is a secret"
                connection = unwrap_secrets(resource.inputs["connection"])
                assert connection["host"] == "192.168.1.100", resource.name
                assert connection["user"] == "sam"
                assert connection["port"] == 22
                assert connection["privateKey"] == FAKE_SECRETS["privateKey"]

    return build(resources, check)


@pulumi.runtime.test
def test_children_order_and_replacement(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, options: dict[str, pulumi.ResourceOptions]
) -> pulumi.Output:
    def check(component: BudgetEnforcer) -> None:
        for name in ("enforcer-upload-dir", "enforcer-package", "enforcer-install"):
            assert options[name].parent is component, name
        (upload_dir,) = options["enforcer-package"].depends_on
        assert upload_dir._name == "enforcer-upload-dir"  # type: ignore[attr-defined]
        (upload,) = options["enforcer-install"].depends_on
        assert upload._name == "enforcer-package"  # type: ignore[attr-defined]
        # Replaced only when it moves; then the old place is uninstalled *before* the new install.
        assert options["enforcer-install"].delete_before_replace is True
        assert "stdin" in options["enforcer-install"].additional_secret_outputs
        install = named(pulumi_mocks, "enforcer-install").inputs
        assert install["triggers"] == [
            "192.168.1.100",
            22,
            "/",
            "/opt/openclaw-budget",
            "/var/lib/openclaw-budget",
            "/home/sam/moltbot-infra/clawdbot-config/budget/openclaw-budget-exceeded",
        ]

    return build(resources, check)


@pulumi.runtime.test
def test_install_create_update_delete(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    cfg = make_config()

    def check(component: BudgetEnforcer) -> None:
        install = named(pulumi_mocks, "enforcer-install").inputs
        expected = install_command(cfg, describe_archive())
        assert install["create"] == expected
        assert install["update"] == expected, "code or settings changes re-run the idempotent install in place"
        assert install["delete"] == uninstall_command(cfg)
        upload_dir = named(pulumi_mocks, "enforcer-upload-dir").inputs
        assert ".openclaw-usage/enforcer-upload" in upload_dir["create"]
        assert upload_dir["delete"].startswith('rm -rf "$HOME"/.openclaw-usage/enforcer-upload')

    return build(resources, check, cfg)


@pulumi.runtime.test
def test_package_asset_and_its_hash(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check(component: BudgetEnforcer) -> None:
        copy = named(pulumi_mocks, "enforcer-package").inputs
        source = copy["source"]
        assert isinstance(source, pulumi.FileAsset)
        digest = hashlib.sha256(Path(source.path).read_bytes()).hexdigest()
        assert digest == describe_archive(ENFORCER_SOURCE).sha256 == component.package_sha256
        assert copy["triggers"] == [digest]
        assert copy["remotePath"] == ".openclaw-usage/enforcer-upload/enforcer.tar"
        assert f"PACKAGE_SHA256={digest}" in named(pulumi_mocks, "enforcer-install").inputs["create"]

    return build(resources, check)


@pulumi.runtime.test
def test_a_package_change_redeploys(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, tmp_path: Path
) -> pulumi.Output:
    changed = tmp_path / "enforcer"
    shutil.copytree(ENFORCER_SOURCE, changed, ignore=shutil.ignore_patterns("__pycache__"))
    with open(changed / "runner.py", "a") as handle:
        handle.write("\n# a change\n")
    original = describe_archive(ENFORCER_SOURCE).sha256

    def check(component: BudgetEnforcer) -> None:
        new = describe_archive(changed).sha256
        assert new != original
        copy = named(pulumi_mocks, "enforcer-package").inputs
        assert copy["triggers"] == [new], "a new package is uploaded again"
        assert hashlib.sha256(Path(copy["source"].path).read_bytes()).hexdigest() == new
        install = named(pulumi_mocks, "enforcer-install").inputs
        assert f"PACKAGE_SHA256={new}" in install["create"], "the install's input changes, so it runs again"
        assert new not in install["triggers"], "...as an update, not a replacement (which would uninstall last)"

    return build(resources, check, package_source=changed)


@pulumi.runtime.test
def test_token_only_as_a_secret(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    cfg = make_config()

    def check(component: BudgetEnforcer) -> None:
        install = named(pulumi_mocks, "enforcer-install").inputs
        assert is_secret(install["stdin"])
        assert unwrap_secrets(install["stdin"]) == render_env_file(cfg, fake_token())
        for resource in pulumi_mocks.resources:
            leaks = plaintext_leaks(resource.inputs, list(FAKE_SECRETS.values()))
            assert not leaks, f"{resource.name}: secret in plaintext at {leaks}"

    return build(resources, check, cfg)


@pulumi.runtime.test
def test_component_says_where_the_flag_is(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check(component: BudgetEnforcer) -> None:
        assert component.unit_names == ["openclaw-budget-enforcer.service"]
        assert component.flag_host == "muletto"
        assert component.flag_file == "/home/sam/moltbot-infra/clawdbot-config/budget/openclaw-budget-exceeded"
        assert component.gate_flag_path == "/home/node/.openclaw/budget/openclaw-budget-exceeded"

    return build(resources, check)


@pulumi.runtime.test
def test_timer_mode_units(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    def check(component: BudgetEnforcer) -> None:
        assert component.unit_names == ["openclaw-budget-enforcer.service", "openclaw-budget-enforcer.timer"]

    return build(resources, check, make_config({"runAs": "timer", "intervalSeconds": 300}))


@pulumi.runtime.test
def test_the_program_deploys_it_on_the_gateway_host(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, workstation_config: tuple
) -> pulumi.Output:
    run_program()  # the real __main__.py with the reference stack

    def check() -> None:
        enforcer = [r for r in pulumi_mocks.resources if r.typ == "openclaw-usage:enforcer:BudgetEnforcer"]
        assert [r.name for r in enforcer] == ["enforcer"]
        install = named(pulumi_mocks, "enforcer-install").inputs
        assert unwrap_secrets(install["connection"])["host"] == "192.168.1.100"
        assert not plaintext_leaks(install, list(FAKE_SECRETS.values()))

    return resources.when_registered(check)


@pulumi.runtime.test
def test_deploy_exports_enforcer_units(pulumi_mocks: RecordingMocks, resources: ResourceTracker) -> pulumi.Output:
    cfg = make_config()
    stack_outputs = deploy(cfg)

    def check() -> None:
        assert stack_outputs["enforcerUnits"] == ["openclaw-budget-enforcer.service"]
        assert not plaintext_leaks(stack_outputs, list(FAKE_SECRETS.values()))
        assert fake_token() not in repr(stack_outputs)

    return resources.when_registered(check)
