"""The enforcer runs on hosts with Python 3.9+: vermin (static analysis) must agree."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tests.support.tools import REPO_ROOT


def test_vermin_minimum_is_at_most_3_9():
    vermin = Path(sys.executable).parent / "vermin"
    assert vermin.exists(), "vermin missing from the venv (requirements-dev.txt)"
    proc = subprocess.run([str(vermin), "--no-tips", "--violations", "-t=3.9-", "enforcer"], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([str(vermin), "--no-tips", "enforcer"], cwd=REPO_ROOT, capture_output=True, text=True)
    found = re.search(r"Minimum required versions: 3\.(\d+)", proc.stdout)
    assert found and int(found.group(1)) <= 9, proc.stdout


def test_only_requests_outside_the_stdlib():
    # From the syntax tree: a line of prose that starts with "from a ..." is not an import.
    imports = set()
    for path in (REPO_ROOT / "enforcer").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imports.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imports.add(node.module.split(".")[0])
    assert {"requests", "enforcer", "json", "hashlib"} <= imports  # the walk sees top-level and local imports
    third_party = {name for name in imports - {"enforcer", "__future__"} if name not in sys.stdlib_module_names}
    assert third_party <= {"requests"}, third_party
