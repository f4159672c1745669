"""Spend windows: rolling 24 hours, or the calendar day since local midnight in BUDGET_TZ.

PromQL has no time zones (otel-prometheus.md §4), so the enforcer computes the window here and hands
Prometheus a range in seconds evaluated at an explicit time. The reset instant is computed the same way,
so the time shown to users is exactly the boundary the query uses (budget-anchors.md §3.9).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Optional

from zoneinfo import ZoneInfo

ROLLING_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Window:
    kind: str  # "rolling-24h" | "calendar-day"
    start: datetime  # UTC
    end: datetime  # UTC, the evaluation time
    resets_at: datetime  # UTC; calendar: next local midnight; rolling: latest instant all current spend is out
    window_id: str  # stable id of this window, for "once per window" dedup (calendar: the local date)
    tz_name: str

    @property
    def seconds(self) -> int:
        """Range for the PromQL selector; at least 1 s (a zero range is a parse error)."""
        return max(1, int((self.end - self.start).total_seconds()))

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(ZoneInfo(self.tz_name))

    def describe(self) -> str:
        if self.kind == "calendar-day":
            start_local = self.local(self.start)
            return f"today ({start_local:%a %d %b}, since 00:00 {self.tz_name})"
        return "in the last 24 hours (rolling)"


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """First instant of ``day`` in ``tz``, as UTC. Where DST skips midnight (e.g. America/Santiago, some
    years) 00:00 does not exist; the day then starts at the first local time that does."""
    naive = datetime.combine(day, time(0, 0))
    candidate = naive.replace(tzinfo=tz)
    as_utc = candidate.astimezone(timezone.utc)
    round_trip = as_utc.astimezone(tz).replace(tzinfo=None)
    if round_trip != naive:
        # 00:00 fell into a gap: walk forward minute by minute to the first local time on that day.
        probe = as_utc
        for _ in range(24 * 60):
            probe_local = probe.astimezone(tz)
            if probe_local.date() == day:
                return probe_local.replace(second=0, microsecond=0).astimezone(timezone.utc)
            probe += timedelta(minutes=1)
    return as_utc


def compute(kind: str, now: datetime, tz_name: str) -> Window:
    now = now.astimezone(timezone.utc)
    tz = ZoneInfo(tz_name)
    if kind == "calendar-day":
        today = now.astimezone(tz).date()
        start = local_midnight(today, tz)
        if start > now:  # only possible inside a DST gap at midnight
            today = today - timedelta(days=1)
            start = local_midnight(today, tz)
        resets = local_midnight(today + timedelta(days=1), tz)
        return Window(kind, start, now, resets, today.isoformat(), tz_name)
    if kind == "rolling-24h":
        start = now - timedelta(seconds=ROLLING_SECONDS)
        # A rolling window has no single reset: each dollar leaves it 24 h after it was spent. The latest
        # moment at which everything counted now has left is now + 24 h (if nothing more is spent).
        # "Once per window" for warnings means: not again within 24 h of the last one.
        return Window(kind, start, now, now + timedelta(seconds=ROLLING_SECONDS), "rolling", tz_name)
    raise ValueError(f"unknown window kind {kind!r}")


def format_local(moment: Optional[datetime], tz_name: str) -> str:
    """'Thu 04 Dec 00:00 CET' style, in the configured zone."""
    if moment is None:
        return "unknown"
    local = moment.astimezone(ZoneInfo(tz_name))
    return local.strftime("%a %d %b %H:%M ") + (local.tzname() or tz_name)


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rem = divmod(seconds, 3600)
    minutes = rem // 60
    if hours and minutes:
        return f"{hours}h {minutes:02d}m"
    if hours:
        return f"{hours}h"
    return f"{minutes}m" if minutes else f"{seconds}s"
