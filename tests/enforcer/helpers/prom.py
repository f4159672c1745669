"""A real Prometheus 2.42 (Debian package) for tests: history backfilled with promtool, live samples
pushed with remote write, on a free loopback port with its own temporary storage."""
from __future__ import annotations

import bisect
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import requests

from tests.enforcer.helpers import remote_write
from tests.enforcer.helpers.ports import free_port, wait_http
from tests.support import tools

Labels = Mapping[str, str]
Series = Tuple[Labels, Sequence[Tuple[float, float]]]

COST = "openclaw_cost_usd_total"
TOKENS = "openclaw_tokens_total"

# Blocks must stay clear of the head block (reference: otel-prometheus.md §4): history older than this is
# backfilled, anything newer goes through remote write.
BACKFILL_MAX_AGE_S = 3 * 3600 + 600


def cost_labels(provider: str, model: str, **extra: str) -> Dict[str, str]:
    labels = {"__name__": COST, "openclaw_provider": provider, "openclaw_model": model,
              "openclaw_channel": "webchat"}
    labels.update(extra)
    return labels


#: The collector's by-model copy of each cost name (components/collector/render.py) and the labels it keeps.
BY_MODEL_NAMES = {COST: "openclaw_cost_usd_by_model_total",
                  "openclaw_cost_usd_USD_total": "openclaw_cost_usd_by_model_USD_total"}
BY_MODEL_KEEP = ("job", "instance", "openclaw_provider", "openclaw_model")


def by_model_series(history: Sequence[Series]) -> List[Series]:
    """The series the collector's metrics_transform processor adds to ``history``: per metric name, gateway
    (job, instance), provider and model, at every export time, the sum of the per-agent series the gateway
    exported then (a series counts from its first to its last sample, at its latest value). The real
    processor is tested against this rule in tests/components/collector/test_otelcol.py."""
    groups: Dict[Tuple[str, ...], List[List[Tuple[float, float]]]] = {}
    for labels, samples in history:
        name = BY_MODEL_NAMES.get(labels.get("__name__", ""))
        if name is None or not samples:
            continue
        key = (name,) + tuple(labels.get(k, "") for k in BY_MODEL_KEEP)
        groups.setdefault(key, []).append(sorted(samples))
    out: List[Series] = []
    for key, members in groups.items():
        stamps = sorted({t for member in members for t, _ in member})
        times = [[x for x, _ in member] for member in members]
        summed = []
        for t in stamps:
            total = 0.0
            for member, member_times in zip(members, times):
                if member_times[0] <= t <= member_times[-1]:
                    total += member[bisect.bisect_right(member_times, t) - 1][1]
            summed.append((t, round(total, 6)))
        labels = {"__name__": key[0]}
        labels.update({k: v for k, v in zip(BY_MODEL_KEEP, key[1:]) if v})
        out.append((labels, summed))
    return out


def token_labels(provider: str, model: str, token: str = "input", **extra: str) -> Dict[str, str]:
    labels = {"__name__": TOKENS, "openclaw_provider": provider, "openclaw_model": model,
              "openclaw_channel": "webchat", "openclaw_token": token}
    labels.update(extra)
    return labels


def counter_samples(start: float, end: float, step: float, events: Sequence[Tuple[float, float]],
                    resets: Sequence[float] = (), initial: float = 0.0) -> List[Tuple[float, float]]:
    """Cumulative counter samples every ``step`` s in [start, end], like an OTel SDK exporting a
    cumulative sum: ``events`` are (time, amount spent); at each time in ``resets`` the process restarts
    and the counter starts again from 0. The first sample already holds ``initial``."""
    events = sorted(events)
    resets = sorted(resets)
    samples: List[Tuple[float, float]] = []
    value = initial
    ei = ri = 0
    t = start
    while t <= end + 1e-9:
        # apply, in time order, everything that happened up to t
        while True:
            next_event = events[ei][0] if ei < len(events) else None
            next_reset = resets[ri] if ri < len(resets) else None
            candidates = [x for x in (next_event, next_reset) if x is not None and x <= t]
            if not candidates:
                break
            if next_reset is not None and next_reset <= t and (next_event is None or next_reset <= next_event):
                value = 0.0
                ri += 1
            else:
                value += events[ei][1]
                ei += 1
        samples.append((t, round(value, 6)))
        t += step
    return samples


def openmetrics(series: Iterable[Series]) -> str:
    """OpenMetrics text for promtool: one `# TYPE` per family, samples sorted by time, `# EOF`."""
    families: Dict[str, List[str]] = {}
    for labels, samples in series:
        name = labels["__name__"]
        family = name[: -len("_total")] if name.endswith("_total") else name
        lbl = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        lines = families.setdefault(family, [])
        for t, v in sorted(samples):
            lines.append(f"{name}{{{lbl}}} {v!r} {t:.3f}")
    out: List[str] = []
    for family, lines in families.items():
        out.append(f"# TYPE {family} counter")
        out.extend(lines)
    out.append("# EOF")
    return "\n".join(out) + "\n"


class PrometheusServer:
    """One Prometheus process. ``history`` series are split: samples older than BACKFILL_MAX_AGE_S go
    into TSDB blocks via promtool before start; newer ones are pushed through remote write after start."""

    def __init__(self, workdir: Path, history: Sequence[Series] = (), now: Optional[float] = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "prometheus.log"
        self.proc: Optional[subprocess.Popen] = None
        now = time.time() if now is None else now
        cutoff = now - BACKFILL_MAX_AGE_S
        self._old = [(lbl, [s for s in smp if s[0] < cutoff]) for lbl, smp in history]
        self._old = [(lbl, smp) for lbl, smp in self._old if smp]
        self._live = [(lbl, [s for s in smp if s[0] >= cutoff]) for lbl, smp in history]
        self._live = [(lbl, smp) for lbl, smp in self._live if smp]

    def start(self) -> "PrometheusServer":
        self.data_dir.mkdir(exist_ok=True)
        if self._old:
            om = self.workdir / "history.om"
            om.write_text(openmetrics(self._old), encoding="utf-8")
            res = subprocess.run([str(tools.promtool_bin()), "tsdb", "create-blocks-from", "openmetrics",
                                  str(om), str(self.data_dir)], capture_output=True, text=True, timeout=300)
            if res.returncode != 0:
                raise AssertionError(f"promtool backfill failed: {res.stdout}\n{res.stderr}")
        config = self.workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 15s\n", encoding="utf-8")
        self._spawn(config)
        if self._live:
            self.push(self._live)
        return self

    def _spawn(self, config: Path) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(tools.prometheus_bin()), f"--config.file={config}", f"--storage.tsdb.path={self.data_dir}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-remote-write-receiver",
             "--storage.tsdb.retention.time=30d", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
        log.close()
        wait_http(self.url + "/-/ready", timeout=60, proc=self.proc, log_path=self.log_path)

    def restart(self) -> None:
        """Start again on the same port and data dir (after stop())."""
        self._spawn(self.workdir / "prometheus.yml")

    def push(self, series: Sequence[Series]) -> None:
        """Remote-write samples (must be newer than the backfilled blocks and in time order per series).
        Sent in time-sorted chunks so the head's appendable window always moves forward."""
        flat = sorted(((t, i, v) for i, (_, smp) in enumerate(series) for t, v in smp))
        chunk: Dict[int, List[Tuple[float, float]]] = {}
        count = 0
        for t, i, v in flat:
            chunk.setdefault(i, []).append((t, v))
            count += 1
            if count >= 5000:
                remote_write.push(self.url, [(series[j][0], s) for j, s in chunk.items()])
                chunk, count = {}, 0
        if chunk:
            remote_write.push(self.url, [(series[j][0], s) for j, s in chunk.items()])

    def query(self, expr: str, at: Optional[float] = None) -> list:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        resp = requests.get(self.url + "/api/v1/query", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()["data"]["result"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
