"""Fixtures of the enforcer-deployment tests; ``sshd_server`` comes from tests/support/sshd.py."""
from __future__ import annotations

from typing import Iterator

import pytest

from tests.components.enforcer_service.support import Sandbox, make_sandbox
from tests.support.sshd import sshd_server  # noqa: F401  (the fixture)

#: The reference stack's gateway mount, which holds the flag's directory.
WORKSTATION_MOUNT = "/home/sam/moltbot-infra/clawdbot-config"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = make_sandbox(mount_dirs=(WORKSTATION_MOUNT,))
    yield box
    box.remove()
