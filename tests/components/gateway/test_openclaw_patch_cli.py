"""openclaw_patch.py against the real OpenClaw CLI (openclaw@2026.9.6, state isolated under tmp_path).

For each realistic openclaw.json (tests/components/gateway/configs.py): ``apply`` is accepted by OpenClaw's own
``config validate``, leaves every unrelated key exactly as it was, a second ``apply`` leaves the file
byte-identical, and ``revert`` restores the original content (values; comments live on in the backup).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import json5
import pytest

from tests.components.gateway.configs import CONFIGS, spec_for
from tests.components.gateway.support import PATCH_TOOL, ToolEnv, assert_no_secret, assert_ok, copy_plugin
from tests.support import tools

BUILT_IN = {"anthropic", "google", "openrouter", "openai"}
BEARER = "FAKE_OTLP_BEARER_abc123"
FLAG = "/tmp/openclaw-budget-exceeded"


def _spec(env: ToolEnv, original: dict[str, Any], gate_dir: Path) -> dict[str, Any]:
    """The full spec, pricing only providers OpenClaw accepts here (built-ins, or custom ones in the file)."""
    spec = spec_for(str(gate_dir), FLAG, bearer=BEARER)
    present = set((original.get("models") or {}).get("providers") or {})
    spec["prices"] = {p: m for p, m in spec["prices"].items() if p in BUILT_IN or p in present}
    return spec


# ------------------------------------------------------------------------------- unrelated-key check


def _flatten(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Leaves by path; model arrays keyed by id, allow/load.paths as sets of items."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _flatten(sub, path + (key,))
    elif isinstance(value, list):
        if len(path) == 4 and path[0] == "models" and path[1] == "providers" and path[3] == "models":
            for entry in value:
                yield from _flatten(entry, path + (("id", entry.get("id")),))
        elif path in (("plugins", "allow"), ("plugins", "load", "paths")):
            for item in value:
                yield path + (("item", item),), True
        else:
            for index, sub in enumerate(value):
                yield from _flatten(sub, path + (index,))
    else:
        yield path, value


def _managed(path: tuple, spec: dict[str, Any], original: dict[str, Any]) -> bool:
    if path[:2] in (("diagnostics", "enabled"), ("diagnostics", "otel")):
        return True
    for plugin_id, entry in spec["plugins"].items():
        if path[:3] == ("plugins", "entries", plugin_id) or path == ("plugins", "allow", ("item", plugin_id)):
            return True
        if path == ("plugins", "load", "paths", ("item", entry.get("loadPath"))):
            return True
    for provider, models in spec["prices"].items():
        for model_id in models:
            entry_path = ("models", "providers", provider, "models", ("id", model_id))
            existed = any(
                isinstance(m, dict) and m.get("id") == model_id
                for m in ((original.get("models") or {}).get("providers") or {}).get(provider, {}).get("models", [])
            )
            if path[:5] == entry_path and (not existed or path[5:6] == ("cost",)):
                return True
    return False


def unrelated(config: dict[str, Any], spec: dict[str, Any], original: dict[str, Any]) -> dict[tuple, Any]:
    return {path: value for path, value in _flatten(config) if not _managed(path, spec, original)}


def same(a: Any, b: Any) -> bool:
    """Strict JSON equality (True is not 1; key order irrelevant)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def plugin_dirs(tmp_path: Path) -> tuple[Path, Path]:
    gate = copy_plugin(tmp_path / "plugins" / "openclaw-budget-gate")
    other = copy_plugin(tmp_path / "plugins" / "team-helper", plugin_id="team-helper")
    return gate, other


def make_env(tmp_path: Path, name: str, other_plugin: Path) -> ToolEnv:
    return ToolEnv(tmp_path / name, CONFIGS[name].replace("{PLUGIN_DIR}", str(other_plugin)))


# ------------------------------------------------------------------------------------- the matrix


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_apply_validate_idempotent_revert(name: str, tmp_path: Path, plugin_dirs: tuple[Path, Path]) -> None:
    gate_dir, other_plugin = plugin_dirs
    env = make_env(tmp_path, name, other_plugin)
    original_text = env.config.read_text()
    original = env.parsed()  # each is valid as it stands (the apply's dry run checks the whole result)
    spec = _spec(env, original, gate_dir)

    first = env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec)
    assert_ok(first)
    assert "OpenClaw accepted the change" in first.stdout
    env.validate()
    applied = json.loads(env.config.read_text())  # written as plain JSON
    assert_no_secret([first.stdout, first.stderr], [BEARER])

    # The managed keys hold exactly the spec's values.
    otel = applied["diagnostics"]["otel"]
    assert same(otel, spec["diagnostics"]["otel"]), otel  # leftovers (metricsEndpoint, prefix, ...) gone
    assert applied["diagnostics"]["enabled"] is True
    assert applied["plugins"]["entries"]["diagnostics-otel"]["enabled"] is True
    gate = applied["plugins"]["entries"]["openclaw-budget-gate"]
    assert gate["config"] == {"flagFile": FLAG, "blockToolCalls": True} and gate["hooks"]["allowConversationAccess"] is True
    assert str(gate_dir) in applied["plugins"]["load"]["paths"]
    allow_before = (original.get("plugins") or {}).get("allow")
    if allow_before:
        assert applied["plugins"]["allow"] == allow_before + ["diagnostics-otel", "openclaw-budget-gate"]
    else:
        assert applied["plugins"].get("allow") == allow_before  # never created, an empty one left empty
    for provider, models in spec["prices"].items():
        entries = {m["id"]: m for m in applied["models"]["providers"][provider]["models"]}
        for model_id, price in models.items():
            assert entries[model_id]["cost"] == {k: price[k] for k in ("input", "output", "cacheRead", "cacheWrite")}

    # Everything else is exactly as it was.
    assert unrelated(applied, spec, original) == unrelated(original, spec, original)

    # A second apply changes nothing, byte for byte, and says so.
    before = env.bytes()
    second = env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec)
    assert_ok(second)
    assert "already up to date" in second.stdout and "byte-identical" in second.stdout
    assert env.bytes() == before

    # Revert restores the original values; the first backup still has the comments.
    reverted = env.tool("revert", spec=spec)
    assert_ok(reverted)
    assert same(json.loads(env.config.read_text()), original)  # OpenClaw's dry run accepted it too
    backups = env.backups()
    assert backups and backups[0].read_text() == original_text
    assert_no_secret([reverted.stdout, reverted.stderr], [BEARER])


# ------------------------------------------------------------------------------------ negative cases


@pytest.fixture
def lab_env(tmp_path: Path, plugin_dirs: tuple[Path, Path]) -> ToolEnv:
    return make_env(tmp_path, "custom-provider", plugin_dirs[1])


def _base_spec(env: ToolEnv, gate_dir: Path) -> dict[str, Any]:
    return _spec(env, env.parsed(), gate_dir)


def test_openclaw_rejection_leaves_file_byte_identical(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    spec = _base_spec(lab_env, plugin_dirs[0])
    spec["diagnostics"]["otel"]["protocol"] = "grpc"  # our schema allows it; OpenClaw 2026.9.6 does not
    before = lab_env.bytes()
    proc = lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec)
    assert proc.returncode == 1
    assert "OpenClaw rejected the change" in proc.stderr
    assert "diagnostics.otel.protocol" in proc.stderr and "http/protobuf" in proc.stderr
    assert lab_env.bytes() == before
    assert not lab_env.state.exists() and not lab_env.backups()
    assert_no_secret([proc.stdout, proc.stderr], [BEARER])


def test_price_for_a_missing_custom_provider_is_rejected_by_openclaw(
    lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]
) -> None:
    spec = _base_spec(lab_env, plugin_dirs[0])
    spec["prices"]["not-there"] = {"m": {"input": 1, "output": 1, "cacheRead": 0, "cacheWrite": 0}}
    before = lab_env.bytes()
    proc = lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec)
    assert proc.returncode == 1, proc.stdout
    assert "models.providers.not-there" in proc.stderr and "baseUrl" in proc.stderr
    assert lab_env.bytes() == before


def test_unknown_plugin_config_key_is_rejected_with_the_plugins_own_schema(
    lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]
) -> None:
    spec = _base_spec(lab_env, plugin_dirs[0])
    spec["plugins"]["openclaw-budget-gate"]["config"]["flagFiel"] = "/tmp/typo"
    before = lab_env.bytes()
    proc = lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec)
    assert proc.returncode == 1
    assert "openclaw-budget-gate" in proc.stderr and "flagFiel" in proc.stderr, proc.stderr
    assert lab_env.bytes() == before


def test_malformed_json5_is_an_error_naming_the_position(tmp_path: Path, plugin_dirs: tuple[Path, Path]) -> None:
    env = ToolEnv(tmp_path / "bad", '{\n  gateway: {mode: "local"},\n  models: {providers: {\n}\n')
    before = env.bytes()
    proc = env.tool("apply", "--skip-plugin-check", "--no-verify",
                    spec=spec_for(str(plugin_dirs[0]), FLAG))
    assert proc.returncode == 1
    assert "is not valid JSON5" in proc.stderr and "nothing was changed" in proc.stderr
    assert env.bytes() == before and not env.backups()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("binary", "is not UTF-8"),
        ("missing", "does not exist"),
        ("directory", "is not a regular file"),
        ("symlink", "is a symlink"),
    ],
)
def test_unreadable_config_is_an_error(tmp_path: Path, plugin_dirs: tuple[Path, Path], damage: str,
                                       message: str) -> None:
    env = ToolEnv(tmp_path / damage, CONFIGS["minimal-json5"])
    if damage == "binary":
        env.config.write_bytes(b'{"gateway": {"mode": "\xff\xfe"}}')
    elif damage == "missing":
        env.config.unlink()
    elif damage == "directory":
        env.config.unlink()
        env.config.mkdir()
    elif damage == "symlink":
        real = env.config.with_name("real.json")
        env.config.rename(real)
        env.config.symlink_to(real)
    before = env.config.read_bytes() if env.config.is_file() else None
    proc = env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec_for(str(plugin_dirs[0]), FLAG))
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    if before is not None:
        assert env.config.read_bytes() == before


def test_permission_denied_is_an_error(request: pytest.FixtureRequest, plugin_dirs: tuple[Path, Path]) -> None:
    # Under /tmp directly: "nobody" must be able to reach everything but the config itself.
    base = Path(tempfile.mkdtemp(prefix="openclaw-patch-perm-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    env = ToolEnv(base / "perm", CONFIGS["minimal-json5"])
    spec = env.write_spec(spec_for(str(plugin_dirs[0]), FLAG))
    env.config.chmod(0)
    command = [sys.executable, str(PATCH_TOOL)]
    tmp_path = base
    if os.geteuid() == 0:
        # root reads anything: run the tool as "nobody" for a real EACCES, with the system python3 (the venv's
        # interpreter lives under /root) and a copy of the tool plus json5, as the component ships them.
        python = shutil.which("python3", path="/usr/bin:/bin")
        assert python and shutil.which("setpriv"), "needs /usr/bin/python3 and setpriv (util-linux)"
        shipped = tmp_path / "tool"
        shipped.mkdir()
        shutil.copy(PATCH_TOOL, shipped / "openclaw_patch.py")
        shutil.copytree(Path(json5.__file__).parent, shipped / "json5", ignore=shutil.ignore_patterns("__pycache__"))
        for path in [tmp_path, *tmp_path.rglob("*")]:
            if path != env.config:
                path.chmod(0o777 if path.is_dir() else 0o644)
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python,
                   str(shipped / "openclaw_patch.py")]
    proc = subprocess.run([*command, "diff", "--config", str(env.config), "--state", str(env.state), "--spec",
                           str(spec)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "cannot read" in proc.stderr and "Permission denied" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "openclaw, message",
    [
        # The gateway container is gone: docker itself is the CLI that fails.
        ("docker-not-installed-here exec -i openclaw-gateway node /app/dist/entry.js", "not found"),
        ("/bin/sh -c 'echo \"Error response from daemon: No such container: openclaw-gateway\" >&2; exit 1' sh",
         "No such container: openclaw-gateway"),
        # Node runs but the CLI entry point is not there (wrong --openclaw).
        ("{node} /nonexistent/openclaw/dist/entry.js", "Cannot find module"),
    ],
)
def test_cli_failure_leaves_file_byte_identical(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path], openclaw: str,
                                                 message: str) -> None:
    openclaw = openclaw.replace("{node}", str(tools.node_bin_dir() / "node"))
    before = lab_env.bytes()
    proc = lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=_base_spec(lab_env, plugin_dirs[0]),
                        openclaw=openclaw)
    assert proc.returncode == 1
    assert message in proc.stderr, proc.stderr
    assert lab_env.bytes() == before
    assert not lab_env.backups() and not lab_env.state.exists()


def test_a_cli_that_reads_another_file_is_detected(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """An --openclaw that does not pass our environment on (here: overrides it) must not validate the wrong file."""
    elsewhere = tmp_path / "elsewhere" / "openclaw.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text('{gateway: {mode: "local"}}')
    wrapper = f"env OPENCLAW_CONFIG_PATH={elsewhere} {lab_env.openclaw_command()}"
    before = lab_env.bytes()
    proc = lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=_base_spec(lab_env, plugin_dirs[0]),
                        openclaw=wrapper)
    assert proc.returncode == 1
    assert "instead of the candidate" in proc.stderr or "does not see" in proc.stderr, proc.stderr
    assert lab_env.bytes() == before
    assert [p.name for p in lab_env.config.parent.iterdir()] == ["openclaw.json"]  # candidate removed


# ------------------------------------------------------------------------------------- behaviours


def test_config_get_would_have_destroyed_the_api_key(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    """Why the tool reads the raw file: ``config get`` redacts secrets and fills in defaults."""
    shown = json.loads(lab_env.openclaw("config", "get", "models.providers.lab", "--json").stdout)
    assert shown["apiKey"] != "sk-lab-FAKE-0004"
    assert_ok(lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=_base_spec(lab_env, plugin_dirs[0])))
    provider = json.loads(lab_env.config.read_text())["models"]["providers"]["lab"]
    assert provider["apiKey"] == "sk-lab-FAKE-0004"
    assert provider["headers"] == {"X-Team": "research", "Authorization": "Bearer FAKE-upstream-0004"}
    qwen = provider["models"][0]
    assert qwen["compat"] == {"supportsDeveloperRole": False} and qwen["headers"] == {"X-Route": "gpu-a"}
    assert "cost" not in json5.loads(CONFIGS["custom-provider"])["models"]["providers"]["lab"]["models"][0]


def test_owner_and_mode_are_kept(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    lab_env.config.chmod(0o640)
    assert_ok(lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=_base_spec(lab_env, plugin_dirs[0])))
    info = lab_env.config.stat()
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid())
    assert stat.S_IMODE(lab_env.backups()[0].stat().st_mode) == 0o600  # backups hold API keys
    leftovers = [p.name for p in lab_env.config.parent.iterdir() if p.name != "openclaw.json"]
    assert leftovers == [], leftovers  # no temp file left beside the config


def test_user_change_after_apply_is_reported_not_clobbered(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    assert_ok(lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=_base_spec(lab_env, plugin_dirs[0])))
    config = json.loads(lab_env.config.read_text())
    config["diagnostics"]["otel"]["endpoint"] = "http://user-chose-this:4318"
    lab_env.config.write_text(json.dumps(config, indent=2))
    proc = lab_env.tool("revert")
    assert_ok(proc)
    assert "diagnostics.otel: changed since openclaw-patch set it; left as is" in proc.stderr
    after = json.loads(lab_env.config.read_text())
    assert after["diagnostics"]["otel"]["endpoint"] == "http://user-chose-this:4318"
    # Everything else went back.
    original = json5.loads(CONFIGS["custom-provider"])
    assert "diagnostics-otel" not in after.get("plugins", {}).get("entries", {})
    assert same(after["models"], original["models"])
    lab_env.validate()


def test_diff_shows_changes_without_writing_and_masks_the_token(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    before = lab_env.bytes()
    proc = lab_env.tool("diff", "--exit-code", spec=_base_spec(lab_env, plugin_dirs[0]))
    assert proc.returncode == 3, proc.stderr
    assert "diagnostics.otel" in proc.stdout and "models.providers.lab.models[id=qwen3-32b].cost" in proc.stdout
    assert BEARER not in proc.stdout and "********" in proc.stdout
    assert lab_env.bytes() == before


def test_spec_change_restores_keys_no_longer_managed(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    spec = _base_spec(lab_env, plugin_dirs[0])
    assert_ok(lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=spec))
    smaller = copy.deepcopy(spec)
    del smaller["plugins"]["openclaw-budget-gate"]  # gate disabled in the stack
    smaller["prices"].pop("lab")
    proc = lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=smaller)
    assert_ok(proc)
    config = json.loads(lab_env.config.read_text())
    assert "openclaw-budget-gate" not in config["plugins"]["entries"]
    assert "load" not in config["plugins"]  # we created plugins.load; empty again, so removed
    original = json5.loads(CONFIGS["custom-provider"])
    assert same(config["models"]["providers"]["lab"], original["models"]["providers"]["lab"])
    lab_env.validate()
    assert_ok(lab_env.tool("revert"))
    assert same(json.loads(lab_env.config.read_text()), original)


def test_revert_without_state_is_a_no_op(lab_env: ToolEnv) -> None:
    before = lab_env.bytes()
    proc = lab_env.tool("revert")
    assert_ok(proc)
    assert "nothing to revert" in proc.stdout
    assert lab_env.bytes() == before


def test_help_documents_every_command_and_option() -> None:
    top = subprocess.run([sys.executable, str(PATCH_TOOL), "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0
    for word in ("diff", "apply", "revert", "managed keys", "comments are lost", "backup", "plugins.allow",
                 "diagnostics-otel", "exit status"):
        assert word in top.stdout, word
    apply = subprocess.run([sys.executable, str(PATCH_TOOL), "apply", "--help"], capture_output=True, text=True,
                           timeout=60)
    text = " ".join(apply.stdout.split())
    for option in ("--config", "--openclaw", "--spec", "--state", "--no-verify", "--skip-plugin-check",
                   "docker exec -i openclaw-gateway node /app/dist/entry.js"):
        assert option in text, option


def test_revert_with_the_gateway_gone_says_how_to_finish(lab_env: ToolEnv, plugin_dirs: tuple[Path, Path]) -> None:
    assert_ok(lab_env.tool("apply", "--skip-plugin-check", "--no-verify", spec=_base_spec(lab_env, plugin_dirs[0])))
    patched = lab_env.bytes()
    gone = "/bin/sh -c 'echo \"Error response from daemon: No such container: openclaw-gateway\" >&2; exit 1' sh"
    proc = lab_env.tool("revert", openclaw=gone)
    assert proc.returncode == 1
    assert "No such container" in proc.stderr and "--no-validate" in proc.stderr
    assert lab_env.bytes() == patched
    forced = lab_env.tool("revert", "--no-validate", openclaw=gone)
    assert_ok(forced)
    assert same(json.loads(lab_env.config.read_text()), json5.loads(CONFIGS["custom-provider"]))
