"""Shared fixtures: every test runs with fresh Pulumi mocks, so no test can reach a real engine."""
from __future__ import annotations

import pulumi
import pytest

from tests.support.pulumi_mocks import (
    PROJECT,
    STACK,
    RecordingMocks,
    ResourceTracker,
    set_config,
    stack_file_config,
)


@pytest.fixture(autouse=True)
def pulumi_mocks() -> RecordingMocks:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=STACK, preview=False)
    return mocks


@pytest.fixture
def workstation_config() -> tuple[dict, list]:
    """The reference stack's config with fake secrets, installed for the Pulumi program."""
    config, secret_keys = stack_file_config("workstation")
    set_config(config, secret_keys)
    return config, secret_keys


@pytest.fixture(autouse=True)
def resources(monkeypatch: pytest.MonkeyPatch) -> ResourceTracker:
    """Every resource the test creates; ``resources.when_registered(check)`` to assert on the whole graph."""
    tracker = ResourceTracker()
    tracker.install(monkeypatch)
    return tracker
