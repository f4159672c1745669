"""Command line: ``python -m enforcer {check,status,doctor,allow,watch,drill}``.

Configuration comes from environment variables (see ``--help`` and the README); the commands only take
what varies per invocation (``--dry-run``, ``--json``, ``--for``, ``--interval``).

Exit codes: 0 decided (whatever the state), 1 configuration error, 2 Prometheus failed (the
BUDGET_ON_BACKEND_ERROR policy was applied), 3 another run held the lock too long, 4 the flag file could
not be written, 5 doctor found a failing check or the drill failed.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import List, Optional

from enforcer import __version__, runner, settings as settings_mod, windows
from enforcer.settings import ConfigError
from enforcer.state import LockTimeout

ENV_HELP = """environment:
  PROMETHEUS_URL            Prometheus base URL (required), e.g. http://127.0.0.1:9090
  MAX_DAILY_USD             daily cap in USD (default 5.00)
  BUDGET_WARN_RATIO         warn at this fraction of the cap (default 0.8)
  BUDGET_WINDOW             rolling-24h (default) or calendar-day
  BUDGET_TZ                 IANA zone for calendar days and messages (default UTC)
  BUDGET_ON_BACKEND_ERROR   closed (default: block), open (don't block) or hold (keep last decision)
  MATRIX_HOMESERVER, MATRIX_ROOM_ID, MATRIX_ACCESS_TOKEN or MATRIX_ACCESS_TOKEN_FILE
  BUDGET_FLAG_FILE          default /tmp/openclaw-budget-exceeded
  BUDGET_STATE_DIR          state, outbox, lock and decisions.jsonl
  BUDGET_METRICS_FILE       optional textfile-collector output (*.prom)
  BUDGET_MODEL_CAPS         optional JSON {"provider": usd, "provider/model": usd}
  BUDGET_FREE_MODELS        comma-separated provider/model globs that are free on purpose
  BUDGET_OPENCLAW_CLI       optional OpenClaw CLI argv prefix, for doctor's ledger comparison and drill
  BUDGET_QUERY_MODE         exact (default) or fast (one window scan, for thousands of series)
  BUDGET_COST_SELECTOR      cost series (default: openclaw_cost_usd_total, either unit spelling)
  BUDGET_COST_BY_MODEL_SELECTOR  the collector's by-model sums of them (default with the default cost
                            series: openclaw_cost_usd_by_model_total; off: measure every cost series)
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m enforcer",
        description="OpenClaw budget enforcer: measure spend in Prometheus, decide, alert Matrix, set the flag.",
        epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    check = sub.add_parser("check", help="make one decision and act on it (flag, Matrix, logs)",
                           description="Query spend once, decide ok/warn/blocked, write or remove the flag "
                           "file, send at most one Matrix message per transition, log one line.",
                           epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    check.add_argument("--dry-run", action="store_true",
                       help="decide and log, but write no flag, send nothing and save no state")

    status = sub.add_parser("status", help="show what a check would decide now, and why (changes nothing)",
                            description="Query spend and show the decision a check would make, without "
                            "acting on it.", epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    sub.add_parser("doctor", help="check the whole chain, one line per check with a fix hint",
                   description="Checks Prometheus, the token and cost series, the zero-cost anomaly (a missing "
                   "price), Matrix token and room, flag and state paths, and (with BUDGET_OPENCLAW_CLI) "
                   "Prometheus against OpenClaw's own ledger.", epilog=ENV_HELP,
                   formatter_class=argparse.RawDescriptionHelpFormatter)

    allow = sub.add_parser("allow", help="lift a block for a while (logged and announced)",
                           description="Operator override: remove the flag and keep it off until the override "
                           "ends; the enforcer keeps measuring and announces when it ends.")
    group = allow.add_mutually_exclusive_group(required=True)
    group.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 2h, 90m, 1h30m (max 7d)")
    group.add_argument("--cancel", action="store_true", help="end an active override now")
    allow.add_argument("--reason", help="why (goes into the Matrix message and the decision log)")
    allow.add_argument("--dry-run", action="store_true", help="show what would happen; change nothing")

    watch = sub.add_parser("watch", help="run check in a loop (for a simple long-running service)",
                           description="Run a check every --interval seconds until SIGTERM/SIGINT.")
    watch.add_argument("--interval", type=float, default=10.0, metavar="SECONDS",
                       help="seconds between check starts (default 10)")
    watch.add_argument("--dry-run", action="store_true", help="as for check")
    drill = sub.add_parser("drill", help="prove on the live gateway that the gate refuses a new run",
                           description="Write a drill flag (unless a flag is already set), start one agent run "
                           "through BUDGET_OPENCLAW_CLI, remove the drill flag, and pass only if the budget gate "
                           "refused the run quoting this drill's flag. Holds the run lock meanwhile. If the gate "
                           "does not block, the probe run reaches the model (one short message).",
                           epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    drill.add_argument("--agent", default="main", help="OpenClaw agent id to start the probe run on (default main)")
    drill.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="how long the probe run may take (default 60; a refused run answers in seconds)")
    return parser


def _print_status(data: dict) -> None:
    tz = data["window"]["timezone"]
    print(f"state: {data['state']}{' (flag set: new agent runs are blocked)' if data['blocked'] else ''}")
    if data["spent_usd"] is None:
        print(f"spend: unknown — {data['backend']['error']} (policy {data['backend']['policy']})")
    else:
        print(f"spend: ${data['spent_usd']:.2f} of ${data['cap_usd']:.2f} ({data['percent']:.0f}%), warn at "
              f"${data['warn_at_usd']:.2f}")
    cap = data.get("deciding_cap")
    if cap and cap["scope"] != "total":
        print(f"deciding cap: {cap['scope']} ${cap['spent_usd']:.2f} of ${cap['cap_usd']:.2f} ({cap['percent']:.0f}%)")
    if data["reason"]:
        print(f"reason: {data['reason']}")
    print(f"window: {data['window']['kind']} from {data['window']['start']} to {data['window']['end']}; "
          f"resets at {data['window']['resets_at']} ({tz})")
    if data["top"]:
        print("top: " + ", ".join(f"{r['provider']}/{r['model']} ${r['usd']:.2f}" for r in data["top"][:3]))
    if data["override_until"]:
        print(f"override until: {data['override_until']}")
    print(f"flag file: {data['flag_file']['path']} ({data['flag_file']['on_disk']})")
    print(f"next message: {data['would_send'] or 'none'}; queued: {data['queued_messages']}")
    for note in data["notes"]:
        print(f"note: {note}")


def _watch(cfg, interval: float, dry_run: bool) -> int:
    stop = threading.Event()

    def handle(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    while not stop.is_set():
        started = time.monotonic()
        try:
            runner.run_check(cfg, dry_run=dry_run)
        except LockTimeout as exc:
            print(f"budget check: skipped: {exc}", file=sys.stderr, flush=True)
        except Exception as exc:  # one bad iteration must not kill the loop that keeps the gate honest
            print(f"budget check: unexpected error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = settings_mod.load(require_prometheus=True)
        duration = None
        if args.command == "allow" and args.duration is not None:
            duration = runner.parse_duration(args.duration)
        if args.command == "watch" and not args.interval > 0:
            raise ConfigError("--interval must be > 0 seconds")
        if args.command == "drill" and not args.timeout > 0:
            raise ConfigError("--timeout must be > 0 seconds")
        if cfg.test_crash_at and cfg.test_crash_at not in runner.CRASH_POINTS:
            raise ConfigError(f"BUDGET_TEST_CRASH_AT must be one of {', '.join(runner.CRASH_POINTS)}")
    except (ConfigError, ValueError) as exc:
        print(f"enforcer: {exc}", file=sys.stderr)
        return runner.EXIT_CONFIG

    try:
        if args.command == "check":
            return runner.run_check(cfg, dry_run=args.dry_run).exit_code
        if args.command == "status":
            data = runner.status(cfg)
            if args.json:
                print(json.dumps(data, indent=2, sort_keys=True))
            else:
                _print_status(data)
            return runner.EXIT_OK if data["backend"]["ok"] else runner.EXIT_BACKEND
        if args.command == "doctor":
            from enforcer import doctor  # only this command needs it (subprocess, fnmatch, tempfile)

            lines = doctor.run(cfg)
            for line in lines:
                print(line.render())
            return 5 if any(line.status == doctor.FAIL for line in lines) else 0
        if args.command == "allow":
            if args.dry_run:
                if args.cancel:
                    print("dry run: would cancel the active override and run a check")
                else:
                    assert duration is not None
                    until = cfg.now() + duration
                    print(f"dry run: would lift any block until {windows.format_local(until, cfg.tz_name)}, "
                          "remove the flag and announce it")
                return 0
            return runner.allow(cfg, duration, args.reason, cancel=args.cancel)
        if args.command == "watch":
            return _watch(cfg, args.interval, args.dry_run)
        if args.command == "drill":
            from enforcer import drill  # only this command needs it (subprocess)

            result = drill.run(cfg, agent=args.agent, timeout=args.timeout)
            print(result.render(), flush=True)
            return drill.EXIT_PASS if result.passed else drill.EXIT_FAIL
    except ConfigError as exc:
        print(f"enforcer: {exc}", file=sys.stderr)
        return runner.EXIT_CONFIG
    except LockTimeout as exc:
        print(f"enforcer: {exc}", file=sys.stderr)
        return runner.EXIT_LOCK
    except OSError as exc:  # state dir missing/unwritable, disk full: say which file, no traceback
        print(f"enforcer: cannot use {exc.filename or cfg.state_dir}: {exc.strerror or exc} "
              "(check BUDGET_STATE_DIR permissions; `python -m enforcer doctor`)", file=sys.stderr)
        return runner.EXIT_CONFIG
    return runner.EXIT_CONFIG
