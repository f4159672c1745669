"""README.md stays true: its quick-start commands exist and its config reference matches the models."""
from __future__ import annotations

import os
import re

from components.reference import END, START, reference_markdown
from tests.support.tools import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_config_reference_is_generated_from_the_models() -> None:
    start, end = README.index(START), README.index(END) + len(END)
    assert README[start:end] == reference_markdown(), "run `python -m components reference` and paste it"


def test_quick_start_commands_exist() -> None:
    quick = README[README.index("## Quick start") : README.index("## Prerequisites")]
    assert "scripts/pulumi-local demo preview" in quick
    assert "tests/run" in quick
    for script in ("scripts/pulumi-local", "tests/run", ".ci/run"):
        assert os.access(REPO_ROOT / script, os.X_OK), f"{script} is not executable"
    assert "tests/run" in (REPO_ROOT / ".ci" / "run").read_text()


def test_every_secret_command_names_a_secret_field() -> None:
    for path in re.findall(r"--secret --path '([^']+)'", README):
        assert path.split(".")[-1] in {"privateKey", "accessToken", "bearerToken"}, path
