"""Realistic openclaw.json files (JSON5, as people write them) for the patch tool's real-CLI tests.

Every one is valid for OpenClaw 2026.9.6 as it stands (checked by the tests before patching).  ``{PLUGIN_DIR}``
is replaced by a directory that holds another local plugin, where a config loads one.  Secrets are obviously
fake.
"""
from __future__ import annotations

CONFIGS: dict[str, str] = {
    # A hand-written minimal file: comments, trailing commas, unquoted keys, single quotes.
    "minimal-json5": """\
// ~/.openclaw/openclaw.json, written by hand
{
  gateway: { mode: 'local', port: 18789, }, // loopback only
  /* the one provider */
  models: {
    providers: {
      anthropic: { apiKey: 'sk-ant-FAKE-0001', },
    },
  },
  agents: { defaults: { model: { primary: 'anthropic/claude-sonnet-4' } } },
}
""",
    # An allowlist exists: diagnostics-otel and the gate must be appended to it (and only there).
    "allowlist": """\
{
  // Only these plugins load.
  "gateway": {"mode": "local"},
  "plugins": {
    "allow": ["memory-core", "anthropic"],
    "entries": {"memory-core": {"enabled": true}},
  },
  "models": {"providers": {"anthropic": {"apiKey": "sk-ant-FAKE-0002",
    "models": [{"id": "claude-sonnet-4", "name": "Claude Sonnet 4", "contextWindow": 200000, "maxTokens": 64000,
                "reasoning": true, "input": ["text", "image"]}]}}},
}
""",
    # An empty allowlist is no allowlist for OpenClaw: appending would switch every other plugin off.
    "empty-allowlist": """\
{
  gateway: {mode: "local"},
  plugins: {allow: [], deny: ["browser"]},
  models: {providers: {openai: {apiKey: "sk-FAKE-openai-0003"}}},
}
""",
    # A custom provider: baseUrl, apiKey, headers, api; models with many extra fields; a new model is added.
    "custom-provider": """\
{
  gateway: {mode: "local", auth: {mode: "token", token: "FAKE-gateway-token-0004"}},
  models: {
    mode: "merge",
    providers: {
      lab: {
        baseUrl: "http://127.0.0.1:8000/v1",
        apiKey: "sk-lab-FAKE-0004",
        api: "openai-completions",
        headers: {"X-Team": "research", "Authorization": "Bearer FAKE-upstream-0004"},
        models: [
          {id: "qwen3-32b", name: "Qwen3 32B", reasoning: true, input: ["text"], contextWindow: 131072,
           maxTokens: 8192, headers: {"X-Route": "gpu-a"}, compat: {supportsDeveloperRole: false}},
          {id: "llama-3.3-70b", name: "Llama 3.3 70B", contextWindow: 65536, maxTokens: 4096,
           cost: {input: 0.1, output: 0.2, cacheRead: 0, cacheWrite: 0}},
        ],
      },
    },
  },
  agents: {defaults: {model: {primary: "lab/qwen3-32b"}, heartbeat: {every: "0m"}}},
}
""",
    # An earlier OTLP setup: the leftovers that silently defeat the pipeline must not survive.
    "diagnostics-leftovers": """\
{
  gateway: {mode: "local"},
  diagnostics: {
    enabled: true,
    flags: ["telegram.http"],        // not ours: must stay
    otel: {
      enabled: true,
      endpoint: "http://old-collector:4318",
      metricsEndpoint: "http://old-backend:9999/v1/metrics",   // would keep metrics going to the old backend
      metricNamePrefix: "claw.",                               // would rename openclaw.* in Prometheus
      headers: {"x-api-key": "FAKE-old-otlp-key-0005"},
      sampleRate: 0.2,
      logsExporter: "stdout",
      captureContent: false,
    },
  },
  models: {providers: {anthropic: {apiKey: "sk-ant-FAKE-0005"}}},
}
""",
    # OTLP disabled explicitly, diagnostics off: both are managed and restored by revert.
    "diagnostics-off": """\
{
  gateway: {mode: "local"},
  diagnostics: {enabled: false, otel: {enabled: false}},
  plugins: {entries: {"diagnostics-otel": {enabled: false}}},
  models: {providers: {google: {apiKey: "FAKE-google-0006", models: [
    {id: "gemini-2.5-flash", name: "Gemini 2.5 Flash", cost: {input: 0.3, output: 2.5, cacheRead: 0.075, cacheWrite: 0}},
  ]}}},
}
""",
    # Tiered pricing on an existing model: our flat price replaces the cost block as a whole.
    "tiered-cost": """\
{
  gateway: {mode: "local"},
  models: {providers: {anthropic: {apiKey: "sk-ant-FAKE-0007", models: [
    {id: "claude-sonnet-4", name: "Claude Sonnet 4", contextWindow: 1000000,
     cost: {input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75,
            tieredPricing: [{input: 6, output: 22.5, cacheRead: 0.6, cacheWrite: 7.5, range: [200000]}]}},
    {id: "claude-haiku-4", name: "Claude Haiku 4"},
  ]}}},
}
""",
    # Ids with slashes and a provider id with a dot (OpenClaw's path syntax needs brackets for it).
    "odd-ids": """\
{
  gateway: {mode: "local"},
  models: {providers: {
    openrouter: {apiKey: "sk-or-FAKE-0008", models: [
      {id: "google/gemini-2.5-flash", name: "Gemini 2.5 Flash (OpenRouter)"},
      {id: "meta-llama/llama-3.3-70b-instruct:free", name: "Llama free"},
    ]},
    "local.vllm": {baseUrl: "http://127.0.0.1:8001/v1", apiKey: "FAKE-vllm-0008", models: [
      {id: "mistral-small", name: "Mistral Small", maxTokens: 2048},
    ]},
  }},
}
""",
    # Another local plugin already loaded from a path, with its own entry: load.paths gets ours appended.
    "other-local-plugin": """\
{
  gateway: {mode: "local"},
  plugins: {
    load: {paths: ["{PLUGIN_DIR}"]},
    entries: {"team-helper": {enabled: true, config: {}}},
  },
  models: {providers: {anthropic: {apiKey: "sk-ant-FAKE-0009"}}},
}
""",
    # Environment substitution and a SecretRef: raw text must survive as written (never resolved values).
    "env-and-secretref": """\
{
  gateway: {mode: "local"},
  secrets: {providers: {default: {source: "env"}}},
  models: {providers: {
    anthropic: {apiKey: "${ANTHROPIC_API_KEY}"},
    openai: {apiKey: {source: "env", provider: "default", id: "OPENAI_API_KEY"}},
  }},
}
""",
    # A larger, lived-in file: channels, sessions, tools, logging, meta written by OpenClaw itself.
    "lived-in": """\
{
  "meta": {"lastTouchedVersion": "2026.9.6"},
  "gateway": {"mode": "local", "port": 18789, "bind": "loopback", "reload": {"mode": "hybrid"}},
  "logging": {"level": "info"},
  "discovery": {"mdns": {"mode": "off"}},
  "channels": {"telegram": {"enabled": true, "botToken": "123456:FAKE-telegram-0011", "dmPolicy": "pairing"}},
  "session": {"dmScope": "per-channel-peer"},
  "models": {"mode": "merge", "providers": {
    "anthropic": {"apiKey": "sk-ant-FAKE-0011", "models": [
      {"id": "claude-sonnet-4", "name": "Sonnet", "contextWindow": 200000}]},
    "openrouter": {"apiKey": "sk-or-FAKE-0011"}}},
  "agents": {"defaults": {"model": {"primary": "anthropic/claude-sonnet-4",
                                    "fallbacks": ["openrouter/google/gemini-2.5-flash"]},
                          "heartbeat": {"every": "30m"}}},
  "plugins": {"entries": {"memory-core": {"enabled": true}}},
}
""",
    # Numbers JSON5 allows and JSON writes differently: 4e5, hex, leading/trailing dots.
    "json5-numbers": """\
{
  gateway: {mode: "local", port: 0x4965},   // 18789
  models: {providers: {lab: {baseUrl: 'http://127.0.0.1:8002/v1', apiKey: 'FAKE-0012', models: [
    {id: 'big', name: 'Big', contextWindow: 4e5, maxTokens: 8192, cost: {input: .5, output: 1.5, cacheRead: 0, cacheWrite: 0,}},
  ]}}},
}
""",
}


def spec_for(gate_dir: str, flag_file: str, *, bearer: str | None = None) -> dict:
    """The spec the component renders for a typical stack, pointed at local paths."""
    otel = {
        "enabled": True,
        "endpoint": "http://127.0.0.1:4318",
        "protocol": "http/protobuf",
        "serviceName": "openclaw-gateway",
        "metrics": True,
        "traces": False,
        "logs": False,
        "flushIntervalMs": 30000,
    }
    if bearer:
        otel["headers"] = {"Authorization": f"Bearer {bearer}"}
    return {
        "version": 1,
        "diagnostics": {"enabled": True, "otel": otel},
        "plugins": {
            "diagnostics-otel": {"enabled": True},
            "openclaw-budget-gate": {
                "enabled": True,
                "hooks": {"allowConversationAccess": True},
                "config": {"flagFile": flag_file, "blockToolCalls": True},
                "loadPath": gate_dir,
            },
        },
        "prices": {
            "anthropic": {
                "claude-sonnet-4": {"name": "Claude Sonnet 4", "input": 3.0, "output": 15.0, "cacheRead": 0.3,
                                    "cacheWrite": 3.75},
            },
            "google": {
                "gemini-2.5-flash": {"name": "Gemini 2.5 Flash", "input": 0, "output": 0, "cacheRead": 0,
                                     "cacheWrite": 0},
            },
            "lab": {"qwen3-32b": {"input": 0.2, "output": 0.6, "cacheRead": 0.02, "cacheWrite": 0.2}},
            "openrouter": {
                "google/gemini-2.5-flash": {"name": "Gemini 2.5 Flash (OpenRouter)", "input": 0.15, "output": 0.6,
                                            "cacheRead": 0.0375, "cacheWrite": 0.15},
            },
            "local.vllm": {"mistral-small": {"input": 0.01, "output": 0.02, "cacheRead": 0, "cacheWrite": 0}},
        },
        "otelPlugin": {"check": False},
        "verify": {"enabled": False},
    }
