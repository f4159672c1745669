"""The patch tool's pure functions: reading JSON5, planning apply and revert, expressing a candidate as an
OpenClaw patch, masking.  (The same functions against the real OpenClaw CLI: test_openclaw_patch_cli.py.)"""
from __future__ import annotations

import copy
import json
from typing import Any, Optional

import pytest

from components.gateway import openclaw_patch as op

OTEL = {"enabled": True, "endpoint": "http://collector:4318", "protocol": "http/protobuf",
        "serviceName": "openclaw-gateway", "metrics": True, "traces": False, "logs": False, "flushIntervalMs": 30000}


def spec(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "diagnostics": {"enabled": True, "otel": copy.deepcopy(OTEL)},
        "plugins": {"diagnostics-otel": {"enabled": True}},
        "prices": {"anthropic": {"claude-sonnet-4": {"name": "Claude Sonnet 4", "input": 3.0, "output": 15.0,
                                                     "cacheRead": 0.3, "cacheWrite": 3.75}}},
    }
    base.update(extra)
    return base


GATE = {"enabled": True, "hooks": {"allowConversationAccess": True}, "config": {"flagFile": "/flag"},
        "loadPath": "/home/node/.openclaw/plugins/gate"}


def apply(config: dict[str, Any], the_spec: dict[str, Any], state: Optional[dict[str, Any]] = None) -> op.Plan:
    return op.plan_apply(config, the_spec, state)


def round_trip(config: dict[str, Any], the_spec: dict[str, Any]) -> tuple[op.Plan, op.Plan]:
    applied = apply(config, the_spec)
    return applied, op.plan_revert(applied.candidate, applied.state)


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ------------------------------------------------------------------------------------------ reading


def test_json5_is_read_like_openclaw_reads_it() -> None:
    text = """// comment
    {
      gateway: {mode: 'local', port: 0x4965,},  /* block */
      "quoted": "a\\u00e9",
      models: {providers: {lab: {models: [{id: "m", name: "M", contextWindow: 4e5, cost: {input: .5}},]}}},
    }"""
    config = op.parse_config(text)
    assert config["gateway"] == {"mode": "local", "port": 18789}
    assert config["quoted"] == "aé"
    model = config["models"]["providers"]["lab"]["models"][0]
    assert model["contextWindow"] == 400000 and model["cost"]["input"] == 0.5


@pytest.mark.parametrize("text", ['{gateway: {mode: "local"}', "[1, 2]", "{a: 1,, }", ""])
def test_malformed_json5_is_a_clear_error(text: str) -> None:
    with pytest.raises(op.PatchError, match="JSON5|top level"):
        op.parse_config(text, "openclaw.json")


def test_written_as_two_space_json_with_newline_and_unicode_kept() -> None:
    text = op.dump_config({"a": {"b": [1, "é"]}})
    assert text == '{\n  "a": {\n    "b": [\n      1,\n      "é"\n    ]\n  }\n}\n'
    with pytest.raises(op.PatchError, match="Infinity or NaN"):
        op.dump_config({"x": float("inf")})


def test_utf8_bom_is_tolerated_and_invalid_utf8_rejected() -> None:
    assert op.decode("\ufeff{}".encode(), "f") == "{}"
    with pytest.raises(op.PatchError, match="not UTF-8"):
        op.decode(b"{\xff}", "f")


# -------------------------------------------------------------------------------------- apply: keys


def test_otel_block_is_replaced_as_a_whole_and_siblings_stay() -> None:
    config = {"diagnostics": {"flags": ["telegram.http"], "otel": {
        "enabled": True, "endpoint": "http://old:4318", "metricsEndpoint": "http://old:9999/v1/metrics",
        "metricNamePrefix": "claw.", "headers": {"x-api-key": "old"}}}}
    plan = apply(config, spec())
    diagnostics = plan.candidate["diagnostics"]
    assert diagnostics["otel"] == OTEL  # no metricsEndpoint, no metricNamePrefix, no old header
    assert diagnostics["flags"] == ["telegram.http"] and diagnostics["enabled"] is True


@pytest.mark.parametrize("allow, expected", [
    (["memory-core"], ["memory-core", "diagnostics-otel", "gate"]),
    (["memory-core", "diagnostics-otel"], ["memory-core", "diagnostics-otel", "gate"]),
    ([], []),  # empty = no allowlist for OpenClaw: appending would create one
    (None, None),
])
def test_allowlist_is_appended_only_when_one_exists(allow: Optional[list[str]],
                                                    expected: Optional[list[str]]) -> None:
    config: dict[str, Any] = {"plugins": {} if allow is None else {"allow": list(allow)}}
    the_spec = spec(plugins={"diagnostics-otel": {"enabled": True}, "gate": GATE})
    plan = apply(config, the_spec)
    assert plan.candidate["plugins"].get("allow") == expected
    again = apply(plan.candidate, the_spec, plan.state)
    assert again.changes == [] and again.candidate == plan.candidate
    reverted = op.plan_revert(plan.candidate, plan.state).candidate
    assert reverted == config  # a pre-existing diagnostics-otel stays in the allowlist


def test_plugin_entry_is_merged_and_load_path_appended() -> None:
    config = {"plugins": {"load": {"paths": ["/other"]}, "entries": {
        "gate": {"enabled": False, "hooks": {"timeoutMs": 5000}, "config": {"flagFile": "/old"}}}}}
    plan = apply(config, spec(plugins={"gate": GATE}))
    entry = plan.candidate["plugins"]["entries"]["gate"]
    assert entry == {"enabled": True, "hooks": {"timeoutMs": 5000, "allowConversationAccess": True},
                     "config": {"flagFile": "/flag"}}
    assert "loadPath" not in entry
    assert plan.candidate["plugins"]["load"]["paths"] == ["/other", GATE["loadPath"]]
    assert op.plan_revert(plan.candidate, plan.state).candidate == config


def test_price_sets_cost_and_leaves_every_other_field() -> None:
    model = {"id": "claude-sonnet-4", "name": "Mine", "contextWindow": 200000, "reasoning": True,
             "cost": {"input": 1, "output": 2, "cacheRead": 0, "cacheWrite": 0, "tieredPricing": []}}
    config = {"models": {"providers": {"anthropic": {"apiKey": "sk-x", "baseUrl": "https://a", "headers": {"h": "v"},
                                                     "models": [dict(model), {"id": "other", "name": "O"}]}}}}
    plan = apply(config, spec())
    provider = plan.candidate["models"]["providers"]["anthropic"]
    assert {k: v for k, v in provider.items() if k != "models"} == {"apiKey": "sk-x", "baseUrl": "https://a",
                                                                    "headers": {"h": "v"}}
    entry = provider["models"][0]
    assert entry == dict(model, cost={"input": 3.0, "output": 15.0, "cacheRead": 0.3, "cacheWrite": 3.75})
    assert provider["models"][1] == {"id": "other", "name": "O"}
    assert op.plan_revert(plan.candidate, plan.state).candidate == config


def test_missing_model_is_added_with_id_and_name_and_removed_by_revert() -> None:
    the_spec = spec(prices={"lab": {"m1": {"input": 1, "output": 2, "cacheRead": 0, "cacheWrite": 0}},
                            "anthropic": {"claude-opus-4": {"name": "Opus", "input": 15, "output": 75,
                                                            "cacheRead": 1.5, "cacheWrite": 18.75}}})
    config = {"models": {"providers": {"anthropic": {"models": [{"id": "x", "name": "X"}]}}}}
    applied, reverted = round_trip(config, the_spec)
    providers = applied.candidate["models"]["providers"]
    assert providers["anthropic"]["models"][1] == {"id": "claude-opus-4", "name": "Opus", "cost": {
        "input": 15, "output": 75, "cacheRead": 1.5, "cacheWrite": 18.75}}
    assert providers["lab"] == {"models": [{"id": "m1", "name": "m1", "cost": {
        "input": 1, "output": 2, "cacheRead": 0, "cacheWrite": 0}}]}
    assert reverted.candidate == config  # the created provider and models list are gone again


def test_zero_prices_are_written_as_zero() -> None:
    the_spec = spec(prices={"google": {"gemini-2.5-flash": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}}})
    plan = apply({}, the_spec)
    assert plan.candidate["models"]["providers"]["google"]["models"][0]["cost"] == {
        "input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}


# ---------------------------------------------------------------------------------- apply: refusals


@pytest.mark.parametrize("config, message", [
    ({"models": {"providers": {"anthropic": {"models": [{"id": "claude-sonnet-4", "name": "a"},
                                                        {"id": "claude-sonnet-4", "name": "b"}]}}}},
     "2 entries have id 'claude-sonnet-4'"),
    ({"models": {"providers": {"anthropic": {"models": {"id": "x"}}}}}, "expected an array"),
    ({"diagnostics": {"$include": "./diag.json5"}}, r"\$include at diagnostics"),
    ({"$include": "./base.json5"}, r"\$include at <root>"),
    ({"models": {"providers": {"$include": ["./p.json5"]}}}, r"\$include at models.providers"),
    ({"plugins": {"enabled": False}}, "plugins.enabled is false"),
    ({"plugins": {"deny": ["diagnostics-otel"]}}, "plugins.deny lists 'diagnostics-otel'"),
    ({"plugins": {"allow": "diagnostics-otel"}}, None),  # a string is not an allowlist: left alone
])
def test_refusals_name_the_key(config: dict[str, Any], message: Optional[str]) -> None:
    if message is None:
        plan = apply(config, spec())
        assert plan.candidate["plugins"]["allow"] == "diagnostics-otel"
        return
    with pytest.raises(op.PatchError, match=message):
        apply(config, spec())


def test_include_elsewhere_is_fine() -> None:
    config = {"agents": {"$include": "./agents.json5"}}
    plan = apply(config, spec())
    assert plan.candidate["agents"] == {"$include": "./agents.json5"}


# ------------------------------------------------------------------------------------ state, revert


def test_previous_values_survive_later_applies() -> None:
    config = {"diagnostics": {"otel": {"enabled": False}}}
    first = apply(config, spec())
    changed = spec()
    changed["diagnostics"]["otel"]["endpoint"] = "http://elsewhere:4318"
    second = apply(first.candidate, changed, first.state)
    assert second.candidate["diagnostics"]["otel"]["endpoint"] == "http://elsewhere:4318"
    assert op.plan_revert(second.candidate, second.state).candidate == config


def test_keys_dropped_from_the_spec_go_back() -> None:
    config = {"plugins": {"entries": {"gate": {"enabled": False}}},
              "models": {"providers": {"anthropic": {"models": [{"id": "claude-sonnet-4", "name": "S"}]}}}}
    first = apply(config, spec(plugins={"diagnostics-otel": {"enabled": True}, "gate": GATE}))
    smaller = apply(first.candidate, spec(plugins={"diagnostics-otel": {"enabled": True}}, prices={}), first.state)
    assert smaller.candidate["plugins"]["entries"]["gate"] == {"enabled": False}
    assert "load" not in smaller.candidate["plugins"]
    assert smaller.candidate["models"] == config["models"]
    assert op.plan_revert(smaller.candidate, smaller.state).candidate == config


def test_revert_reports_user_changes_instead_of_clobbering() -> None:
    config = {"gateway": {"mode": "local"}}
    plan = apply(config, spec())
    edited = copy.deepcopy(plan.candidate)
    edited["diagnostics"]["otel"]["endpoint"] = "http://mine:4318"
    del edited["plugins"]["entries"]["diagnostics-otel"]
    edited["models"]["providers"]["anthropic"]["models"][0]["cost"]["input"] = 9
    result = op.plan_revert(edited, plan.state)
    assert result.candidate["diagnostics"]["otel"]["endpoint"] == "http://mine:4318"
    assert result.candidate["models"]["providers"]["anthropic"]["models"][0]["cost"]["input"] == 9
    assert "diagnostics.enabled" not in json.dumps(result.conflicts)
    assert sorted(c.split(":")[0] for c in result.conflicts) == [
        "diagnostics.otel", "models.providers.anthropic.models[id=claude-sonnet-4]"]
    assert "diagnostics" in result.candidate and "enabled" not in result.candidate["diagnostics"]
    assert "plugins" not in result.candidate  # created by us, empty again


def test_revert_twice_is_a_no_op() -> None:
    config = {"gateway": {"mode": "local"}, "diagnostics": {"enabled": False}}
    applied, reverted = round_trip(config, spec())
    again = op.plan_revert(reverted.candidate, applied.state)
    assert again.changes == [] and again.conflicts == [] and again.candidate == config


def test_plugin_revision_change_asks_for_a_reload() -> None:
    first = apply({}, spec(pluginRevisions={"gate": "a"}))
    assert op.plugins_to_reload(spec(pluginRevisions={"gate": "a"}), None) == []  # first install: loads anyway
    assert op.plugins_to_reload(spec(pluginRevisions={"gate": "a"}), first.state) == []
    assert op.plugins_to_reload(spec(pluginRevisions={"gate": "b"}), first.state) == ["gate"]


# ------------------------------------------------------------------------------------ the OpenClaw CLI


@pytest.mark.parametrize("command, argv, env", [
    ("node /opt/openclaw/openclaw.mjs", ["node", "/opt/openclaw/openclaw.mjs"], {"OPENCLAW_CONFIG_PATH": "/c.json"}),
    ("docker exec -i openclaw-gateway node /app/dist/entry.js",
     ["docker", "exec", "-e", "OPENCLAW_CONFIG_PATH=/c.json", "-i", "openclaw-gateway", "node", "/app/dist/entry.js"], {}),
    ("sudo -n /usr/bin/podman exec claw openclaw",
     ["sudo", "-n", "/usr/bin/podman", "exec", "-e", "OPENCLAW_CONFIG_PATH=/c.json", "claw", "openclaw"], {}),
])
def test_environment_reaches_the_cli_even_in_a_container(command: str, argv: list[str], env: dict[str, str]) -> None:
    cli = op.OpenClawCli(command, 10, op.Redactor([]))
    assert cli.command_with_env({"OPENCLAW_CONFIG_PATH": "/c.json"}) == (argv, env)


def test_openclaw_answers_are_parsed_into_problems() -> None:
    patch_answer = {"ok": False, "errors": [{"kind": "schema", "message": "- diagnostics.otel.protocol: Invalid input"}]}
    validate_answer = {"ok": False, "issues": [{"path": "<root>", "message": "JSON5 parse failed"}]}
    assert op._problems(patch_answer) == ["diagnostics.otel.protocol: Invalid input"]
    assert op._problems(validate_answer) == ["<root>: JSON5 parse failed"]
    assert op.parse_json_output('warning: x\n{"ok": true}\n') == {"ok": True}
    not_found = {"ok": False, "error": {"type": "cli_error", "message": "file not found"}, "valid": False}
    assert op._problems(not_found) == ["file not found"]


# ------------------------------------------------------------------------------- secrets and spec


def test_masking_and_redaction() -> None:
    value = {"otel": {"headers": {"Authorization": "Bearer T0KEN-123"}, "endpoint": "http://x"},
             "apiKey": "sk-1", "maxTokens": 5, "nested": [{"token": "abc"}]}
    shown = op.mask(value)
    assert shown == {"otel": {"headers": {"Authorization": "********"}, "endpoint": "http://x"},
                     "apiKey": "********", "maxTokens": 5, "nested": [{"token": "********"}]}
    redact = op.Redactor(op.spec_secrets({"diagnostics": {"otel": {"headers": {"Authorization": "Bearer T0KEN-123"}}}}))
    assert redact("sent Bearer T0KEN-123 and T0KEN-123") == "sent ******** and ********"


@pytest.mark.parametrize("bad, message", [
    ({"version": 2}, "unsupported spec version"),
    ({"diagnostic": {}}, "diagnostic: unknown spec key"),
    ({"prices": {"a": {"m": {"input": 1, "output": 1, "cacheRead": 0}}}}, "prices.a.m.cacheWrite: required"),
    ({"prices": {"a": {"m": {"input": -1, "output": 1, "cacheRead": 0, "cacheWrite": 0}}}}, "prices.a.m.input"),
    ({"prices": {"a": {"m": {"input": True, "output": 1, "cacheRead": 0, "cacheWrite": 0}}}}, "prices.a.m.input"),
    ({"plugins": {"g": {"loadPath": ""}}}, "plugins.g.loadPath"),
    ({"verify": {"timeout": 3}}, "verify.timeout: unknown key"),
])
def test_spec_errors_name_the_key(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(op.PatchError, match=message):
        op.validate_spec(bad)


def test_json_equality_is_jsons() -> None:
    assert op.json_equal({"a": 1, "b": [1.0]}, {"b": [1], "a": 1.0})
    assert not op.json_equal(True, 1) and not op.json_equal(0, False) and not op.json_equal(None, {})


# ------------------------------------------------------------------------------- verification logic
# The real exporter never starts here (the official diagnostics-otel can't be installed offline, see
# test_openclaw_patch_verify.py for the real gateway); the decision on OpenClaw 2026.9.6's exporter-health
# records (dist/diagnostic-stability-*.mjs: {seq, ts, type, source, target, outcome}) is checked on answers
# of that shape.


class AnsweringCli(op.OpenClawCli):
    """An OpenClawCli whose answers are given: ``config get diagnostics`` and ``gateway stability``."""

    def __init__(self, diagnostics: dict[str, Any], events: list[dict[str, Any]]):
        super().__init__("openclaw", 5, op.Redactor(["T0KEN-123"]))
        self.diagnostics = diagnostics
        self.events = events

    def run(self, args, stdin=None, timeout=None, env=None):  # type: ignore[override]
        import subprocess

        if list(args[:2]) == ["config", "get"]:
            return subprocess.CompletedProcess(args, 0, json.dumps(self.diagnostics), "")
        if list(args[:2]) == ["gateway", "stability"]:
            return subprocess.CompletedProcess(args, 0, json.dumps({"events": self.events}), "")
        raise AssertionError(args)


def run_verify(events: list[dict[str, Any]], changed_at: Optional[float], diagnostics: Optional[dict] = None,
               **options: Any) -> list[str]:
    lines: list[str] = []
    the_spec = spec(verify={"timeoutSeconds": 1, "intervalSeconds": 0.2, **options})
    cli = AnsweringCli(diagnostics or {"enabled": True, "otel": dict(OTEL)}, events)
    op.verify(cli, the_spec, "2026-01-01T00:00:00Z", changed_at, lines.append, cli.redact)
    return lines


def exporter(outcome: str, ts: float, source: str = "diagnostics-otel", target: str = "metrics") -> dict[str, Any]:
    return {"seq": 3, "ts": ts * 1000, "type": "telemetry.exporter", "source": source, "target": target,
            "outcome": outcome, "transport": "otlp-http-protobuf", "mode": "configured"}


def test_fresh_started_exporter_passes() -> None:
    lines = run_verify([exporter("started", 1000.0)], changed_at=999.0)
    assert any("metrics exporter started" in line for line in lines)


@pytest.mark.parametrize("events, message", [
    ([exporter("started", 100.0)], "no fresh 'started' event"),                 # from before the change
    ([exporter("started", 1000.0, target="traces")], "no telemetry.exporter event from diagnostics-otel"),
    ([], "no telemetry.exporter event"),
    ([exporter("failure", 1000.0)], "metrics exporter reports failure"),
])
def test_missing_stale_or_failed_exporter_fails(events: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(op.PatchError, match=message):
        run_verify(events, changed_at=999.0)


def test_unchanged_file_accepts_the_running_exporter() -> None:
    assert run_verify([exporter("started", 100.0)], changed_at=None)


def test_config_get_must_show_our_otel_block() -> None:
    leftover = {"enabled": True, "otel": dict(OTEL, metricNamePrefix="claw.", headers={"a": "T0KEN-123"})}
    with pytest.raises(op.PatchError, match="metricNamePrefix is still set") as raised:
        run_verify([exporter("started", 1000.0)], changed_at=999.0, diagnostics=leftover)
    assert "T0KEN-123" not in str(raised.value)
    with pytest.raises(op.PatchError, match="otel.enabled is not true"):
        run_verify([], changed_at=999.0, diagnostics={"enabled": True, "otel": {"enabled": False}})


def test_a_file_that_already_conforms_is_never_rewritten() -> None:
    """Apply on a file that already has our values records them; revert then has nothing to do either."""
    conforming = apply({"gateway": {"mode": "local"}}, spec()).candidate
    plan = apply(conforming, spec())
    assert plan.changes == []
    reverted = op.plan_revert(conforming, plan.state)
    assert reverted.changes == [] and reverted.conflicts == [] and reverted.candidate == conforming


LOG_426 = """\
2026-12-03T19:41:04.900+00:00 [gateway] http server listening (2 plugins: diagnostics-otel, memory-core; 11.8s)
2026-12-03T19:42:48.518+00:00 [gateway] ready
2026-12-03T19:43:15.807+00:00 [reload] config change requires gateway restart (diagnostics.otel.endpoint)
2026-12-03T19:43:16.313+00:00 [gateway] restart mode: full process restart (spawned pid 421)
2026-12-03T19:43:33.023+00:00 [gateway] http server listening (2 plugins: diagnostics-otel, memory-core; 5.2s)
2026-12-03T19:43:33.358+00:00 [gateway] starting channels and sidecars...
2026-12-03T19:44:46.676+00:00 [gateway] ready
"""  # observed with openclaw 2026.4.26 (bundled diagnostics-otel) after an endpoint change


def stamp(text: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(text).timestamp()


def test_restart_with_the_plugin_then_ready_is_evidence() -> None:
    changed = stamp("2026-12-03T19:43:14+00:00")
    assert "5.2s" in (op.restarted_with_exporter(LOG_426, changed) or "")
    # Not ready yet: the plugin services (the exporter) start with the channels and sidecars.
    assert op.restarted_with_exporter(LOG_426.rsplit("\n", 2)[0], changed) is None
    # Only the startup before the change: says nothing about the new config.
    assert op.restarted_with_exporter(LOG_426, stamp("2026-12-03T19:50:00+00:00")) is None
    without = LOG_426.replace("(2 plugins: diagnostics-otel, memory-core; 5.2s)", "(1 plugin: memory-core; 5.2s)")
    assert op.restarted_with_exporter(without, changed) is None


def test_log_timestamps_parse_like_python_3_9_needs() -> None:
    assert op._line_time("2026-12-03T19:43:33.023+00:00 [gateway] x") == stamp("2026-12-03T19:43:33.023+00:00")
    assert op._line_time("2026-12-03T19:43:33Z [gateway] x") == stamp("2026-12-03T19:43:33+00:00")
    assert op._line_time("    at Object.<anonymous> (x.js:1:1)") is None
