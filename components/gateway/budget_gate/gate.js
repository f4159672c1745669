// The budget gate's decision, kept free of OpenClaw so `node --test` can exercise it directly.
//
// The budget enforcer writes a JSON flag file while the budget is exhausted and removes it on recovery
// (contract: openclaw-usage tests/conventions, "Flag file"). The rule here is deliberately blunt:
//   - no file            -> pass (the gate is open);
//   - a well-formed file -> block, telling the user what was spent, the cap, when it resets and how an
//                           operator lifts the stop;
//   - anything else      -> block as well (fail closed): a half-written, unreadable or unexpected flag
//                           must never let a runaway agent through.
// The file is read on every call, never cached, so removing it re-opens the gate without a reload.

import { readFile } from "node:fs/promises";

export const DEFAULT_FLAG_FILE = "/tmp/openclaw-budget-exceeded";

// Category OpenClaw records for analytics; the block reason itself is internal and never shown.
const CATEGORY = "cost_limit";

// Appended for the model of a run in progress: it reads the block reason as the tool's result.
const TOOL_CALL_ADVICE = "Stop working on this task and tell the user about the budget stop; do not call any more tools.";

const WINDOW_WORDS = {
  "rolling-24h": "rolling 24-hour window",
  "calendar-day": "calendar day",
};

/** Returns the `before_agent_run` decision for the flag at `flagFile`. Never throws. */
export async function decide(flagFile, { read = readFile } = {}) {
  let text;
  try {
    text = await read(flagFile, "utf8");
  } catch (err) {
    if (err && err.code === "ENOENT") return { outcome: "pass" };
    return failClosed(flagFile, `cannot be read (${(err && err.code) || String(err)})`);
  }
  const parsed = parseFlag(text);
  if (!parsed.ok) return failClosed(flagFile, parsed.problem);
  return {
    outcome: "block",
    reason: "budget flag present",
    message: blockedMessage(parsed.flag),
    category: CATEGORY,
  };
}

/**
 * Returns the `before_tool_call` decision: `{block: true, blockReason}` while the flag exists (the model of
 * a run already in progress gets the reason as the tool's result), otherwise undefined, which OpenClaw
 * treats as no decision. Never throws.
 */
export async function decideToolCall(flagFile, options = {}) {
  const decision = await decide(flagFile, options);
  if (decision.outcome === "pass") return undefined;
  const message = decision.message.replace("new agent runs are refused", "tool calls are refused");
  return { block: true, blockReason: `${message}\n${TOOL_CALL_ADVICE}` };
}

/** Checks the flag file's text against the contract; returns {ok, flag} or {ok: false, problem}. */
export function parseFlag(text) {
  let flag;
  try {
    flag = JSON.parse(text);
  } catch {
    return { ok: false, problem: text.trim() === "" ? "is empty" : "is not valid JSON" };
  }
  if (flag === null || typeof flag !== "object" || Array.isArray(flag)) {
    return { ok: false, problem: "is not a JSON object" };
  }
  const problems = [];
  if (flag.version !== 1) problems.push(`unsupported version ${JSON.stringify(flag.version)}`);
  if (flag.state !== "blocked") problems.push(`unexpected state ${JSON.stringify(flag.state)}`);
  if (!isAmount(flag.cap_usd)) problems.push("cap_usd is not a number");
  if (flag.spent_usd != null && !isAmount(flag.spent_usd)) problems.push("spent_usd is not a number");
  if (flag.resets_at != null && !isInstant(flag.resets_at)) problems.push("resets_at is not an ISO-8601 time");
  for (const key of ["reason", "window", "timezone", "lift_hint"]) {
    if (flag[key] != null && typeof flag[key] !== "string") problems.push(`${key} is not a string`);
  }
  if (problems.length > 0) return { ok: false, problem: `has an unexpected shape: ${problems.join(", ")}` };
  return { ok: true, flag };
}

/** The text users see when a run is refused because the budget is exhausted. */
export function blockedMessage(flag) {
  const window = WINDOW_WORDS[flag.window] || flag.window || "budget window";
  const spent = flag.spent_usd == null ? "unknown" : usd(flag.spent_usd);
  const lines = ["Budget stop: new agent runs are refused by the budget enforcer."];
  if (flag.reason) lines.push(`Reason: ${sentence(flag.reason)}`);
  lines.push(`Spent: ${spent} of the ${usd(flag.cap_usd)} cap (${window}).`);
  lines.push(resetsLine(flag));
  lines.push(
    flag.lift_hint
      ? `To lift the stop earlier, an operator can run \`${flag.lift_hint}\`.`
      : "To lift the stop earlier, an operator must use the budget enforcer on the gateway host.",
  );
  return lines.join("\n");
}

// For a rolling window the enforcer's resets_at is the latest instant all current spend has left the
// window; the stop may lift earlier, as soon as spend falls back under the cap. A calendar day is exact.
function resetsLine(flag) {
  if (!flag.resets_at) return "Resets: unknown; new runs stay refused until the budget enforcer lifts the stop.";
  const when = formatInstant(flag.resets_at, flag.timezone);
  if (flag.window === "rolling-24h") {
    return `Resets: as spend from the last 24 hours falls back under the cap, at the latest ${when}.`;
  }
  if (flag.window === "calendar-day") return `Resets: ${when}, when a new budget day starts.`;
  return `Resets: ${when}.`;
}

/** `iso` as "YYYY-MM-DD HH:MM <zone>" in `timeZone` (an IANA name); UTC when the zone is unknown. */
export function formatInstant(iso, timeZone) {
  const when = new Date(iso);
  const zone = isTimeZone(timeZone) ? timeZone : "UTC";
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone: zone,
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    })
      .formatToParts(when)
      .map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${zone}`;
}

function failClosed(flagFile, problem) {
  return {
    outcome: "block",
    reason: "budget flag unreadable",
    category: CATEGORY,
    message: [
      `Budget stop: new agent runs are refused because the budget flag file ${flagFile} exists but ${problem}.`,
      "The budget gate fails closed: no new runs start while that file exists.",
      "An operator should check the budget enforcer (`python -m enforcer status`) and fix or remove the file.",
    ].join("\n"),
  };
}

function isAmount(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function isInstant(value) {
  return typeof value === "string" && !Number.isNaN(Date.parse(value));
}

function isTimeZone(name) {
  if (typeof name !== "string" || name === "") return false;
  try {
    new Intl.DateTimeFormat("en-GB", { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

function usd(amount) {
  return `$${amount.toFixed(2)}`;
}

function sentence(text) {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}
