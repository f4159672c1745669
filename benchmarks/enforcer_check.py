"""Benchmark: one `python -m enforcer check` against a real Prometheus 2.42 holding 10, 1,000 and 10,000
cost series with 24 h of history.

Measures, per series count: wall time of the whole check process (interpreter start included), the
spend query alone (in-process, server time + transfer), the check process's peak RSS (wait4 rusage), and
the number of HTTP requests the check made to Prometheus (read from Prometheus's own
prometheus_http_requests_total, so it cannot be fooled by the client). Targets: <= 0.5 s and <= 60 MB per
check, one query, flat as series grow.

Series shape: N series spread over 20 provider/model pairs (the rest of the label set varies by agent and
channel, as on a busy gateway), one sample every --interval seconds for 48 h 30 m, pushed through remote
write, with the collector's by-model sums beside them (one per pair). The check runs with the deployed
defaults, so it reads the sums; the same check without them (BUDGET_COST_BY_MODEL_SELECTOR=off) and the
per-series queries are measured too. Run:
    venv/bin/python benchmarks/enforcer_check.py [--counts 10,1000,10000] [--interval 60]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enforcer.prometheus import PrometheusClient, by_model_query, coverage_query, spend_query  # noqa: E402
from enforcer.settings import DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, DEFAULT_COST_SELECTOR  # noqa: E402
from tests.enforcer.helpers import remote_write  # noqa: E402
from tests.enforcer.helpers.prom import COST, PrometheusServer  # noqa: E402

PAIRS = 20
HISTORY_S = 48 * 3600 + 1800  # the window, the 24 h anchor lookback before it, and 30 min


def pair_labels(pair: int, name: str):
    return {"__name__": name, "openclaw_provider": f"provider{pair % 4}", "openclaw_model": f"model{pair}",
            "instance": "gateway:4318", "job": "openclaw-gateway"}


def series_labels(n: int):
    out = []
    for i in range(n):
        labels = pair_labels(i % PAIRS, COST)
        labels.update({"openclaw_agent": f"agent{i // PAIRS}", "openclaw_channel": "webchat"})
        out.append(labels)
    return out


def load(prom: PrometheusServer, n: int, interval: int, now: float) -> int:
    """Stream samples in time order through remote write: each request carries a few consecutive
    timestamps for every series (labels encoded once per series), and, as the collector's metrics_transform
    processor writes them beside, the by-model sums: per provider/model, the sum of its series at each
    timestamp (min(n, 20) more series)."""
    rng = random.Random(n)
    blocks = [remote_write.label_block(lbl) for lbl in series_labels(n)]
    pairs = min(n, PAIRS)
    sum_blocks = [remote_write.label_block(pair_labels(pair, DEFAULT_BY_MODEL_NAMES[0])) for pair in range(pairs)]
    values = [0.0] * n
    per_step = 3.0 / max(1, n) / (HISTORY_S / interval)  # about $3 spent in the window in total
    start = now - HISTORY_S
    steps = int(HISTORY_S // interval) + 1
    per_request = max(1, 50000 // n)  # timestamps per request
    total = 0
    for k0 in range(0, steps, per_request):
        stamps = [start + k * interval for k in range(k0, min(steps, k0 + per_request))]
        batch = []
        sums = [[0.0] * len(stamps) for _ in range(pairs)]
        for i in range(n):
            samples = []
            for k, t in enumerate(stamps):
                values[i] += per_step * rng.random() * 2
                samples.append((t, round(values[i], 9)))
                sums[i % PAIRS][k] += round(values[i], 9)
            batch.append((blocks[i], samples))
        for pair in range(pairs):
            batch.append((sum_blocks[pair], [(t, round(sums[pair][k], 9)) for k, t in enumerate(stamps)]))
        remote_write.push_encoded(prom.url, remote_write.encode_raw(batch))
        total += (n + pairs) * len(stamps)
    return total


def wait_for_compaction(prom: PrometheusServer, timeout: float = 900) -> float:
    """Wait until the head holds at most ~4 h (the rest compacted into blocks, as on a long-running
    Prometheus); queries during compaction would measure the compactor, not the enforcer."""
    import requests

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        head = requests.get(prom.url + "/api/v1/status/tsdb", timeout=30).json()["data"]["headStats"]
        if (int(head["maxTime"]) - int(head["minTime"])) <= 4 * 3600 * 1000:
            break
        time.sleep(2)
    time.sleep(2)
    return time.perf_counter() - started


def query_count(prom: PrometheusServer) -> float:
    """Spend queries served so far, from Prometheus's own /metrics (it does not scrape itself here)."""
    import requests

    text = requests.get(prom.url + "/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_check(env: dict) -> tuple:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "enforcer", "check"], cwd=str(REPO), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"check failed: {out}\n{err}")
    return wall, rusage.ru_maxrss / 1024.0, out.strip()


def bench(n: int, interval: int, repeats: int, workdir: Path) -> dict:
    now = time.time()
    prom = PrometheusServer(workdir / f"prom-{n}", (), now=now).start()
    try:
        t0 = time.perf_counter()
        samples = load(prom, n, interval, now)
        load_s = time.perf_counter() - t0
        compact_s = wait_for_compaction(prom)
        env = {"PATH": os.environ.get("PATH", ""), "PROMETHEUS_URL": prom.url, "MAX_DAILY_USD": "5",
               "BUDGET_STATE_DIR": str(workdir / f"state-{n}"), "BUDGET_FLAG_FILE": str(workdir / f"flag-{n}"),
               "BUDGET_METRICS_FILE": str(workdir / f"m-{n}.prom"), "BUDGET_HTTP_TIMEOUT": "120"}
        # A fresh state: the first check compares the sums with every cost series over the window (the
        # per-series query plus the sums, in one query); they agree, so the checks after it read the sums.
        coverage_walls = []
        for k in range(repeats):
            wall, peak, line = run_check(dict(env, BUDGET_STATE_DIR=str(workdir / f"state-{n}-fresh-{k}")))
            coverage_walls.append(wall)
            if "fallback=unverified sums_agree=yes" not in line:
                raise SystemExit(f"the first check did not find the sums covering the window: {line}")
        run_check(env)  # warm-up: page cache, first chunk reads; and the comparison for this state dir
        walls, rss, requests = [], [], []
        for _ in range(repeats):
            before = query_count(prom)
            wall, peak, line = run_check(env)
            after = query_count(prom)
            walls.append(wall)
            rss.append(peak)
            requests.append(after - before)
            if "fallback=" in line:
                raise SystemExit(f"the check did not use the by-model sums: {line}")
        # The check every VERIFY_SECONDS that also reads the cost series since the previous one: the same
        # state with its last comparison moved 6 minutes back.
        state = json.loads((workdir / f"state-{n}" / "state.json").read_text())
        verify_walls = []
        for k in range(repeats):
            verify_dir = workdir / f"state-{n}-verify-{k}"
            verify_dir.mkdir()
            checked_at = datetime.fromtimestamp(time.time() - 360, timezone.utc).isoformat(timespec="seconds")
            (verify_dir / "state.json").write_text(json.dumps(dict(state, by_model_checked_at=checked_at)))
            before = query_count(prom)
            wall, peak, line = run_check(dict(env, BUDGET_STATE_DIR=str(verify_dir)))
            requests.append(query_count(prom) - before)
            verify_walls.append(wall)
            rss.append(peak)
            if "fallback=" in line:
                raise SystemExit(f"the comparing check did not use the by-model sums: {line}")
            if not json.loads((verify_dir / "decisions.jsonl").read_text().splitlines()[-1])["source"]["verified"]:
                raise SystemExit("the comparing check did not compare")
        # The same check reading every cost series (no by-model sums: e.g. an existing collector without
        # the processor, or the first day after an upgrade).
        per_series_env = dict(env, BUDGET_COST_BY_MODEL_SELECTOR="off")
        run_check(per_series_env)
        per_series_walls, per_series_rss = [], []
        for _ in range(repeats):
            wall, peak, _line = run_check(per_series_env)
            per_series_walls.append(wall)
            per_series_rss.append(peak)
        # Warm: the same check inside a running process, as each iteration of `watch` pays it.
        from enforcer import runner, settings as settings_mod

        cfg = settings_mod.load(env)
        warm = []
        with open(os.devnull, "w") as devnull:
            for _ in range(repeats):
                t = time.perf_counter()
                runner.run_check(cfg, out=devnull, err=devnull)
                warm.append(time.perf_counter() - t)
        client = PrometheusClient(prom.url, 120)
        by_model_times, verify_times, coverage_times, qtimes, fast_times, plain_times = [], [], [], [], [], []
        plain = f"sum by (openclaw_provider, openclaw_model) (increase({DEFAULT_COST_SELECTOR}[86400s]))"
        for _ in range(repeats):
            for times, expr in ((by_model_times, by_model_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, 86400)),
                                (verify_times, by_model_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, 86400,
                                                              check_seconds=660)),
                                (coverage_times, coverage_query(DEFAULT_BY_MODEL_NAMES, DEFAULT_COST_NAMES, 86400)),
                                (qtimes, spend_query(DEFAULT_COST_NAMES, 86400)),
                                (fast_times, spend_query(DEFAULT_COST_NAMES, 86400, mode="fast")),
                                (plain_times, plain)):
                t = time.perf_counter()
                rows = client.query(expr)
                times.append(time.perf_counter() - t)
        return {"series": n, "samples": samples, "load_s": round(load_s, 1), "compact_wait_s": round(compact_s, 1), "rows": len(rows),
                "check_wall_s_median": round(statistics.median(walls), 3), "check_wall_s_max": round(max(walls), 3),
                "per_series_check_wall_s_median": round(statistics.median(per_series_walls), 3),
                "per_series_peak_rss_mb_max": round(max(per_series_rss), 1),
                "by_model_query_s_median": round(statistics.median(by_model_times), 4),
                "verify_query_s_median": round(statistics.median(verify_times), 4),
                "verify_check_wall_s_median": round(statistics.median(verify_walls), 3),
                "coverage_query_s_median": round(statistics.median(coverage_times), 3),
                "coverage_check_wall_s_median": round(statistics.median(coverage_walls), 3),
                "query_s_median": round(statistics.median(qtimes), 3),
                "fast_query_s_median": round(statistics.median(fast_times), 3),
                "plain_increase_s_median": round(statistics.median(plain_times), 3),
                "warm_check_s_median": round(statistics.median(warm), 3), "peak_rss_mb_max": round(max(rss), 1),
                "http_requests_per_check": sorted(set(requests)), "log_line": line}
    finally:
        prom.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10,1000,10000")
    parser.add_argument("--interval", type=int, default=60, help="seconds between samples of a series")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write results here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="enforcer-bench-") as tmp:
        for n in (int(x) for x in args.counts.split(",")):
            res = bench(n, args.interval, args.repeats, Path(tmp))
            res["loadavg_1m"] = round(os.getloadavg()[0], 1)
            results.append(res)
            print(json.dumps(res), flush=True)
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| cost series | samples in Prometheus | rows returned | `check` process wall (median / max) | "
          "check inside `watch` (median) | spend query alone (median) | `check` peak RSS | HTTP requests per check |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['series']:,} | {r['samples']:,} | {r['rows']} | {r['check_wall_s_median']:.3f} s / "
              f"{r['check_wall_s_max']:.3f} s | {r['warm_check_s_median']:.3f} s | "
              f"{r['by_model_query_s_median'] * 1000:.0f} ms | {r['peak_rss_mb_max']:.1f} MB | "
              f"{', '.join(str(int(x)) for x in r['http_requests_per_check'])} |")
    print()
    print("| cost series | by-model query | with the look-back (every 5 min) | `check` wall with it | "
          "whole-window comparison (first check) | `check` wall with it | "
          "per-series `exact` | per-series `fast` | plain `increase()` | `check` wall without sums |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['series']:,} | {r['by_model_query_s_median'] * 1000:.0f} ms | "
              f"{r['verify_query_s_median'] * 1000:.0f} ms | {r['verify_check_wall_s_median']:.3f} s | "
              f"{r['coverage_query_s_median'] * 1000:.0f} ms | {r['coverage_check_wall_s_median']:.3f} s | "
              f"{r['query_s_median'] * 1000:.0f} ms | {r['fast_query_s_median'] * 1000:.0f} ms | "
              f"{r['plain_increase_s_median'] * 1000:.0f} ms | {r['per_series_check_wall_s_median']:.3f} s |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
