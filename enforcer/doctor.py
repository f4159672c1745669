"""``doctor``: check the whole chain, one line per check with a fix hint.

Budgets fail silently far more often than they fail loudly (budget-anchors.md §3.5, §3.7), so the doctor
looks for the quiet failures too: no token series (nothing is exported), tokens without cost (a missing
price makes a model free as far as the budget knows), a flag path the enforcer cannot write, a Matrix
token that is valid but not in the room, and Prometheus disagreeing with OpenClaw's own ledger.
"""
from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

from enforcer import flagfile, windows
from enforcer.matrix import MatrixClient, MatrixError
from enforcer.prometheus import BackendError, PrometheusClient, Spend, fetch_spend
from enforcer.settings import Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"
DIVERGENCE_LIMIT = 0.10


@dataclass(frozen=True)
class CheckLine:
    status: str
    name: str
    detail: str
    fix: str = ""

    def render(self) -> str:
        text = f"[{self.status:>4}] {self.name}: {self.detail}"
        return text + (f" -> fix: {self.fix}" if self.fix and self.status != OK else "")


def zero_cost_query(tokens_selector: str, cost_selector: str, seconds: int) -> str:
    """Provider/models with tokens flowing but no cost increase in the same window."""
    by = "openclaw_provider, openclaw_model"
    return (f"(sum by ({by}) (increase({tokens_selector}[{seconds}s])) > 0) unless on ({by}) "
            f"(sum by ({by}) (increase({cost_selector}[{seconds}s])) > 0)")


def _is_free(settings: Settings, provider: str, model: str) -> bool:
    label = f"{provider}/{model}"
    return any(fnmatch.fnmatchcase(label, pat) or fnmatch.fnmatchcase(provider, pat) for pat in settings.free_models)


def check_prometheus(settings: Settings, client: PrometheusClient) -> List[CheckLine]:
    lines: List[CheckLine] = []
    ready, detail = client.ready()
    if not ready:
        return [CheckLine(FAIL, "prometheus reachable", f"{settings.prometheus_url}: {detail}",
                          "check PROMETHEUS_URL and that Prometheus runs (curl $PROMETHEUS_URL/-/ready)")]
    lines.append(CheckLine(OK, "prometheus reachable", f"{settings.prometheus_url} ready"))
    now = settings.now()
    try:
        tokens = client.query(f"count(last_over_time({settings.tokens_selector}[1d]))", at=now)
        cost_names = client.query(f"count by (__name__) (last_over_time({settings.cost_selector}[1d]))", at=now)
    except BackendError as exc:
        return lines + [CheckLine(FAIL, "prometheus query", exc.message, "see the Prometheus log")]
    n_tokens = int(tokens[0][1]) if tokens else 0
    if n_tokens == 0:
        lines.append(CheckLine(FAIL, "openclaw_tokens_total present", "no token series in Prometheus in the last 24 h",
                               "enable diagnostics-otel metrics in openclaw.json and check the collector's "
                               "remote write to Prometheus (--web.enable-remote-write-receiver)"))
    else:
        lines.append(CheckLine(OK, "openclaw_tokens_total present", f"{n_tokens} series"))
    names = sorted(labels.get("__name__", "?") for labels, _ in cost_names)
    if not names:
        lines.append(CheckLine(WARN, "cost series present", "no openclaw_cost_usd_total series yet (spend counts "
                               "as $0)", "normal before the first priced run; otherwise set per-model prices"))
    elif len(names) > 1:
        lines.append(CheckLine(WARN, "cost series present", f"both {', '.join(names)} exist; a provider/model "
                               "present under both makes the spend query fail",
                               "set BUDGET_COST_SELECTOR to the one your collector writes now"))
    else:
        lines.append(CheckLine(OK, "cost series present", names[0]))

    try:
        unpriced = client.query(zero_cost_query(settings.tokens_selector, settings.cost_selector, 86400), at=now)
    except BackendError as exc:
        lines.append(CheckLine(FAIL, "zero-cost anomaly", exc.message))
    else:
        missing = [(l.get("openclaw_provider", "?"), l.get("openclaw_model", "?"), v) for l, v in unpriced]
        flagged = [(p, m, v) for p, m, v in missing if not _is_free(settings, p, m)]
        free = [(p, m, v) for p, m, v in missing if _is_free(settings, p, m)]
        if flagged:
            detail = ", ".join(f"{p}/{m} ({v:,.0f} tokens, $0)" for p, m, v in sorted(flagged)[:10])
            lines.append(CheckLine(FAIL, "zero-cost anomaly", f"tokens but no cost in the last 24 h: {detail}",
                                   "add prices (input, output, cacheRead, cacheWrite) for these models in "
                                   "openclaw.json, or list them in BUDGET_FREE_MODELS if they are really free"))
        else:
            extra = f" ({len(free)} free by BUDGET_FREE_MODELS)" if free else ""
            lines.append(CheckLine(OK, "zero-cost anomaly", "every provider/model with tokens has cost" + extra))

    window = windows.compute(settings.window, now, settings.tz_name)
    try:
        # Not trusted: every cost series, compared with the by-model sums when there are any.
        spend = fetch_spend(client, settings.spend_selectors, window.seconds, window.end, settings.query_mode,
                            by_model=settings.by_model_selectors)
        lines.append(CheckLine(OK, "spend query", f"${spend.total:.2f} of ${settings.max_daily_usd:.2f} "
                               f"{window.describe()}; {len(spend.rows)} provider/model rows"))
    except BackendError as exc:
        lines.append(CheckLine(FAIL, "spend query", exc.message, "see the Prometheus log"))
        return lines
    if settings.by_model_selectors:
        lines.append(check_by_model(spend))
    return lines


def check_by_model(spend: Spend) -> CheckLine:
    """The fast path: are the collector's by-model series there, and do they measure what the cost series
    do over the whole window (``spend`` comes from coverage_query)?"""
    name = "by-model series"
    if spend.covered:
        return CheckLine(OK, name, f"measure the same ${spend.total:.2f} as every cost series over the window: "
                         "checks read the sums, and every cost series once in 5 minutes")
    if not any(a > 0 for _, a, _ in spend.differences):
        why = "no by-model sum measures " + ", ".join(label for label, _, _ in spend.differences[:5])
    else:
        detail = ", ".join(f"{label} ${a:.6f} by model, ${b:.6f} per series" for label, a, b in spend.differences[:5])
        why = f"they don't measure the same spend as the cost series: {detail}"
    return CheckLine(WARN, name, f"not used: {why}. Each check reads every cost series, which is correct but "
                     "grows with agents x channels x models",
                     "deploy the collector config of this version (its metrics_transform processor writes "
                     "openclaw_cost_usd_by_model_total before the batch processor); with collector mode existing, "
                     "merge the snippet's processor. After a collector change the sums are used once the window "
                     "holds no spend from before it")


def check_matrix(settings: Settings) -> List[CheckLine]:
    if not settings.matrix_enabled:
        return [CheckLine(WARN, "matrix", "MATRIX_HOMESERVER not set: decisions are not announced",
                          "set MATRIX_HOMESERVER, MATRIX_ROOM_ID and MATRIX_ACCESS_TOKEN(_FILE)")]
    client = MatrixClient(str(settings.matrix_homeserver), str(settings.matrix_access_token), settings.http_timeout)
    try:
        user = client.whoami()
    except MatrixError as exc:
        fix = ("create a new access token for the bot" if exc.errcode == "M_UNKNOWN_TOKEN"
               else "check MATRIX_HOMESERVER and that the homeserver runs")
        return [CheckLine(FAIL, "matrix token", str(exc), fix)]
    lines = [CheckLine(OK, "matrix token", f"valid for {user}")]
    try:
        rooms = client.joined_rooms()
    except MatrixError as exc:
        return lines + [CheckLine(FAIL, "matrix room", str(exc))]
    if settings.matrix_room_id in rooms:
        lines.append(CheckLine(OK, "matrix room", f"{user} is joined to {settings.matrix_room_id}"))
    else:
        lines.append(CheckLine(FAIL, "matrix room", f"{user} is not joined to {settings.matrix_room_id}",
                               f"invite {user} to the room and accept the invite (join) as the bot"))
    return lines


def _writable_dir(directory: Path) -> Optional[str]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".doctor.", dir=str(directory))
        os.close(fd)
        os.unlink(tmp)
        return None
    except OSError as exc:
        return exc.strerror or str(exc)


def check_files(settings: Settings) -> List[CheckLine]:
    lines: List[CheckLine] = []
    flag_dir = settings.flag_file.parent
    problem = _writable_dir(flag_dir) if flag_dir.is_dir() else "directory does not exist"
    if problem:
        lines.append(CheckLine(FAIL, "flag path writable", f"{flag_dir}: {problem}",
                               "create the directory and give the enforcer's user write access "
                               "(systemd: ReadWritePaths=)"))
    else:
        lines.append(CheckLine(OK, "flag path writable", str(settings.flag_file)))
    found = flagfile.read(settings.flag_file)
    if found.status == "absent":
        lines.append(CheckLine(OK, "flag file", "absent: the gate is open"))
    elif found.status == "ours":
        lines.append(CheckLine(OK, "flag file", f"present: the gate is closed ({(found.content or {}).get('reason')})"))
    else:
        lines.append(CheckLine(WARN, "flag file", f"present but not written by the enforcer ({found.status}"
                               f"{': ' + found.error if found.error else ''}); the gate is closed and the "
                               "enforcer will not remove it", f"remove {settings.flag_file} by hand if unintended"))
    state_dir = settings.state_dir
    if state_dir.is_dir():
        problem = _writable_dir(state_dir)
    else:
        try:
            state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            problem = None
        except OSError as exc:
            problem = exc.strerror or str(exc)
    lines.append(CheckLine(FAIL if problem else OK, "state dir writable",
                           f"{state_dir}{': ' + problem if problem else ''}",
                           "set BUDGET_STATE_DIR to a directory the enforcer's user owns"))
    if settings.metrics_file is not None:
        problem = _writable_dir(settings.metrics_file.parent) if settings.metrics_file.parent.is_dir() else \
            "directory does not exist"
        lines.append(CheckLine(FAIL if problem else OK, "metrics file writable",
                               f"{settings.metrics_file}{': ' + problem if problem else ''}",
                               "point BUDGET_METRICS_FILE into node_exporter's --collector.textfile.directory"))
    return lines


def openclaw_ledger(settings: Settings, run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                    attempts: int = 6, delay: float = 5.0) -> dict:
    """``openclaw gateway usage-cost --days 1 --json``; retried while cacheStatus is refreshing (the first
    answer after a start is all zeros with status "refreshing", openclaw.md §8)."""
    argv = list(settings.openclaw_cli) + ["gateway", "usage-cost", "--days", "1", "--json"]
    last: dict = {}
    for attempt in range(attempts):
        proc = run(argv, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()[:300]}")
        try:
            last = json.loads(proc.stdout[proc.stdout.index("{"):])
        except ValueError:
            raise RuntimeError(f"`{' '.join(argv)}` did not print JSON: {proc.stdout.strip()[:200]}") from None
        status = last.get("cacheStatus")
        status = status.get("status") if isinstance(status, dict) else status
        if status != "refreshing":
            return last
        if attempt + 1 < attempts:
            time.sleep(delay)
    last["_still_refreshing"] = True
    return last


def compare_ledger(prometheus_usd: float, ledger: dict) -> CheckLine:
    totals = ledger.get("totals") if isinstance(ledger.get("totals"), dict) else {}
    try:
        ledger_usd = float(totals.get("totalCost", 0.0))
    except (TypeError, ValueError):
        return CheckLine(FAIL, "openclaw ledger", f"unexpected totals: {str(totals)[:200]}")
    missing = totals.get("missingCostEntries") or 0
    name = "prometheus vs openclaw ledger"
    if ledger.get("_still_refreshing"):
        return CheckLine(WARN, name, f"OpenClaw's usage cache is still refreshing; ledger ${ledger_usd:.4f} "
                         f"vs Prometheus ${prometheus_usd:.4f} not comparable yet", "run doctor again in a minute")
    biggest = max(prometheus_usd, ledger_usd)
    divergence = abs(prometheus_usd - ledger_usd) / biggest if biggest >= 0.01 else 0.0
    detail = (f"today: Prometheus ${prometheus_usd:.4f}, OpenClaw ledger ${ledger_usd:.4f} "
              f"({divergence * 100:.1f}% apart)")
    if missing:
        return CheckLine(FAIL, name, detail + f"; OpenClaw reports {missing} usage entries without a price",
                         "add prices for every model in openclaw.json")
    if divergence > DIVERGENCE_LIMIT:
        return CheckLine(FAIL, name, detail + " — over 10%",
                         "check the collector pipeline (dropped exports?), BUDGET_TZ vs the gateway's time zone, "
                         "and that every agent exports metrics")
    return CheckLine(OK, name, detail)


def check_openclaw(settings: Settings, client: PrometheusClient) -> List[CheckLine]:
    if not settings.openclaw_cli:
        return []
    try:
        ledger = openclaw_ledger(settings)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return [CheckLine(FAIL, "openclaw ledger", str(exc), "check BUDGET_OPENCLAW_CLI (e.g. docker exec "
                          "openclaw-gateway node /app/dist/entry.js)")]
    now = settings.now()
    today = windows.compute("calendar-day", now, settings.tz_name)
    try:
        spend = fetch_spend(client, settings.spend_selectors, today.seconds, today.end, settings.query_mode)
    except BackendError as exc:
        return [CheckLine(FAIL, "prometheus vs openclaw ledger", exc.message)]
    return [compare_ledger(spend.total, ledger)]


def run(settings: Settings) -> List[CheckLine]:
    client = PrometheusClient(settings.prometheus_url, settings.http_timeout)
    lines = check_prometheus(settings, client)
    lines += check_matrix(settings)
    lines += check_files(settings)
    if lines[0].status != FAIL:
        lines += check_openclaw(settings, client)
    elif settings.openclaw_cli:
        lines.append(CheckLine(WARN, "prometheus vs openclaw ledger", "skipped: Prometheus unreachable"))
    return lines
