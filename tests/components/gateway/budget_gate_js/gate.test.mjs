// Unit tests of the budget gate plugin (components/gateway/budget_gate), run with `node --test` by
// tests/components/gateway/test_budget_gate.py. The real-gateway behaviour is covered by
// test_budget_gate_e2e.py; these pin the decision for every kind of flag file and the exact wording.

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const pluginDir = fileURLToPath(new URL("../../../../components/gateway/budget_gate/", import.meta.url));
const { DEFAULT_FLAG_FILE, blockedMessage, decide, decideToolCall, formatInstant, parseFlag } = await import(
  join(pluginDir, "gate.js")
);
const plugin = (await import(join(pluginDir, "index.js"))).default;

// What the enforcer writes (flag file contract in the team conventions).
const VALID_FLAG = {
  version: 1,
  state: "blocked",
  reason: "daily budget exceeded",
  spent_usd: 5.123,
  cap_usd: 5.0,
  window: "rolling-24h",
  since: "2026-12-03T19:00:00+01:00",
  resets_at: "2026-12-04T09:30:00+01:00",
  timezone: "Europe/Rome",
  lift_hint: "python -m enforcer allow --for 2h",
  written_at: "2026-12-03T19:00:00+01:00",
};

let dir;
let flagFile;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "budget-gate-"));
  flagFile = join(dir, "openclaw-budget-exceeded");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const writeFlag = (content) =>
  writeFileSync(flagFile, typeof content === "string" ? content : JSON.stringify(content));

describe("decide", () => {
  test("passes when the flag file is absent", async () => {
    assert.deepEqual(await decide(flagFile), { outcome: "pass" });
  });

  test("passes when the flag's directory is absent too", async () => {
    assert.deepEqual(await decide(join(dir, "missing", "flag")), { outcome: "pass" });
  });

  test("blocks with the full user message when a valid flag exists", async () => {
    writeFlag(VALID_FLAG);
    const decision = await decide(flagFile);
    assert.equal(decision.outcome, "block");
    assert.equal(decision.category, "cost_limit");
    assert.equal(typeof decision.reason, "string");
    assert.equal(
      decision.message,
      [
        "Budget stop: new agent runs are refused by the budget enforcer.",
        "Reason: daily budget exceeded.",
        "Spent: $5.12 of the $5.00 cap (rolling 24-hour window).",
        "Resets: as spend from the last 24 hours falls back under the cap, at the latest 2026-12-04 09:30 Europe/Rome.",
        "To lift the stop earlier, an operator can run `python -m enforcer allow --for 2h`.",
      ].join("\n"),
    );
  });

  test("reads the flag on every call, so removing it re-opens the gate", async () => {
    writeFlag(VALID_FLAG);
    assert.equal((await decide(flagFile)).outcome, "block");
    rmSync(flagFile);
    assert.equal((await decide(flagFile)).outcome, "pass");
    writeFlag(VALID_FLAG);
    assert.equal((await decide(flagFile)).outcome, "block");
  });

  for (const [name, content, problem] of [
    ["empty", "", "is empty"],
    ["truncated (half-written)", '{"version": 1, "state": "bl', "is not valid JSON"],
    ["not JSON", "blocked\n", "is not valid JSON"],
    ["a JSON array", "[1, 2]", "is not a JSON object"],
    ["JSON null", "null", "is not a JSON object"],
  ]) {
    test(`fails closed on a corrupt flag: ${name}`, async () => {
      writeFlag(content);
      const decision = await decide(flagFile);
      assert.equal(decision.outcome, "block");
      assert.equal(decision.category, "cost_limit");
      assert.equal(
        decision.message,
        [
          `Budget stop: new agent runs are refused because the budget flag file ${flagFile} exists but ${problem}.`,
          "The budget gate fails closed: no new runs start while that file exists.",
          "An operator should check the budget enforcer (`python -m enforcer status`) and fix or remove the file.",
        ].join("\n"),
      );
    });
  }

  for (const [name, change, problem] of [
    ["unknown version", { version: 2 }, "unsupported version 2"],
    ["missing version", { version: undefined }, "unsupported version undefined"],
    ["state not blocked", { state: "ok" }, 'unexpected state "ok"'],
    ["cap as a string", { cap_usd: "5" }, "cap_usd is not a number"],
    ["missing cap", { cap_usd: undefined }, "cap_usd is not a number"],
    ["spent as a string", { spent_usd: "5.12" }, "spent_usd is not a number"],
    ["resets_at not a time", { resets_at: "tomorrow" }, "resets_at is not an ISO-8601 time"],
    ["lift_hint not a string", { lift_hint: 42 }, "lift_hint is not a string"],
  ]) {
    test(`fails closed on a wrong-shape flag: ${name}`, async () => {
      writeFlag({ ...VALID_FLAG, ...change });
      const decision = await decide(flagFile);
      assert.equal(decision.outcome, "block");
      assert.match(decision.message, new RegExp(`exists but has an unexpected shape: .*${escape(problem)}`));
      assert.match(decision.message, /fails closed/);
    });
  }

  test("fails closed when the flag path is unreadable (a directory)", async () => {
    mkdirSync(flagFile);
    const decision = await decide(flagFile);
    assert.equal(decision.outcome, "block");
    assert.match(decision.message, new RegExp(`${escape(flagFile)} exists but cannot be read \\(EISDIR\\)\\.`));
  });

  test("fails closed when reading is denied", async (t) => {
    writeFlag(VALID_FLAG);
    chmodSync(flagFile, 0o000);
    // root reads anything, so permission bits alone can't make the file unreadable there: inject EACCES.
    const read =
      process.getuid && process.getuid() === 0
        ? async () => {
            throw Object.assign(new Error("permission denied"), { code: "EACCES" });
          }
        : undefined;
    const decision = await decide(flagFile, read ? { read } : {});
    assert.equal(decision.outcome, "block");
    assert.match(decision.message, /exists but cannot be read \(EACCES\)\./);
  });

  test("never throws, even on a non-Error rejection", async () => {
    const decision = await decide(flagFile, {
      read: async () => {
        throw "boom";
      },
    });
    assert.equal(decision.outcome, "block");
    assert.match(decision.message, /cannot be read \(boom\)/);
  });
});

describe("blockedMessage", () => {
  test("says when spend is unknown and when the reset time is unknown", () => {
    const message = blockedMessage({
      ...VALID_FLAG,
      reason: "Prometheus unreachable and policy is closed",
      spent_usd: null,
      resets_at: null,
    });
    assert.match(message, /^Reason: Prometheus unreachable and policy is closed\.$/m);
    assert.match(message, /^Spent: unknown of the \$5\.00 cap \(rolling 24-hour window\)\.$/m);
    assert.match(message, /^Resets: unknown; new runs stay refused until the budget enforcer lifts the stop\.$/m);
  });

  test("names the calendar-day window and converts the reset time to the flag's zone", () => {
    const message = blockedMessage({
      ...VALID_FLAG,
      window: "calendar-day",
      timezone: "America/New_York",
      resets_at: "2026-12-05T05:00:00+00:00",
    });
    assert.match(message, /^Spent: \$5\.12 of the \$5\.00 cap \(calendar day\)\.$/m);
    assert.match(message, /^Resets: 2026-12-05 00:00 America\/New_York, when a new budget day starts\.$/m);
  });

  test("shows an unknown window name as it is", () => {
    const message = blockedMessage({ ...VALID_FLAG, window: "weekly" });
    assert.match(message, /^Spent: \$5\.12 of the \$5\.00 cap \(weekly\)\.$/m);
    assert.match(message, /^Resets: 2026-12-04 09:30 Europe\/Rome\.$/m);
  });

  test("works without the optional fields", () => {
    const message = blockedMessage({ version: 1, state: "blocked", cap_usd: 2 });
    assert.equal(
      message,
      [
        "Budget stop: new agent runs are refused by the budget enforcer.",
        "Spent: unknown of the $2.00 cap (budget window).",
        "Resets: unknown; new runs stay refused until the budget enforcer lifts the stop.",
        "To lift the stop earlier, an operator must use the budget enforcer on the gateway host.",
      ].join("\n"),
    );
  });
});

describe("formatInstant", () => {
  test("shows local wall time in the given IANA zone", () => {
    assert.equal(formatInstant("2026-12-04T23:00:00Z", "Europe/Rome"), "2026-12-05 00:00 Europe/Rome");
    assert.equal(formatInstant("2026-07-01T12:00:00+00:00", "Europe/Rome"), "2026-07-01 14:00 Europe/Rome");
  });

  test("falls back to UTC for a missing or unknown zone", () => {
    assert.equal(formatInstant("2026-12-04T23:00:00+01:00", undefined), "2026-12-04 22:00 UTC");
    assert.equal(formatInstant("2026-12-04T23:00:00+01:00", "Mars/Olympus"), "2026-12-04 22:00 UTC");
  });
});

describe("decideToolCall", () => {
  test("makes no decision when the flag file is absent", async () => {
    assert.equal(await decideToolCall(flagFile), undefined);
  });

  test("blocks with the budget message and tells the model to stop", async () => {
    writeFlag(VALID_FLAG);
    const decision = await decideToolCall(flagFile);
    assert.equal(decision.block, true);
    const lines = decision.blockReason.split("\n");
    assert.equal(lines[0], "Budget stop: tool calls are refused by the budget enforcer.");
    assert.equal(lines[2], "Spent: $5.12 of the $5.00 cap (rolling 24-hour window).");
    assert.equal(
      lines.at(-1),
      "Stop working on this task and tell the user about the budget stop; do not call any more tools.",
    );
  });

  test("fails closed on a corrupt flag", async () => {
    writeFlag("{half");
    const decision = await decideToolCall(flagFile);
    assert.equal(decision.block, true);
    assert.match(decision.blockReason, /tool calls are refused because the budget flag file .* is not valid JSON/);
  });
});

describe("parseFlag", () => {
  test("accepts the contract's example", () => {
    assert.deepEqual(parseFlag(JSON.stringify(VALID_FLAG)), { ok: true, flag: VALID_FLAG });
  });
});

describe("plugin entry", () => {
  const fakeApi = (pluginConfig) => {
    const api = { pluginConfig, hooks: [], logs: [] };
    api.on = (name, handler) => api.hooks.push({ name, handler });
    api.logger = {
      info: (msg) => api.logs.push(["info", msg]),
      warn: (msg) => api.logs.push(["warn", msg]),
    };
    return api;
  };

  test("matches the manifest id and gates runs and tool calls on the configured flag", async () => {
    assert.equal(plugin.id, "openclaw-budget-gate");
    const api = fakeApi({ flagFile });
    plugin.register(api);
    assert.deepEqual(api.hooks.map((h) => h.name), ["before_agent_run", "before_tool_call"]);
    const [run, tool] = api.hooks.map((h) => h.handler);
    assert.deepEqual(await run({}, {}), { outcome: "pass" });
    assert.equal(await tool({ toolName: "exec" }, {}), undefined);
    writeFlag(VALID_FLAG);
    assert.equal((await run({}, {})).outcome, "block");
    assert.equal((await tool({ toolName: "exec" }, {})).block, true);
    assert.deepEqual(api.logs.map(([level]) => level), ["info"]);
    assert.match(api.logs[0][1], /new agent runs and tool calls are refused/);
  });

  test("leaves tool calls alone when blockToolCalls is false", () => {
    const api = fakeApi({ flagFile, blockToolCalls: false });
    plugin.register(api);
    assert.deepEqual(api.hooks.map((h) => h.name), ["before_agent_run"]);
    assert.match(api.logs[0][1], /new agent runs are refused/);
  });

  test("uses the contract's default path without config, and warns when its directory is missing", () => {
    assert.equal(DEFAULT_FLAG_FILE, "/tmp/openclaw-budget-exceeded");
    const api = fakeApi(undefined);
    plugin.register(api);
    assert.match(api.logs[0][1], /\/tmp\/openclaw-budget-exceeded/);
    const missing = fakeApi({ flagFile: join(dir, "not-mounted", "flag") });
    plugin.register(missing);
    assert.deepEqual(missing.logs.map(([level]) => level), ["info", "warn"]);
    assert.match(missing.logs[1][1], /does not exist, so the budget stop can never engage/);
  });
});

function escape(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
