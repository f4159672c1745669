"""Run the Pulumi CLI built by ``tests/e2e/toolchain.sh`` fully offline.

The e2e tests drive the real engine, so they must never reach Pulumi Cloud, get.pulumi.com or a plugin
download server, and must not read or write the developer's ``~/.pulumi``.  Everything that decides that
lives in one environment dict built here, so every test runs the CLI the same way:

- ``PULUMI_HOME`` and a ``file://`` backend inside the test's temp dir (the DIY backend needs no account);
- a fake passphrase for the DIY backend's default secrets provider;
- no update check and no automatic plugin downloads (a download attempt becomes an immediate error
  instead of a network timeout);
- the built binaries first on ``PATH`` (the engine takes ambient ``pulumi-resource-*`` plugins from there),
  and our venv's interpreter as the program's Python.  ``PULUMI_PYTHON_CMD`` is what selects it: the
  language host we can build (sdk v3.68.0, see toolchain.sh) ignores ``runtime.options.virtualenv``.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.tools import REPO_ROOT, pulumi_bin_dir

# Obviously fake: only protects throwaway test stacks.
TEST_PASSPHRASE = "test-passphrase-not-a-secret"

DEFAULT_VENV = REPO_ROOT / "venv"


def offline_env(
    tmp_dir: Path,
    *,
    bin_dir: Path | None = None,
    venv: Path = DEFAULT_VENV,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for running the built ``pulumi`` offline with all state under ``tmp_dir``.

    Creates ``tmp_dir/pulumi-home`` and ``tmp_dir/backend``.  Inherited ``PULUMI_*`` variables are dropped
    so a developer's access token or backend URL can never leak into a test run.
    """
    bins = bin_dir if bin_dir is not None else pulumi_bin_dir()
    home = tmp_dir / "pulumi-home"
    backend = tmp_dir / "backend"
    home.mkdir(parents=True, exist_ok=True)
    backend.mkdir(parents=True, exist_ok=True)

    inherited = dict(os.environ if base is None else base)
    env = {key: value for key, value in inherited.items() if not key.startswith("PULUMI_")}
    env.update(
        {
            "PULUMI_HOME": str(home),
            "PULUMI_BACKEND_URL": backend.resolve().as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": TEST_PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "PULUMI_PYTHON_CMD": str(venv / "bin" / "python"),
            "VIRTUAL_ENV": str(venv),
            "PATH": os.pathsep.join([str(bins), str(venv / "bin"), inherited.get("PATH", os.defpath)]),
        }
    )
    return env


class PulumiError(RuntimeError):
    """A ``pulumi`` invocation exited non-zero; carries its output for the test report."""

    def __init__(self, args: Sequence[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"pulumi {' '.join(args)} exited {result.returncode}\n"
            f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
        self.result = result


def run_pulumi(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run the built ``pulumi`` with ``env`` (from :func:`offline_env`) and ``--non-interactive``.

    The binary is taken from the first ``PATH`` entry of ``env`` (the built bin dir), never from the
    caller's ``PATH``.  Raises :class:`PulumiError` when ``check`` and the command fails.
    """
    pulumi = Path(env["PATH"].split(os.pathsep)[0]) / "pulumi"
    argv = [str(pulumi), *args, "--non-interactive"]
    result = subprocess.run(
        argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise PulumiError(args, result)
    return result
