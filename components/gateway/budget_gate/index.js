// openclaw-budget-gate: refuses new agent runs while the budget enforcer's flag file exists.
//
// OpenClaw's `before_agent_run` hook runs before the prompt is sent to the model and is the only hook
// that can veto a run. A runaway loop often lives inside one long run, though (model -> tool -> model ...),
// which `before_agent_run` never sees again; `before_tool_call` refuses each of its tool calls too, so the
// model gets the budget stop as the tool's result and the run winds down. The host fails closed on a throw
// or a timeout of either hook; `decide` never throws and only reads one small file.
//
// The default export is a plain plugin entry object: exactly the shape `definePluginEntry` from
// `openclaw/plugin-sdk/plugin-entry` returns ({id, name, description, register}). Importing the SDK
// would tie this dependency-free directory to how the gateway aliases its SDK for load-path plugins;
// the plain object is what the loader consumes either way.

import { existsSync } from "node:fs";
import { dirname } from "node:path";

import { DEFAULT_FLAG_FILE, decide, decideToolCall } from "./gate.js";

export default {
  id: "openclaw-budget-gate",
  name: "Budget gate",
  description:
    "Refuses new agent runs, and the tool calls of runs in progress, while the budget enforcer's flag file exists (openclaw-usage).",
  register(api) {
    // plugins.entries.openclaw-budget-gate.config.flagFile (validated by openclaw.plugin.json).
    const flagFile = (api.pluginConfig && api.pluginConfig.flagFile) || DEFAULT_FLAG_FILE;
    // plugins.entries.openclaw-budget-gate.config.blockToolCalls (default true).
    const blockToolCalls = !(api.pluginConfig && api.pluginConfig.blockToolCalls === false);
    api.on("before_agent_run", () => decide(flagFile));
    if (blockToolCalls) api.on("before_tool_call", () => decideToolCall(flagFile));
    api.logger.info(
      `budget gate active: new agent runs${blockToolCalls ? " and tool calls" : ""} are refused while ${flagFile} exists`,
    );
    // A missing directory usually means a missing bind mount: the enforcer's flag could never appear.
    if (!existsSync(dirname(flagFile))) {
      api.logger.warn(`budget gate: ${dirname(flagFile)} does not exist, so the budget stop can never engage`);
    }
  },
};
