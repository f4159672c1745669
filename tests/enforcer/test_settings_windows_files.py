"""Unit tests: settings validation, window arithmetic across DST, flag file and textfile rendering."""
from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from enforcer import flagfile, textfile
from enforcer.prometheus import BackendError, parse_vector, rows_from_vector
from enforcer.settings import ConfigError, load
from enforcer.state import State, StateStore, CorruptState
from enforcer.windows import compute, local_midnight
from tests.support import tools

BASE = {"PROMETHEUS_URL": "http://127.0.0.1:9090", "BUDGET_STATE_DIR": "/tmp/s"}


def test_defaults():
    s = load(BASE)
    assert (s.max_daily_usd, s.warn_ratio, s.window, s.tz_name, s.on_backend_error) == (5.0, 0.8, "rolling-24h",
                                                                                        "UTC", "closed")
    assert str(s.flag_file) == "/tmp/openclaw-budget-exceeded" and not s.matrix_enabled


@pytest.mark.parametrize("env,needle", [
    ({"MAX_DAILY_USD": "five"}, "MAX_DAILY_USD='five' is not a number"),
    ({"MAX_DAILY_USD": "-1"}, "must be a positive number"),
    ({"MAX_DAILY_USD": "nan"}, "must be a positive number"),
    ({"BUDGET_WARN_RATIO": "1.5"}, "BUDGET_WARN_RATIO"),
    ({"BUDGET_WINDOW": "weekly"}, "rolling-24h, calendar-day"),
    ({"BUDGET_TZ": "Mars/Olympus"}, "IANA"),
    ({"BUDGET_ON_BACKEND_ERROR": "maybe"}, "open, closed, hold"),
    ({"PROMETHEUS_URL": "localhost:9090"}, "not an http(s) URL"),
    ({"MATRIX_HOMESERVER": "http://127.0.0.1:8008"}, "MATRIX_ROOM_ID"),
    ({"MATRIX_HOMESERVER": "http://h", "MATRIX_ROOM_ID": "#alias:h", "MATRIX_ACCESS_TOKEN": "t"}, "#alias"),
    ({"MATRIX_ROOM_ID": "!r:h"}, "MATRIX_HOMESERVER is not"),
    ({"MATRIX_ACCESS_TOKEN_FILE": "/nonexistent/token", "MATRIX_HOMESERVER": "http://h",
      "MATRIX_ROOM_ID": "!r"}, "cannot be read"),
    ({"BUDGET_MODEL_CAPS": "{not json"}, "not valid JSON"),
    ({"BUDGET_MODEL_CAPS": '{"anthropic": -2}'}, "positive number"),
    ({"BUDGET_METRICS_FILE": "/var/lib/node/metrics.txt"}, ".prom"),
    ({"BUDGET_FLAG_FILE": "relative/flag"}, "absolute"),
])
def test_bad_values_name_the_variable(env, needle):
    with pytest.raises(ConfigError) as exc:
        load({**BASE, **env})
    assert needle in str(exc.value)


def test_missing_prometheus_url_and_all_errors_at_once():
    with pytest.raises(ConfigError) as exc:
        load({"MAX_DAILY_USD": "x", "BUDGET_TZ": "Nowhere"})
    text = str(exc.value)
    assert "PROMETHEUS_URL is not set" in text and "MAX_DAILY_USD" in text and "BUDGET_TZ" in text


def test_token_file_and_secret_not_in_repr(tmp_path):
    token = tmp_path / "token"
    token.write_text("syt_fake_secret_value\n")
    s = load({**BASE, "MATRIX_HOMESERVER": "http://127.0.0.1:8008", "MATRIX_ROOM_ID": "!room",
              "MATRIX_ACCESS_TOKEN_FILE": str(token)})
    assert s.matrix_access_token == "syt_fake_secret_value"
    assert "syt_fake" not in repr(s)


def test_model_caps_split_at_first_slash():
    s = load({**BASE, "BUDGET_MODEL_CAPS": '{"openrouter/google/gemini-2.5-flash": 1, "anthropic": 3}'})
    scopes = {c.scope: (c.provider, c.model) for c in s.model_caps}
    assert scopes == {"openrouter/google/gemini-2.5-flash": ("openrouter", "google/gemini-2.5-flash"),
                      "anthropic": ("anthropic", None)}


def test_calendar_window_across_dst_in_rome():
    tz = "Europe/Rome"
    # 2026-03-29: clocks jump 02:00 -> 03:00, the day has 23 hours
    w = compute("calendar-day", datetime(2026, 3, 29, 21, 0, tzinfo=timezone.utc), tz)  # 23:00 CEST
    assert w.start == datetime(2026, 3, 28, 23, 0, tzinfo=timezone.utc)
    assert (w.resets_at - w.start).total_seconds() == 23 * 3600
    # 2026-10-25: 25 hours
    w = compute("calendar-day", datetime(2026, 10, 25, 12, 0, tzinfo=timezone.utc), tz)
    assert (w.resets_at - w.start).total_seconds() == 25 * 3600
    assert w.window_id == "2026-10-25"


def test_midnight_that_does_not_exist():
    # America/Santiago 2026-09-06: clocks jump from 00:00 to 01:00; the day starts at 01:00 local
    tz = ZoneInfo("America/Santiago")
    start = local_midnight(datetime(2026, 9, 6).date(), tz)
    assert start.astimezone(tz).hour in (0, 1) and start.astimezone(tz).day == 6


def test_rolling_window():
    now = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    w = compute("rolling-24h", now, "UTC")
    assert w.seconds == 86400 and (w.resets_at - now).total_seconds() == 86400


def test_parse_prometheus_answers():
    ok = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"openclaw_provider": "a", "openclaw_model": "m"}, "value": [1, "1.5"]},
        {"metric": {}, "value": [1, "0.25"]}]}}
    rows = rows_from_vector(parse_vector(ok))
    assert [(r.label, r.usd) for r in rows] == [("a/m", 1.5), ("(unknown)/(unknown)", 0.25)]
    assert parse_vector({"status": "success", "data": {"resultType": "vector", "result": []}}) == []
    for bad in ({"status": "error", "errorType": "bad_data", "error": "parse error"},
                {"status": "success", "data": {"resultType": "matrix", "result": []}},
                {"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "NaN"],
                                                                                   "metric": {}}]}}):
        with pytest.raises(BackendError):
            parse_vector(bad)


def test_flag_roundtrip_ours_foreign_corrupt(tmp_path):
    path = tmp_path / "flag"
    assert flagfile.read(path).status == "absent"
    flagfile.write(path, {"reason": "r", "spent_usd": 5.1, "cap_usd": 5.0})
    found = flagfile.read(path)
    assert found.status == "ours" and found.content["state"] == "blocked"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert list(tmp_path.iterdir()) == [path]
    path.write_text('{"state": "blocked"}')  # written by someone else
    assert flagfile.remove_if_ours(path).status == "foreign" and path.exists()
    path.write_text("")  # `touch`
    assert flagfile.read(path).status == "corrupt"


def test_corrupt_state_is_moved_aside(tmp_path):
    store = StateStore(tmp_path)
    (tmp_path / "state.json").write_text("{half")
    with pytest.raises(CorruptState):
        store.load()
    assert not (tmp_path / "state.json").exists()
    assert any(p.name.startswith("state.json.corrupt-") for p in tmp_path.iterdir())


def test_textfile_is_valid_exposition_format():
    st = State(spent_usd=None)
    st.counters = {"check_errors_total:unreachable": 2, "alerts_sent_total": 3}
    text = textfile.render(st, "rolling-24h", 5.0, 0.8, 1.7e9, None, None, {"anthropic": 1.0}, {"anthropic": 3.0})
    lint = subprocess.run([str(tools.promtool_bin()), "check", "metrics"], input=text, capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert 'openclaw_budget_spend_usd{window="rolling-24h"} NaN' in text
    assert 'openclaw_budget_check_errors_total{reason="unreachable"} 2' in text
