"""Property tests of the patch tool's pure merge and revert over generated openclaw.json files.

For any config and spec: apply then revert gives back exactly the original (no key lost, none added), apply
changes nothing outside the managed keys, a second apply changes nothing, and a later apply with another
spec still reverts to the original.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.gateway import openclaw_patch as op

PLUGIN_IDS = ["diagnostics-otel", "openclaw-budget-gate", "memory-core", "team-helper"]
PROVIDERS = ["anthropic", "openrouter", "lab", "local.vllm"]
MODEL_IDS = ["claude-sonnet-4", "google/gemini-2.5-flash", "m1", "m2"]
KEYS = st.sampled_from(["mode", "port", "token", "level", "x-y", "a.b", "enabled", "name", "$schema"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=False, allow_infinity=False,
                                                                                  width=32), st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(KEYS, inner, max_size=3)), max_leaves=8)


@st.composite
def models(draw: Any) -> list[dict[str, Any]]:
    ids = draw(st.lists(st.sampled_from(MODEL_IDS), unique=True, max_size=3))
    return [
        {"id": model_id, "name": draw(st.text(min_size=1, max_size=6)),
         **draw(st.dictionaries(st.sampled_from(["contextWindow", "maxTokens", "reasoning", "cost", "headers"]), JSON,
                                max_size=3))}
        for model_id in ids
    ]


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    config: dict[str, Any] = draw(st.dictionaries(st.sampled_from(["gateway", "agents", "channels", "meta"]), JSON,
                                                  max_size=3))
    if draw(st.booleans()):
        diagnostics: dict[str, Any] = draw(st.dictionaries(st.sampled_from(["enabled", "flags", "cacheTrace"]), JSON,
                                                           max_size=2))
        if draw(st.booleans()):
            diagnostics["otel"] = draw(st.dictionaries(
                st.sampled_from(["enabled", "endpoint", "metricsEndpoint", "metricNamePrefix", "headers"]), JSON,
                max_size=4))
        config["diagnostics"] = diagnostics
    if draw(st.booleans()):
        plugins: dict[str, Any] = {}
        if draw(st.booleans()):
            plugins["allow"] = draw(st.lists(st.sampled_from(PLUGIN_IDS), unique=True, max_size=3))
        if draw(st.booleans()):
            plugins["entries"] = draw(st.dictionaries(st.sampled_from(PLUGIN_IDS), st.dictionaries(
                st.sampled_from(["enabled", "hooks", "config"]), JSON, max_size=2), max_size=3))
        if draw(st.booleans()):
            plugins["load"] = {"paths": draw(st.lists(st.sampled_from(["/p/a", "/p/gate", "/p/b"]), unique=True,
                                                      max_size=2))}
        config["plugins"] = plugins
    if draw(st.booleans()):
        providers = {}
        for provider in draw(st.lists(st.sampled_from(PROVIDERS), unique=True, max_size=3)):
            entry: dict[str, Any] = {"apiKey": draw(st.text(max_size=6))}
            if draw(st.booleans()):
                entry["models"] = draw(models())
            if draw(st.booleans()):
                entry["headers"] = draw(JSON)
            providers[provider] = entry
        config["models"] = {"providers": providers, **draw(st.dictionaries(st.just("mode"), st.just("merge")))}
    return config


PRICE = st.fixed_dictionaries({
    "input": st.floats(0, 100), "output": st.floats(0, 100), "cacheRead": st.floats(0, 10),
    "cacheWrite": st.integers(0, 10),
}, optional={"name": st.text(min_size=1, max_size=5)})


@st.composite
def specs(draw: Any) -> dict[str, Any]:
    otel = {"enabled": True, "endpoint": draw(st.sampled_from(["http://c:4318", "http://d:4318"])),
            "protocol": "http/protobuf", "metrics": True, "flushIntervalMs": draw(st.integers(1000, 60000))}
    if draw(st.booleans()):
        otel["headers"] = {"Authorization": "Bearer FAKE"}
    plugins: dict[str, Any] = {}
    for plugin_id in draw(st.lists(st.sampled_from(PLUGIN_IDS[:2]), unique=True, max_size=2)):
        plugins[plugin_id] = {"enabled": True}
        if plugin_id == "openclaw-budget-gate":
            plugins[plugin_id].update(hooks={"allowConversationAccess": True}, config={"flagFile": "/f"},
                                      loadPath=draw(st.sampled_from(["/p/gate", "/p/new"])))
    prices = draw(st.dictionaries(st.sampled_from(PROVIDERS), st.dictionaries(st.sampled_from(MODEL_IDS), PRICE,
                                                                              max_size=2), max_size=3))
    diagnostics: dict[str, Any] = {"otel": otel}
    if draw(st.booleans()):
        diagnostics["enabled"] = True
    return {"version": 1, "diagnostics": diagnostics, "plugins": plugins, "prices": prices}


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _usable(config: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Configs the tool refuses on purpose (plugins.enabled false, deny) are covered elsewhere."""
    try:
        op._preconditions(config, spec)
    except op.PatchError:
        return False
    return True


SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(configs(), specs())
def test_apply_then_revert_loses_no_key(config: dict[str, Any], spec: dict[str, Any]) -> None:
    if not _usable(config, spec):
        return
    original = copy.deepcopy(config)
    applied = op.plan_apply(config, spec, None)
    assert same(config, original)  # pure: the input is not modified
    reverted = op.plan_revert(applied.candidate, applied.state)
    assert reverted.conflicts == []
    assert same(reverted.candidate, original)


@SETTINGS
@given(configs(), specs())
def test_apply_touches_only_managed_keys_and_is_idempotent(config: dict[str, Any], spec: dict[str, Any]) -> None:
    if not _usable(config, spec):
        return
    applied = op.plan_apply(config, spec, None)
    candidate = applied.candidate
    # Outside the managed keys, nothing changed.
    for key in set(config) | set(candidate):
        if key not in ("diagnostics", "plugins", "models"):
            assert same(config.get(key), candidate.get(key)), key
    diag_before = {k: v for k, v in (config.get("diagnostics") or {}).items() if k not in spec["diagnostics"]}
    diag_after = {k: v for k, v in candidate.get("diagnostics", {}).items() if k not in spec["diagnostics"]}
    assert same(diag_before, diag_after)
    assert same(candidate["diagnostics"]["otel"], spec["diagnostics"]["otel"])  # the block as a whole
    plugins_before = config.get("plugins") or {}
    plugins_after = candidate.get("plugins") or {}
    for plugin_id, entry in (plugins_before.get("entries") or {}).items():
        if plugin_id not in spec["plugins"]:
            assert same(plugins_after["entries"][plugin_id], entry)
    allow = plugins_before.get("allow")
    if allow:
        assert plugins_after["allow"][: len(allow)] == allow
        assert set(plugins_after["allow"]) == set(allow) | set(spec["plugins"])
    else:
        assert plugins_after.get("allow") == allow
    providers_before = (config.get("models") or {}).get("providers") or {}
    providers_after = (candidate.get("models") or {}).get("providers") or {}
    for provider, entry in providers_before.items():
        after = providers_after[provider]
        assert same({k: v for k, v in entry.items() if k != "models"}, {k: v for k, v in after.items() if k != "models"})
        priced = spec["prices"].get(provider, {})
        for index, model in enumerate(entry.get("models", [])):
            assert same({k: v for k, v in model.items() if k != "cost" or model["id"] not in priced},
                        {k: v for k, v in after["models"][index].items() if k != "cost" or model["id"] not in priced})
    for provider, models_ in spec["prices"].items():
        if not models_:
            continue
        by_id = {m["id"]: m for m in providers_after[provider]["models"]}
        for model_id, price in models_.items():
            assert by_id[model_id]["cost"] == {k: price[k] for k in ("input", "output", "cacheRead", "cacheWrite")}
    # A second apply changes nothing.
    again = op.plan_apply(candidate, spec, applied.state)
    assert again.changes == [] and same(again.candidate, candidate)


@SETTINGS
@given(configs(), specs(), specs())
def test_reapply_with_another_spec_still_reverts_to_the_original(config: dict[str, Any], first: dict[str, Any],
                                                                  second: dict[str, Any]) -> None:
    if not (_usable(config, first) and _usable(config, second)):
        return
    one = op.plan_apply(config, first, None)
    if not _usable(one.candidate, second):
        return
    two = op.plan_apply(one.candidate, second, one.state)
    assert two.conflicts == []
    assert same(op.plan_revert(two.candidate, two.state).candidate, config)
