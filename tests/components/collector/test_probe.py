"""The host-side probes against a real Prometheus 2.42, started with and without the remote-write receiver."""
from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from components.collector import probe
from components.collector.component import PROBE_SOURCE, health_check_command, remote_write_check_command
from tests.components.collector.configs import build
from tests.components.collector.services import free_port, prometheus
from tests.support.tools import REPO_ROOT


@pytest.fixture(scope="module")
def prometheus_with_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus(tmp_path_factory.mktemp("prom-rw"), remote_write_receiver=True) as base:
        yield base


@pytest.fixture(scope="module")
def prometheus_without_receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with prometheus(tmp_path_factory.mktemp("prom-plain"), remote_write_receiver=False) as base:
        yield base


def host_python() -> str:
    """The system python3, as on a collector host (not this venv's)."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.fail("no python3 on this machine to run the host-side probe with", pytrace=False)


def run_deploy_command(command: str, extra_path: str = "") -> subprocess.CompletedProcess[str]:
    """Run a check exactly as pulumi-command does on the host: a shell, the probe source on stdin."""
    path = ":".join(p for p in (extra_path, os.path.dirname(host_python()), "/usr/bin", "/bin") if p)
    return subprocess.run(
        ["/bin/sh", "-c", command],
        input=PROBE_SOURCE,
        capture_output=True,
        text=True,
        timeout=90,
        env={"PATH": path, "LANG": "C.UTF-8"},
    )


def fake_docker(directory: Path, gateway: str) -> str:
    """A stand-in `docker` CLI answering `network inspect bridge` (no Docker engine runs on test machines)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "docker"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2 $3" = "network inspect bridge" ]; then printf \'%s fd00::1 \\n\' '
        f"{gateway}; exit 0; fi\n"
        "echo \"fake docker: $*\" >&2; exit 1\n"
    )
    script.chmod(0o755)
    return str(directory)


class TestRemoteWriteProbe:
    def test_enabled_receiver_is_accepted(self, prometheus_with_receiver: str) -> None:
        result = probe.probe_remote_write(prometheus_with_receiver)
        assert result.ok, result.message
        # Prometheus parses the empty request and rejects it: the handler is there.
        assert result.status in (204, 400), result

    def test_disabled_receiver_is_reported_with_the_flag(self, prometheus_without_receiver: str) -> None:
        result = probe.probe_remote_write(prometheus_without_receiver)
        assert not result.ok
        assert result.status == 404
        assert "Prometheus runs without --web.enable-remote-write-receiver" in result.message

    def test_base_url_with_trailing_slash(self, prometheus_with_receiver: str) -> None:
        assert probe.probe_remote_write(prometheus_with_receiver + "/").ok

    def test_nothing_listening_is_unreachable(self) -> None:
        result = probe.probe_remote_write(f"http://127.0.0.1:{free_port()}", timeout=3)
        assert not result.ok and result.status is None
        assert result.message.startswith("cannot reach Prometheus at")

    def test_deploy_check_passes_on_an_enabled_receiver(self, prometheus_with_receiver: str, tmp_path: Path) -> None:
        command = remote_write_check_command(build({"prometheusUrl": prometheus_with_receiver}))
        assert command is not None
        # The container side: host.docker.internal is the host gateway, here the loopback Prometheus listens on.
        done = run_deploy_command(command, fake_docker(tmp_path / "bin", "127.0.0.1"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("accepts remote write") == 2, done.stdout

    def test_deploy_check_fails_up_on_a_disabled_receiver(self, prometheus_without_receiver: str) -> None:
        command = remote_write_check_command(build({"prometheusUrl": prometheus_without_receiver}))
        assert command is not None
        done = run_deploy_command(command)
        assert done.returncode == 1
        assert "Prometheus runs without --web.enable-remote-write-receiver" in done.stderr

    def test_deploy_check_fails_when_the_container_could_not_reach_it(
        self, prometheus_with_receiver: str, tmp_path: Path
    ) -> None:
        """Prometheus on 127.0.0.1 only: fine from the host, unreachable through the Docker host gateway."""
        command = remote_write_check_command(build({"prometheusUrl": prometheus_with_receiver}))
        assert command is not None
        done = run_deploy_command(command, fake_docker(tmp_path / "bin", "127.0.0.2"))
        assert done.returncode == 1
        assert "accepts remote write" in done.stdout  # the host's view passed
        assert "host.docker.internal = 127.0.0.2" in done.stderr
        assert "make Prometheus listen on 0.0.0.0" in done.stderr

    def test_without_docker_the_container_side_is_skipped_with_a_warning(self, prometheus_with_receiver: str) -> None:
        command = remote_write_check_command(build({"prometheusUrl": prometheus_with_receiver}))
        assert command is not None
        done = run_deploy_command(command)
        assert done.returncode == 0, done.stderr
        assert "warning: Docker bridge gateway not found" in done.stderr

    def test_routable_url_is_checked_once(self) -> None:
        command = remote_write_check_command(build({"prometheusUrl": "http://192.0.2.10:9090"}))
        assert command is not None and "docker network inspect" not in command
        assert remote_write_check_command(build({"mode": "scrape"})) is None


class TestClassify:
    """Answers a real Prometheus doesn't give here (proxies, auth) still get a clear verdict."""

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth_required(self, status: int) -> None:
        result = probe.classify_remote_write("http://p/api/v1/write", status, "")
        assert not result.ok and "requires credentials" in result.message

    def test_404_from_something_else(self) -> None:
        result = probe.classify_remote_write("http://p/api/v1/write", 404, "404 page not found")
        assert not result.ok and "is this Prometheus" in result.message

    def test_server_error(self) -> None:
        assert not probe.classify_remote_write("http://p/api/v1/write", 503, "busy").ok


class _Healthy(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        body = b'{"status":"Server available"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class TestHealthProbe:
    """The polling logic; the real health_check extension is probed in test_otelcol.py when the binary exists."""

    def test_waits_for_a_late_server(self) -> None:
        port = free_port()
        server = http.server.HTTPServer(("127.0.0.1", port), _Healthy)

        def serve_late() -> None:
            time.sleep(1.5)
            server.serve_forever()

        thread = threading.Thread(target=serve_late, daemon=True)
        # Bound now, served later: connections wait in the backlog or are refused until then.
        thread.start()
        try:
            result = probe.probe_health(f"http://127.0.0.1:{port}/", timeout=15, interval=0.2)
            assert result.ok, result.message
        finally:
            server.shutdown()
            server.server_close()

    def test_gives_up_after_the_timeout(self) -> None:
        started = time.monotonic()
        result = probe.probe_health(f"http://127.0.0.1:{free_port()}/", timeout=1.5, interval=0.2)
        assert not result.ok and "not healthy" in result.message
        assert time.monotonic() - started < 10

    def test_deploy_check_shows_container_logs_on_failure(self, tmp_path: Path) -> None:
        command = health_check_command(build({"healthPort": free_port()})).replace("--timeout 60", "--timeout 1")
        done = run_deploy_command(command, fake_docker(tmp_path / "bin", "127.0.0.1"))
        assert done.returncode == 1
        assert "collector not healthy at http://127.0.0.1:" in done.stderr
        assert "--- last log lines of openclaw-otel-collector:" in done.stderr
        assert "fake docker: logs --tail 40 openclaw-otel-collector" in done.stderr

    def test_deploy_check_passes_on_a_healthy_endpoint(self) -> None:
        port = free_port()
        server = http.server.HTTPServer(("127.0.0.1", port), _Healthy)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            done = run_deploy_command(health_check_command(build({"healthPort": port})))
        finally:
            server.shutdown()
            server.server_close()
        assert done.returncode == 0, done.stderr
        assert "collector healthy" in done.stdout


def test_missing_python3_is_a_clear_error() -> None:
    done = subprocess.run(
        ["/bin/sh", "-c", health_check_command(build())],
        input=PROBE_SOURCE,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/nonexistent"},
    )
    assert done.returncode == 1
    assert "python3 is needed on the collector host" in done.stderr


def test_probe_runs_on_python_3_9() -> None:
    """It runs on hosts outside our venv: vermin proves no newer syntax or stdlib API sneaks in."""
    vermin = REPO_ROOT / "venv" / "bin" / "vermin"
    assert vermin.exists(), "vermin missing: install requirements-dev.txt (tests/setup/python.sh)"
    done = subprocess.run(
        [str(vermin), "-t=3.9-", "--violations", "--no-tips", str(REPO_ROOT / "components/collector/probe.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
