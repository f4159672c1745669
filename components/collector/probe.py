"""Deploy-time probes run on the collector host: is the collector healthy, does Prometheus accept remote write?

Stdlib only and Python 3.9+: ``pulumi up`` pipes this file to ``python3 -`` over SSH on the collector host
(the collector image is ``FROM scratch``, with no shell or HTTP client for a Docker HEALTHCHECK, so its
health_check extension is probed from the host instead).  Also usable by hand::

    python3 probe.py remote-write http://localhost:9090
    python3 probe.py health http://127.0.0.1:13133/ --timeout 60

Exit status 0 when the check passes, 1 when it fails (the reason on stderr), 2 on bad usage.
"""
from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from typing import NamedTuple, Optional

REMOTE_WRITE_FLAG = "--web.enable-remote-write-receiver"

#: What Prometheus 2.x answers on /api/v1/write when the receiver is off (observed on 2.42: HTTP 404).
_DISABLED_MARKER = "remote write receiver needs to be enabled"


class ProbeResult(NamedTuple):
    ok: bool
    status: Optional[int]
    message: str


def _request(url: str, method: str, body: Optional[bytes], headers: dict, timeout: float) -> tuple[int, str]:
    """(HTTP status, start of the body); raises OSError when nothing answers."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) URL from config)
            return response.status, response.read(2048).decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        text = error.read(2048).decode("utf-8", "replace") if error.fp is not None else ""
        return error.code, text


def classify_remote_write(url: str, status: int, body: str) -> ProbeResult:
    """Decide from Prometheus's answer to an empty remote-write request whether the receiver is on.

    An enabled receiver parses the request: an empty body is not a valid snappy/protobuf write request, so it
    answers 400 (a 2xx would be fine too).  A disabled one answers 404 with a message naming the flag.
    """
    if 200 <= status < 300 or status == 400:
        return ProbeResult(True, status, f"Prometheus accepts remote write at {url} (HTTP {status})")
    if status == 404:
        if _DISABLED_MARKER in body:
            why = f"Prometheus runs without {REMOTE_WRITE_FLAG}"
        else:
            why = f"nothing serves remote write there: is this Prometheus, started with {REMOTE_WRITE_FLAG}?"
        return ProbeResult(
            False,
            status,
            f"{url} answered 404: {why}. Start Prometheus with {REMOTE_WRITE_FLAG} (2.33+; on Debian add it to "
            "ARGS in /etc/default/prometheus), or use collector mode 'scrape'.",
        )
    if status in (401, 403):
        return ProbeResult(
            False,
            status,
            f"{url} answered {status}: remote write requires credentials, which this stack's collector does not "
            "send; allow unauthenticated writes from the collector, or use collector mode 'scrape'.",
        )
    return ProbeResult(False, status, f"{url} answered HTTP {status}: {body.strip()[:200]}")


def probe_remote_write(base_url: str, timeout: float = 10.0) -> ProbeResult:
    """POST an empty remote-write request to ``<base_url>/api/v1/write`` and classify the answer."""
    url = base_url.rstrip("/") + "/api/v1/write"
    headers = {
        "Content-Type": "application/x-protobuf",
        "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0",
        "User-Agent": "openclaw-usage-probe",
    }
    try:
        status, body = _request(url, "POST", b"", headers, timeout)
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return ProbeResult(False, None, f"cannot reach Prometheus at {url}: {reason}")
    return classify_remote_write(url, status, body)


def probe_health(url: str, timeout: float = 60.0, interval: float = 1.0) -> ProbeResult:
    """Poll the collector's health_check endpoint until it answers 200, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        try:
            status, body = _request(url, "GET", None, {"User-Agent": "openclaw-usage-probe"}, min(5.0, timeout))
            if status == 200:
                return ProbeResult(True, status, f"collector healthy at {url}: {body.strip()[:120]}")
            last = f"HTTP {status}: {body.strip()[:200]}"
        except (OSError, ValueError) as error:
            last = str(getattr(error, "reason", error))
        if time.monotonic() + interval > deadline:
            return ProbeResult(False, None, f"collector not healthy at {url} after {timeout:g}s ({last})")
        time.sleep(interval)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(prog="probe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    remote_write = sub.add_parser("remote-write", help="does Prometheus accept remote write?")
    remote_write.add_argument("prometheus_url", help="Prometheus base URL, e.g. http://localhost:9090")
    remote_write.add_argument("--timeout", type=float, default=10.0)
    health = sub.add_parser("health", help="wait for the collector's health_check endpoint")
    health.add_argument("url", help="health_check URL, e.g. http://127.0.0.1:13133/")
    health.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)

    if args.check == "remote-write":
        result = probe_remote_write(args.prometheus_url, timeout=args.timeout)
    else:
        result = probe_health(args.url, timeout=args.timeout)
    print(result.message, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
