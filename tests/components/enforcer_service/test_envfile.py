"""The environment file: every setting, quoted so systemd and sh read the same values, accepted by the
real enforcer's settings loader; the token only where it must be."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.config import MASKED
from components.enforcer_service.envfile import env_settings, quote_env_value, render_env_file, render_masked_env_file
from enforcer import settings as enforcer_settings
from tests.components.enforcer_service.support import fake_token, make_config

EXPECTED_VARIABLES = {
    "PROMETHEUS_URL",
    "MAX_DAILY_USD",
    "BUDGET_WARN_RATIO",
    "BUDGET_WINDOW",
    "BUDGET_TZ",
    "BUDGET_ON_BACKEND_ERROR",
    "MATRIX_HOMESERVER",
    "MATRIX_ROOM_ID",
    "MATRIX_ACCESS_TOKEN",
    "BUDGET_FLAG_FILE",
    "BUDGET_STATE_DIR",
}


def sourced(text: str, tmp_path: Path) -> dict[str, str]:
    """The variables a POSIX shell gets from ``set -a; . file`` (what the operator wrapper does)."""
    path = tmp_path / "enforcer.env"
    path.write_text(text)
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    out = subprocess.run(
        ["env", "-i", "/bin/sh", "-c", 'set -a; . "$1"; set +a; exec "$2" -c "$3"']
        + ["sh", str(path), sys.executable, code],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = json.loads(out)
    for noise in ("PWD", "SHLVL", "_", "LC_CTYPE"):
        env.pop(noise, None)
    return env


class TestQuoting:
    @pytest.mark.parametrize(
        "value",
        [
            "plain",
            "http://192.168.1.111:9090",
            "!GQeiGgJenxtCKbaxDL:matrix.lan",
            "docker exec -i openclaw-gateway node /app/dist/entry.js",
            '{"anthropic":3,"openrouter/google/gemini-2.5-flash":1}',
            "it's $HOME `id` \\ \"q\"",
            "#not-a-comment",
            "~tilde",
            "a;b&c|d",
            "",
        ],
    )
    def test_sh_reads_back_the_exact_value(self, value: str, tmp_path: Path) -> None:
        text = f"X={quote_env_value('X', value)}\n"
        assert sourced(text, tmp_path)["X"] == value

    def test_bare_when_safe(self) -> None:
        assert quote_env_value("X", "/var/lib/openclaw-budget") == "/var/lib/openclaw-budget"
        assert quote_env_value("X", "a b") == "'a b'"
        assert quote_env_value("X", "it's $x") == '"it\'s \\$x"'

    @pytest.mark.parametrize("value", ["two\nlines", "nul\x00", "cr\r", "tab\t"])
    def test_control_characters_are_refused(self, value: str) -> None:
        with pytest.raises(ValueError, match="X: control characters"):
            quote_env_value("X", value)


class TestContent:
    def test_every_setting_is_there(self) -> None:
        names = {name for name, _ in env_settings(make_config(), fake_token())}
        assert EXPECTED_VARIABLES <= names

    def test_the_real_enforcer_accepts_it_with_the_stack_values(self, tmp_path: Path) -> None:
        cfg = make_config(
            {
                "modelCaps": {"anthropic": 3.0, "openrouter/google/gemini-2.5-flash": 1.0},
                "metricsFile": "/var/lib/node-exporter/textfile/openclaw_budget.prom",
            }
        )
        env = sourced(render_env_file(cfg, fake_token()), tmp_path)
        loaded = enforcer_settings.load(env)
        assert loaded.prometheus_url == "http://192.168.1.111:9090"
        assert loaded.max_daily_usd == 5.0
        assert loaded.warn_ratio == 0.8
        assert loaded.window == "calendar-day"
        assert loaded.tz_name == "Europe/Rome"
        assert loaded.on_backend_error == "hold"
        assert loaded.matrix_homeserver == "https://matrix.lan"
        assert loaded.matrix_room_id == "!GQeiGgJenxtCKbaxDL:matrix.lan"
        assert loaded.matrix_access_token == fake_token()
        assert str(loaded.flag_file) == "/home/sam/moltbot-infra/clawdbot-config/budget/openclaw-budget-exceeded"
        assert str(loaded.state_dir) == "/var/lib/openclaw-budget"
        assert str(loaded.metrics_file) == "/var/lib/node-exporter/textfile/openclaw_budget.prom"
        assert {c.scope: c.usd for c in loaded.model_caps} == {
            "anthropic": 3.0,
            "openrouter/google/gemini-2.5-flash": 1.0,
        }
        # Zero-priced on purpose in the stack's prices: doctor must not call it a missing price.
        assert loaded.free_models == ("google/gemini-2.5-flash",)
        assert loaded.openclaw_cli == ("docker", "exec", "-i", "openclaw-gateway", "node", "/app/dist/entry.js")
        assert loaded.lift_hint == "sudo /opt/openclaw-budget/bin/openclaw-budget allow --for 2h"

    def test_optional_settings_are_left_out(self) -> None:
        names = {name for name, _ in env_settings(make_config(), fake_token())}
        assert "BUDGET_METRICS_FILE" not in names
        assert "BUDGET_MODEL_CAPS" not in names

    def test_masked_render_has_no_token(self) -> None:
        text = render_masked_env_file(make_config())
        assert fake_token() not in text
        assert f"MATRIX_ACCESS_TOKEN='{MASKED}'" in text.splitlines()

    def test_token_appears_once(self) -> None:
        text = render_env_file(make_config(), fake_token())
        assert text.count(fake_token()) == 1
        assert f"MATRIX_ACCESS_TOKEN={fake_token()}" in text.splitlines()

    def test_empty_token_is_refused(self) -> None:
        with pytest.raises(ValueError, match="matrix.accessToken"):
            render_env_file(make_config(), "")

    def test_enforcer_module_is_the_repo_one(self) -> None:
        # The loader used above must be the package we ship, not some installed copy.
        assert Path(enforcer_settings.__file__).resolve().parent == Path(__file__).resolve().parents[3] / "enforcer"
        assert os.path.basename(enforcer_settings.__file__) == "settings.py"
