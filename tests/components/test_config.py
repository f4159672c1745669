"""Stack config validation: good configs load, each bad one fails naming the key and the problem."""
from __future__ import annotations

import copy
import json
from typing import Any, Callable

import pytest

from components.config import ConfigError, StackConfig, load_from_stack_file, parse_stack_config
from tests.support.pulumi_mocks import FAKE_SECRETS, stack_file_config
from tests.support.tools import REPO_ROOT


def workstation_raw() -> dict[str, Any]:
    config, _ = stack_file_config("workstation")
    return {key.split(":", 1)[1]: json.loads(value) for key, value in config.items()}


def parse(raw: dict[str, Any]) -> StackConfig:
    return parse_stack_config(raw, secret_paths_ok=lambda path: True)


def problems_of(mutate: Callable[[dict[str, Any]], None]) -> list[str]:
    raw = workstation_raw()
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    return caught.value.problems


class TestWorkstationStack:
    def test_reference_stack_is_valid(self) -> None:
        cfg = parse(workstation_raw())
        assert cfg.gateway.container == "openclaw-gateway"
        assert cfg.hosts["muletto"].address == "192.168.1.100"
        assert cfg.enforcer.daily_cap_usd == 5.0
        assert cfg.prices["anthropic"]["claude-sonnet-4"].cache_write == 3.75
        assert cfg.prices["openrouter"]["google/gemini-2.5-flash"].cache_read == 0.0375

    def test_flag_is_the_file_the_gate_reads(self) -> None:
        cfg = parse(workstation_raw())
        assert cfg.enforcer.host == cfg.gateway.host
        assert cfg.gate_flag_path == "/home/node/.openclaw/budget/openclaw-budget-exceeded"
        assert cfg.gate_container_dir == "/home/node/.openclaw/plugins/openclaw-budget-gate"

    def test_derived_endpoints(self) -> None:
        cfg = parse(workstation_raw())
        assert cfg.otlp_endpoint == "http://192.168.1.111:4318"
        assert cfg.enforcer_prometheus_url == "http://192.168.1.111:9090"

    def test_secrets_are_hidden_in_reprs(self) -> None:
        cfg = parse(workstation_raw())
        text = repr(cfg) + str(cfg.model_dump())
        assert FAKE_SECRETS["accessToken"] not in text
        assert "FAKE-TEST-KEY" not in text

    def test_stack_file_without_secrets_names_each_missing_secret(self) -> None:
        with pytest.raises(ConfigError) as caught:
            load_from_stack_file(str(REPO_ROOT / "Pulumi.workstation.yaml"))
        keys = sorted(p.split(":")[0] for p in caught.value.problems)
        assert keys == ["hosts.muletto.privateKey", "hosts.workstation.privateKey", "matrix.accessToken"]

    def test_review_render_masks_unset_secrets(self) -> None:
        unset: list[str] = []
        cfg = load_from_stack_file(str(REPO_ROOT / "Pulumi.workstation.yaml"), unset_secrets=unset)
        assert unset == ["hosts.muletto.privateKey", "hosts.workstation.privateKey", "matrix.accessToken"]
        assert cfg.matrix.access_token is not None
        assert cfg.matrix.access_token.get_secret_value() == "********"


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = raw
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


# (id, mutation, expected key at the start of a problem line, words the line must contain)
BAD_CONFIGS = [
    ("negative-cap", _set("enforcer.dailyCapUsd", -1), "enforcer.dailyCapUsd", "greater than 0"),
    ("zero-cap", _set("enforcer.dailyCapUsd", 0), "enforcer.dailyCapUsd", "greater than 0"),
    ("cap-not-a-number", _set("enforcer.dailyCapUsd", "five"), "enforcer.dailyCapUsd", "valid number"),
    ("warn-ratio-above-1", _set("enforcer.warnRatio", 1.5), "enforcer.warnRatio", "less than 1"),
    ("warn-ratio-negative", _set("enforcer.warnRatio", -0.1), "enforcer.warnRatio", "greater than 0"),
    ("malformed-matrix-url", _set("matrix.homeserver", "matrix.lan"), "matrix.homeserver", "URL"),
    ("malformed-otlp-url", _set("otlp.endpoint", "htp//x"), "otlp.endpoint", "URL"),
    ("unknown-key", _set("enforcer.dailyCap", 5), "enforcer.dailyCap", "unknown key"),
    ("unknown-section", _set("budget", {"cap": 5}), "budget", "unknown top-level key"),
    ("missing-matrix-token", _delete("matrix.accessToken"), "matrix.accessToken", "missing secret"),
    ("missing-ssh-key", _delete("hosts.muletto.privateKey"), "hosts.muletto.privateKey", "missing secret"),
    ("price-empty-model-id", _set("prices.anthropic", {" ": {"input": 1, "output": 1, "cacheRead": 0, "cacheWrite": 0}}),
     "prices.anthropic", "empty model id"),
    ("price-missing-field", _delete("prices.anthropic.claude-sonnet-4.cacheWrite"),
     "prices.anthropic.claude-sonnet-4.cacheWrite", "required"),
    ("price-negative", _set("prices.anthropic.claude-sonnet-4.input", -3), "prices.anthropic.claude-sonnet-4.input",
     "greater than or equal to 0"),
    ("unknown-time-zone", _set("enforcer.timezone", "Mars/Olympus"), "enforcer.timezone", "unknown time zone"),
    ("bad-window", _set("enforcer.window", "weekly"), "enforcer.window", "rolling-24h"),
    ("bad-backend-policy", _set("enforcer.onBackendError", "ignore"), "enforcer.onBackendError", "hold"),
    ("unknown-host-reference", _set("gateway.host", "nas"), "gateway.host", "unknown host 'nas'"),
    ("collector-latest-tag", _set("collector.version", "latest"), "collector.version", "pinned version"),
    ("collector-bad-bind", _set("collector.bindAddress", "999.1.1.1"), "collector.bindAddress", "IP address"),
    ("collector-port-clash", _set("collector.healthPort", 4318), "collector.healthPort", "clashes with otlpPort"),
    ("remote-write-without-prometheus", _delete("collector.prometheusUrl"), "collector.prometheusUrl",
     "required when mode is 'remote-write'"),
    ("otlp-grpc", _set("otlp.protocol", "grpc"), "otlp.protocol", "http/protobuf"),
    ("flush-too-fast", _set("otlp.flushIntervalMs", 10), "otlp.flushIntervalMs", "greater than or equal to 1000"),
    ("metrics-off", _set("otlp.metrics", False), "otlp.metrics", "must be true"),
    ("bad-room-id", _set("matrix.roomId", "#room:matrix.lan"), "matrix.roomId", "room id"),
    ("relative-config-path", _set("gateway.configPath", "openclaw.json"), "gateway.configPath", "absolute path"),
    ("enforcer-on-other-host", _set("enforcer.host", "workstation"), "enforcer.host", "set enforcer.host to 'muletto'"),
    ("flag-not-mounted", _set("enforcer.flagFile", "/tmp/openclaw-budget-exceeded"), "enforcer.flagFile",
     "not inside any directory the gateway container mounts"),
    ("gate-dir-not-mounted", _set("gate.hostDir", "/opt/gate"), "gate.hostDir", "not inside any directory"),
    ("bad-ssh-port", _set("hosts.muletto.port", 70000), "hosts.muletto.port", "less than or equal to 65535"),
    ("bad-apply-mode", _set("gateway.apply", "reboot"), "gateway.apply", "hot-reload"),
]


@pytest.mark.parametrize(("mutate", "key", "words"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_naming_the_key(mutate: Callable[[dict[str, Any]], None], key: str, words: str) -> None:
    problems = problems_of(mutate)
    matching = [p for p in problems if p.startswith(f"{key}:")]
    assert matching, f"no problem names {key!r}: {problems}"
    assert any(words in p for p in matching), f"{key!r} problem does not say {words!r}: {matching}"


def test_every_problem_is_reported_at_once() -> None:
    def several(raw: dict[str, Any]) -> None:
        raw["enforcer"]["dailyCapUsd"] = -1
        raw["enforcer"]["timezone"] = "Nowhere/Land"
        raw["matrix"]["homeserver"] = "not a url"

    problems = problems_of(several)
    assert {p.split(":")[0] for p in problems} >= {"enforcer.dailyCapUsd", "enforcer.timezone", "matrix.homeserver"}


def test_plaintext_secret_is_rejected() -> None:
    raw = workstation_raw()
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, secret_paths_ok=lambda path: path[0] != "matrix")
    assert any(p.startswith("matrix.accessToken: must be a secret") for p in caught.value.problems)


def test_secret_in_stack_file_must_be_encrypted(tmp_path) -> None:
    text = (REPO_ROOT / "Pulumi.workstation.yaml").read_text()
    text = text.replace("    roomId:", "    accessToken: plain-text-token\n    roomId:")
    stack_file = tmp_path / "Pulumi.leaky.yaml"
    stack_file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_from_stack_file(str(stack_file), unset_secrets=[])
    assert any(p.startswith("matrix.accessToken: must be a secret") for p in caught.value.problems)
    assert "plain-text-token" not in str(caught.value)


def test_problem_lines_do_not_echo_secret_values() -> None:
    raw = workstation_raw()
    raw["matrix"]["accessToken"] = ["not", "a", "string", FAKE_SECRETS["accessToken"]]
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert FAKE_SECRETS["accessToken"] not in str(caught.value)


def test_wrongly_typed_secret_is_not_echoed() -> None:
    raw = workstation_raw()
    raw["matrix"]["accessToken"] = 123456789
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert any(p.startswith("matrix.accessToken:") for p in caught.value.problems)
    assert "123456789" not in str(caught.value)


def test_models_are_immutable() -> None:
    cfg = parse(workstation_raw())
    with pytest.raises(Exception):
        cfg.enforcer.daily_cap_usd = 500  # type: ignore[misc]


def test_config_is_not_shared_between_parses() -> None:
    raw = workstation_raw()
    before = copy.deepcopy(raw)
    parse(raw)
    assert raw == before
