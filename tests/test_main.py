"""The real ``__main__.py`` wiring, run under Pulumi mocks with the reference stack's config."""
from __future__ import annotations

import json

import pulumi
import pytest

from components.config import load_from_pulumi
from components.stack import deploy
from enforcer.prometheus import spend_query
from enforcer.settings import DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES
from tests.support.pulumi_mocks import (
    FAKE_SECRETS,
    PROJECT,
    RecordingMocks,
    ResourceTracker,
    plaintext_leaks,
    run_program,
    set_config,
    stack_file_config,
)

COMPONENT_TYPES = {
    "openclaw-usage:collector:OtelCollector",
    "openclaw-usage:enforcer:BudgetEnforcer",
    "openclaw-usage:gateway:GatewayConfig",
}


@pulumi.runtime.test
def test_program_builds_every_component(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, workstation_config: tuple
) -> pulumi.Output:
    run_program()

    def check() -> None:
        types = {r.typ for r in pulumi_mocks.resources}
        assert COMPONENT_TYPES <= types, f"missing components: {COMPONENT_TYPES - types}"

    return resources.when_registered(check)


@pulumi.runtime.test
def test_no_resource_input_carries_a_secret_in_plaintext(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker, workstation_config: tuple
) -> pulumi.Output:
    run_program()

    def check() -> None:
        for resource in pulumi_mocks.resources:
            leaks = plaintext_leaks(resource.inputs, list(FAKE_SECRETS.values()))
            assert not leaks, f"{resource.typ} {resource.name}: secret in plaintext at {leaks}"

    return resources.when_registered(check)


def test_bad_config_stops_the_program_before_any_resource(pulumi_mocks: RecordingMocks) -> None:
    config, secret_keys = stack_file_config("workstation")
    enforcer = json.loads(config[f"{PROJECT}:enforcer"])
    enforcer["dailyCapUsd"] = -1
    enforcer["timezone"] = "Europe/Roma"
    config[f"{PROJECT}:enforcer"] = json.dumps(enforcer)
    set_config(config, secret_keys)
    with pytest.raises(pulumi.RunError) as caught:
        run_program()
    message = str(caught.value)
    assert "enforcer.dailyCapUsd: Input should be greater than 0 (got -1)" in message
    assert "enforcer.timezone: unknown time zone 'Europe/Roma'" in message
    assert pulumi_mocks.resources == []


def test_secret_set_without_secret_flag_is_rejected(pulumi_mocks: RecordingMocks) -> None:
    config, secret_keys = stack_file_config("workstation")
    set_config(config, [k for k in secret_keys if not k.endswith(":matrix")])
    with pytest.raises(pulumi.RunError, match=r"matrix\.accessToken: must be a secret"):
        run_program()
    assert pulumi_mocks.resources == []


@pulumi.runtime.test
def test_stack_outputs_say_where_things_are(workstation_config: tuple, resources: ResourceTracker) -> pulumi.Output:
    outputs = deploy(load_from_pulumi())

    def check() -> None:
        assert outputs["otlpEndpoint"] == "http://192.168.1.111:4318"
        # the enforcer's own query, not a look-alike
        assert outputs["spendPromql"]["last24h"] == spend_query(DEFAULT_COST_NAMES, 86400)
        assert outputs["spendPromql"]["last24hByModel"] == spend_query(DEFAULT_BY_MODEL_NAMES, 86400)
        # the workstation budget is a calendar day: the output says how the enforcer's window differs
        assert "seconds since midnight in " + outputs["budget"]["timezone"] in outputs["spendPromql"]["note"]
        template = outputs["spendPromql"]["calendarDay"]
        assert "<W>s" in template and "<W+900>s" in template and "987654321" not in template
        assert template.replace("<W+900>s", "4500s").replace("<W>s", "3600s") == spend_query(DEFAULT_COST_NAMES, 3600)
        assert outputs["flagFile"] == {
            "host": "muletto",
            "hostPath": "/home/sam/moltbot-infra/clawdbot-config/budget/openclaw-budget-exceeded",
            "gatewayContainerPath": "/home/node/.openclaw/budget/openclaw-budget-exceeded",
        }
        assert outputs["budget"]["dailyCapUsd"] == 5.0
        assert not plaintext_leaks(json.loads(json.dumps(outputs, default=str)), list(FAKE_SECRETS.values()))

    return resources.when_registered(check)


@pulumi.runtime.test
def test_existing_collector_mode_outputs_the_snippet_and_creates_no_container(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    config, secret_keys = stack_file_config("demo")
    set_config(config, secret_keys)
    outputs = deploy(load_from_pulumi())

    def check() -> None:
        assert "otlp" in outputs["collectorSnippet"]
        assert "prometheusScrapeConfig" not in outputs
        assert not pulumi_mocks.by_type("docker:index/container:Container")

    return resources.when_registered(check)


@pulumi.runtime.test
def test_bearer_token_never_travels_in_plaintext(
    pulumi_mocks: RecordingMocks, resources: ResourceTracker
) -> pulumi.Output:
    config, secret_keys = stack_file_config("workstation")
    otlp = json.loads(config[f"{PROJECT}:otlp"])
    otlp["bearerToken"] = FAKE_SECRETS["bearerToken"]
    config[f"{PROJECT}:otlp"] = json.dumps(otlp)
    set_config(config, secret_keys + [f"{PROJECT}:otlp"])
    run_program()

    def check() -> None:
        assert pulumi_mocks.by_type("docker:index/container:Container"), "no collector container"
        for resource in pulumi_mocks.resources:
            leaks = plaintext_leaks(resource.inputs, list(FAKE_SECRETS.values()))
            assert not leaks, f"{resource.typ} {resource.name}: secret in plaintext at {leaks}"

    return resources.when_registered(check)
