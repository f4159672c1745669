"""openclaw_patch.py runs with the gateway host's python3 (3.9+), with only json5 beside it."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from components.gateway import host_files


def _vermin(*args: str) -> subprocess.CompletedProcess:
    vermin = Path(sys.executable).parent / "vermin"
    assert vermin.exists(), "vermin missing from the venv (requirements-dev.txt)"
    return subprocess.run([str(vermin), "--no-tips", "--eval-annotations", *args], capture_output=True, text=True,
                          timeout=300)


def test_vermin_minimum_is_at_most_3_9() -> None:
    shipped = [str(f.source) for f in host_files.tool_files() if f.source.suffix == ".py"]
    assert any(path.endswith("openclaw_patch.py") for path in shipped) and len(shipped) == 5
    proc = _vermin("--violations", "-t=3.9-", *shipped)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = _vermin(*shipped)
    found = re.search(r"Minimum required versions: 3\.(\d+)", proc.stdout)
    assert found and int(found.group(1)) <= 9, proc.stdout


def test_only_the_stdlib_and_json5() -> None:
    tree = ast.parse(host_files.PATCH_TOOL.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    third_party = {name for name in imported - {"__future__"} if name not in sys.stdlib_module_names}
    assert third_party == {"json5"}, third_party


def test_runs_from_a_directory_with_json5_beside_it(tmp_path: Path) -> None:
    """As shipped: the script and json5/ in one directory, run by a python that has no json5 installed."""
    for shipped in host_files.tool_files():
        target = tmp_path / shipped.target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shipped.source.read_bytes())
    config = tmp_path / "openclaw.json"
    config.write_text("// c\n{gateway: {mode: 'local'}}\n")
    spec = tmp_path / "spec.json"
    spec.write_text('{"version": 1, "diagnostics": {"enabled": true}}')
    # -S: no site-packages, so json5 can only come from beside the script.
    proc = subprocess.run([sys.executable, "-S", str(tmp_path / "openclaw_patch.py"), "diff", "--config", str(config),
                           "--spec", str(spec), "--state", str(tmp_path / "state.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "diagnostics.enabled: (absent) -> true" in proc.stdout
