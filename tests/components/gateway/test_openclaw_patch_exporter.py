"""Apply-and-verify with a gateway whose diagnostics-otel really exports: OpenClaw 2026.4.26 (bundled plugin).

The gateway starts exporting to receiver A; the patch tool points it at receiver B.  The tool must report
success only once the gateway runs the new config with the exporter loaded, and B must then really receive
OTLP metrics: the verification's "yes" is true.  (2026.4.26 keeps no exporter-health records, so the evidence
is the gateway's restart with diagnostics-otel loaded, then "ready"; 2026.9.6's records are covered in
test_openclaw_patch_pure.py, its missing plugin in test_openclaw_patch_verify.py.)
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from tests.components.gateway.support import PATCH_TOOL
from tests.support.fake_openai import FakeOpenAI
from tests.support.otlp_emitter import EmitterGateway


class OtlpReceiver:
    """Counts OTLP/HTTP metric exports (POST /v1/metrics; chunked bodies, as the exporter sends them)."""

    def __init__(self) -> None:
        receiver = self
        self.posts: list[tuple[str, int]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = b""
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append((self.path, len(body)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def metric_posts(self) -> int:
        return sum(1 for path, _ in self.posts if path == "/v1/metrics")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[tuple[OtlpReceiver, OtlpReceiver]]:
    a, b = OtlpReceiver(), OtlpReceiver()
    yield a, b
    a.close()
    b.close()


@pytest.mark.slow
def test_verified_switch_to_a_new_collector_really_exports(tmp_path: Path,
                                                            receivers: tuple[OtlpReceiver, OtlpReceiver]) -> None:
    old, new = receivers
    otel = {"enabled": True, "endpoint": old.endpoint, "protocol": "http/protobuf", "serviceName": "openclaw-gateway",
            "metrics": True, "traces": False, "logs": False, "flushIntervalMs": 2000}
    with FakeOpenAI() as fake, EmitterGateway(tmp_path / "gw", fake.base_url, otel) as gateway:
        deadline = time.monotonic() + 180
        while old.metric_posts() == 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert old.metric_posts() > 0, "the emitter never exported to its first collector"
        spec = {
            "version": 1,
            "diagnostics": {"enabled": True, "otel": dict(otel, endpoint=new.endpoint)},
            "plugins": {"diagnostics-otel": {"enabled": True}},
            "prices": {"fake": {"fake-model": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}}},
            "verify": {"enabled": True, "timeoutSeconds": 600, "intervalSeconds": 5,
                       "logCommand": f"cat {shlex.quote(str(gateway.console_log))}"},
        }
        spec_path = tmp_path / "spec.json"
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.run(
            [sys.executable, str(PATCH_TOOL), "apply", "--config", str(gateway.config_path), "--spec", str(spec_path),
             "--state", str(tmp_path / "state.json"), "--openclaw", gateway.openclaw_command()],
            env=gateway.env, capture_output=True, text=True, timeout=900,
        )
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{gateway.console_tail()}"
        assert "diagnostics-otel: present (origin bundled)" in proc.stdout
        assert "verify: `config get diagnostics` shows otel enabled" in proc.stdout
        assert "verify: the gateway restarted with diagnostics-otel and is ready" in proc.stdout
        # The "yes" is true: the new collector receives metrics (within a few flush intervals of "ready").
        deadline = time.monotonic() + 120
        while new.metric_posts() == 0 and time.monotonic() < deadline:
            time.sleep(1)
        assert new.metric_posts() > 0, gateway.console_tail()
        assert gateway.read_config()["models"]["providers"]["fake"]["models"][0]["cost"]["input"] == 3
