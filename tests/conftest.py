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


@pytest.fixture(scope="session", autouse=True)
def no_gateway_outlives_the_tests(tmp_path_factory: pytest.TempPathFactory):
    """Tests stop the services they start. An OpenClaw gateway that restarted itself runs on in a session of
    its own, so a leak is easy to miss: at the end, any process still using a state dir of this run is an
    error (and is stopped)."""
    yield
    from tests.support.openclaw_gateway import command_line, processes_with_env, terminate

    pids = processes_with_env("OPENCLAW_STATE_DIR", str(tmp_path_factory.getbasetemp()), prefix=True)
    leaked = [(pid, command_line(pid)) for pid in pids]
    terminate(pids, 10)
    assert not leaked, f"processes outlived the tests (stopped now): {leaked}"
