"""The enforcer runs on hosts with Python 3.9+: vermin (static analysis) must agree."""
from __future__ import annotations

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
    imports = set()
    for path in (REPO_ROOT / "enforcer").glob("*.py"):
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*(?:from|import)\s+([a-zA-Z_][\w]*)", line)
            if m:
                imports.add(m.group(1))
    third_party = {name for name in imports - {"enforcer", "__future__"} if name not in sys.stdlib_module_names}
    assert third_party <= {"requests"}, third_party
