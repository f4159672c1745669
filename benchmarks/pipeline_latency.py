"""Benchmark: how long from a message that crosses the cap until the flag closes the gate.

The chain is the real one (tests/support/metrics_pipeline.py): OpenClaw 2026.4.26 answers a ``chat.send``
message with the fake model (0.006 USD), its diagnostics-otel exporter pushes OTLP every flushIntervalMs to
the ocb-built collector running our rendered config, whose batch processor forwards after at most its
timeout to Prometheus 2.42 by remote write; ``python -m enforcer watch --interval N`` checks every N seconds
and writes the flag.

Per repetition: the enforcer starts with a cap half a message above the spend so far (fresh state and flag),
its first check must say ok, then one message is sent and these moments are recorded (wall clock).  The
enforcer's start and the message are shifted by random delays (up to one check interval, up to one export
interval) so the checks don't stay in phase with the exporter and batch timers from one repetition to the next:

* ``sent``: the ``chat.send`` CLI call starts;       ``model``: the fake model receives the completion request;
* ``run end``: the gateway's end of the run (``endedAt`` of ``agent.wait``), when OpenClaw records the usage;
* ``series``: Prometheus first returns the new cost total (polled every 50 ms);
* ``flag``: the flag file appears (polled every 20 ms).

The delay that matters for overshoot is ``run end -> flag``: the cost counter moves at the end of the run,
and the gate closes for new runs at ``flag``.  Its bound is flushIntervalMs (the exporter is periodic) +
batch timeout (the collector holds data up to that long) + check interval, plus small fixed costs (the OTLP
export and remote write, one query and the check itself; no interpreter start, ``watch`` keeps running).
``model -> flag`` adds the end of the run after the model answered.

Run:  venv/bin/python benchmarks/pipeline_latency.py [--repeats 5] [--flush-ms 1000] [--batch-s 1]
      [--interval 1] [--seed 1] [--json out.json]
Needs the tools of tests/setup/*.sh and tests/e2e/toolchain.sh (collector).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from enforcer.settings import DEFAULT_COST_SELECTOR  # noqa: E402
from tests.support.metrics_pipeline import USD_PER_MESSAGE, MetricsPipeline, environment_summary, total  # noqa: E402

EPSILON = 1e-9


def enforcer_env(prom_url: str, workdir: Path, cap: float) -> Dict[str, str]:
    for sub in ("state", "flag"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PROMETHEUS_URL": prom_url,
        "MAX_DAILY_USD": repr(cap),
        "BUDGET_WARN_RATIO": "0.99",
        "BUDGET_STATE_DIR": str(workdir / "state"),
        "BUDGET_FLAG_FILE": str(workdir / "flag" / "openclaw-budget-exceeded"),
        "BUDGET_HTTP_TIMEOUT": "10",
    }


def wait_journal(state_dir: Path, count: int, timeout: float) -> List[dict]:
    path = state_dir / "decisions.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError(f"enforcer made fewer than {count} decisions in {timeout}s")


class Poller(threading.Thread):
    """Records the first wall-clock time ``probe()`` is true (``interval`` between probes)."""

    def __init__(self, probe, interval: float) -> None:
        super().__init__(daemon=True)
        self.probe, self.interval = probe, interval
        self.at: Optional[float] = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.probe():
                    self.at = time.time()
                    return
            except Exception:  # a transient query failure: try again
                pass
            self.stop_event.wait(self.interval)


def one_repetition(pipe: MetricsPipeline, workdir: Path, interval: float, index: int,
                   rng: random.Random) -> Dict[str, float]:
    assert pipe.prom is not None and pipe.gateway is not None and pipe.fake is not None
    spent = total(pipe.query(DEFAULT_COST_SELECTOR))
    cap = spent + USD_PER_MESSAGE / 2
    env = enforcer_env(pipe.prom.url, workdir, cap)
    flag = Path(env["BUDGET_FLAG_FILE"])
    # Random phases: without them the loop locks onto the export/batch timers (each repetition starts right
    # after the previous flag, i.e. right after a batch landed) and every check falls just after new data.
    time.sleep(rng.uniform(0, interval))
    watch = subprocess.Popen([sys.executable, "-m", "enforcer", "watch", "--interval", str(interval)],
                             cwd=str(REPO), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        first = wait_journal(workdir / "state", 1, timeout=60)[0]
        if first["blocked"] or flag.exists():
            raise AssertionError(f"repetition {index}: blocked before the message: {first}")
        target = spent + USD_PER_MESSAGE
        series = Poller(lambda: total(pipe.query(DEFAULT_COST_SELECTOR)) >= target - EPSILON, 0.05)
        flagged = Poller(flag.exists, 0.02)
        time.sleep(rng.uniform(0, max(pipe.flush_interval_ms / 1000, pipe.batch_timeout_seconds)))
        completions_before = pipe.fake.completion_count()
        sent = time.time()
        series.start()
        flagged.start()
        run = pipe.gateway.send_message(f"benchmark message {index}")
        flagged.join(timeout=180)
        series.join(timeout=5)
        series.stop_event.set()
        flagged.stop_event.set()
        if flagged.at is None or series.at is None:
            raise AssertionError(f"repetition {index}: series={series.at} flag={flagged.at}\n{pipe.logs()}")
        model = pipe.fake.completion_requests()[completions_before].received_at
        # The gateway's own end-of-run time (agent.wait's endedAt): the usage, hence the cost, is recorded
        # when the run ends, so this is where the pipeline's delay starts.
        ended = float(run.wait_result.get("endedAt") or 0) / 1000 or run.finished_at
        return {
            "sent_to_accepted_s": run.accepted_at - sent,
            "sent_to_model_s": model - sent,
            "model_to_run_end_s": ended - model,
            "run_end_to_series_s": series.at - ended,
            "series_to_flag_s": flagged.at - series.at,
            "run_end_to_flag_s": flagged.at - ended,
            "model_to_flag_s": flagged.at - model,
            "sent_to_flag_s": flagged.at - sent,
        }
    finally:
        watch.send_signal(signal.SIGTERM)
        try:
            watch.wait(timeout=30)
        except subprocess.TimeoutExpired:
            watch.kill()
            watch.wait()


def summarize(rows: List[Dict[str, float]]) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--flush-ms", type=int, default=1000, help="diagnostics.otel.flushIntervalMs")
    parser.add_argument("--batch-s", type=float, default=1.0, help="collector batch timeout (seconds)")
    parser.add_argument("--interval", type=float, default=1.0, help="enforcer watch --interval (seconds)")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random phase shifts")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="pipeline-latency-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        with MetricsPipeline(work / "pipeline", args.flush_ms, args.batch_s) as pipe:
            assert pipe.gateway is not None
            startup = time.monotonic() - started
            print(f"pipeline up in {startup:.0f}s; warming up (the first message is slow)", flush=True)
            warm = pipe.gateway.send_message("warm-up")
            pipe.wait_for(DEFAULT_COST_SELECTOR, lambda v: total(v) >= USD_PER_MESSAGE - EPSILON, 120, "warm-up cost")
            print(f"warm-up message: {warm.finished_at - warm.sent_at:.1f}s", flush=True)
            rows = []
            for i in range(args.repeats):
                row = one_repetition(pipe, work / f"enforcer-{i}", args.interval, i, rng)
                rows.append(row)
                print(f"#{i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)

    bound = args.flush_ms / 1000 + args.batch_s + args.interval
    result = {
        "settings": {"flush_interval_ms": args.flush_ms, "batch_timeout_s": args.batch_s,
                     "check_interval_s": args.interval, "repeats": args.repeats, "seed": args.seed},
        "environment": environment_summary(),
        "startup_s": startup,
        "warmup_message_s": warm.finished_at - warm.sent_at,
        "bound_s": bound,
        "rows": rows,
        "summary": summarize(rows),
    }
    print(f"\nrun end -> flag: bound flushIntervalMs + batch timeout + check interval = {bound:.1f}s (+ fixed costs)")
    for key, stats in result["summary"].items():
        print(f"  {key:24s} median {stats['median']:6.2f}s  min {stats['min']:6.2f}s  max {stats['max']:6.2f}s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
