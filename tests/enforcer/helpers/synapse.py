"""A real Synapse homeserver for tests: sqlite, loopback, its own venv (tests/setup/synapse.sh)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

import requests
import yaml

from tests.enforcer.helpers.ports import free_port, wait_http
from tests.support import tools

SHARED_SECRET = "test-only-registration-secret"  # obviously fake; the server lives for one test session


class SynapseServer:
    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.python = tools.synapse_python()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.workdir / "homeserver.yaml"
        self.log_path = self.workdir / "synapse.out"
        self.proc: Optional[subprocess.Popen] = None

    def generate(self) -> None:
        res = subprocess.run(
            [str(self.python), "-m", "synapse.app.homeserver", "--server-name", "localhost", "--config-path",
             str(self.config), "--data-directory", str(self.workdir), "--generate-config", "--report-stats=no"],
            capture_output=True, text=True, cwd=self.workdir, timeout=180)
        if res.returncode != 0:
            raise AssertionError(f"synapse --generate-config failed:\n{res.stdout}\n{res.stderr}")
        cfg = yaml.safe_load(self.config.read_text())
        cfg["listeners"] = [{"port": self.port, "tls": False, "type": "http", "x_forwarded": False,
                             "bind_addresses": ["127.0.0.1"], "resources": [{"names": ["client"], "compress": False}]}]
        cfg["database"] = {"name": "sqlite3", "args": {"database": str(self.workdir / "homeserver.db")}}
        cfg["registration_shared_secret"] = SHARED_SECRET
        cfg["trusted_key_servers"] = []
        cfg["suppress_key_server_warning"] = True
        cfg["report_stats"] = False
        fast = {"per_second": 1000, "burst_count": 1000}
        cfg["rc_message"] = fast
        cfg["rc_registration"] = fast
        cfg["rc_joins"] = {"local": fast, "remote": fast}
        cfg["rc_login"] = {"address": fast, "account": fast, "failed_attempts": fast}
        cfg["rc_invites"] = {"per_room": fast, "per_user": fast, "per_issuer": fast}
        # Default: 10 rooms, then one a minute; a fast machine runs more room-creating tests than that.
        cfg["rc_room_creation"] = fast
        cfg["enable_metrics"] = False
        self.config.write_text(yaml.safe_dump(cfg))

    def start(self) -> "SynapseServer":
        if not self.config.exists():
            self.generate()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.python), "-m", "synapse.app.homeserver", "--config-path",
                                      str(self.config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                     start_new_session=True)
        log.close()
        wait_http(self.url + "/_matrix/client/versions", timeout=120, proc=self.proc, log_path=self.log_path)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def register(self, user: str, password: str) -> str:
        """Register with the real register_new_matrix_user script, then log in; returns an access token."""
        script = Path(self.python).parent / "register_new_matrix_user"
        res = subprocess.run([str(script), "-u", user, "-p", password, "--no-admin", "-c", str(self.config),
                              self.url], capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise AssertionError(f"register_new_matrix_user failed: {res.stdout}\n{res.stderr}")
        return self.login(user, password)

    def login(self, user: str, password: str) -> str:
        resp = requests.post(self.url + "/_matrix/client/v3/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password},
            timeout=30)
        resp.raise_for_status()
        return resp.json()["access_token"]

    def api(self, token: str, method: str, path: str, **kwargs) -> dict:
        resp = requests.request(method, self.url + path, headers={"Authorization": f"Bearer {token}"},
                                timeout=30, **kwargs)
        if resp.status_code != 200:
            raise AssertionError(f"{method} {path}: HTTP {resp.status_code} {resp.text}")
        return resp.json()

    def create_room(self, owner_token: str, invite_token: str, invite_user: str) -> str:
        room = self.api(owner_token, "POST", "/_matrix/client/v3/createRoom",
                        json={"preset": "private_chat", "name": f"budget-{uuid.uuid4().hex[:6]}",
                              "invite": [invite_user]})["room_id"]
        self.api(invite_token, "POST", f"/_matrix/client/v3/rooms/{quote(room, safe='')}/join", json={})
        return room

    def messages(self, token: str, room_id: str) -> List[Dict]:
        """All m.room.message events in the room, oldest first (read back as the reader)."""
        data = self.api(token, "GET", f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages",
                        params={"dir": "b", "limit": "500"})
        events = [e for e in data.get("chunk", []) if e.get("type") == "m.room.message"]
        return list(reversed(events))
