"""Free loopback ports for the services the tests start."""
from __future__ import annotations

import socket
import time

import requests


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float, ok=lambda r: r.status_code == 200, proc=None, log_path=None) -> None:
    """Poll ``url`` until ``ok(response)``; fail with the service's log tail if it dies or times out."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        try:
            resp = requests.get(url, timeout=2)
            if ok(resp):
                return
            last = f"HTTP {resp.status_code}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    tail = ""
    if log_path is not None:
        try:
            tail = "\n".join(open(log_path, encoding="utf-8", errors="replace").read().splitlines()[-30:])
        except OSError:
            pass
    state = f"exited with {proc.returncode}" if proc is not None and proc.poll() is not None else last
    raise AssertionError(f"{url} not ready ({state}):\n{tail}")
