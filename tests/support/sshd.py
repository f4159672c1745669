"""A real OpenSSH server on a loopback port, for tests that run remote commands for real.

``run_sshd(workdir)`` starts Debian's ``/usr/sbin/sshd`` in the foreground (``-D``) on a free port of
127.0.0.1 with its own throwaway host key, its own ``authorized_keys`` and a freshly generated client key,
and stops it on exit.  It logs in as the user running the tests (root in CI), so commands run with the
test's own privileges.  Nothing of the system's sshd configuration or keys is used or changed (the one
exception: as root, sshd insists on its privilege-separation directory ``/run/sshd``, created if missing).

What you get (:class:`SshServer`): ``host``/``port``/``user``, the client key (``private_key`` text for
``pulumi_command.remote.ConnectionArgs(private_key=...)``, ``private_key_path`` for ``ssh -i``), the host's
public key (``host_key`` for ``ConnectionArgs(host_key=...)``; a ``known_hosts`` file for ``ssh``), and
``run(command, stdin=...)`` which runs a command over a real SSH session (BatchMode, strict host key check).

Use the ``sshd_server`` fixture (session-scoped; import it into a conftest.py) or the context manager::

    from tests.support.sshd import sshd_server  # in conftest.py: makes the fixture available

    def test_x(sshd_server):
        assert sshd_server.run("echo hi").stdout == "hi\\n"

Needs ``bash tests/setup/sshd.sh`` (Debian openssh-server); fails with that hint when sshd is missing.
"""
from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Union

import pytest

from tests.support.tools import sshd_bin

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SshServer:
    host: str
    port: int
    user: str
    private_key_path: Path
    known_hosts_path: Path
    host_key: str
    log_path: Path

    @property
    def private_key(self) -> str:
        """The client's OpenSSH private key (unencrypted, throwaway)."""
        return self.private_key_path.read_text()

    def ssh_argv(self, command: str) -> list[str]:
        """``ssh`` argv that runs ``command`` (a shell string, as the remote login shell parses it)."""
        return [
            "ssh",
            "-F", "/dev/null",
            "-i", str(self.private_key_path),
            "-p", str(self.port),
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts_path}",
            "-o", "LogLevel=ERROR",
            f"{self.user}@{self.host}",
            command,
        ]

    def run(
        self, command: str, stdin: Union[str, bytes] = b"", check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """Run ``command`` over SSH; text stdout/stderr.  ``check`` raises with both streams on failure."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        proc = subprocess.run(self.ssh_argv(command), input=data, capture_output=True, timeout=timeout)
        result = subprocess.CompletedProcess(
            proc.args, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"ssh command failed with exit {result.returncode}\n--- stdout\n{result.stdout}\n"
                f"--- stderr\n{result.stderr}"
            )
        return result

    def upload(self, local: Path, remote: str) -> None:
        """Copy a file to the server (through ``cat`` over SSH; no scp/sftp client needed)."""
        self.run(f"cat > {remote}", stdin=local.read_bytes(), check=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _wait_for_banner(port: int, proc: subprocess.Popen, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-2.0-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


@contextlib.contextmanager
def run_sshd(workdir: Path, user: Optional[str] = None, start_timeout: float = 10) -> Iterator[SshServer]:
    """Start sshd on a free loopback port with keys under ``workdir``; stop it on exit."""
    sshd = sshd_bin()
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    user = user or getpass.getuser()
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "client_ed25519"
    _keygen(host_key, "openclaw-usage-test-host")
    _keygen(client_key, "openclaw-usage-test-client")
    authorized = workdir / "authorized_keys"
    authorized.write_text((client_key.with_suffix(".pub")).read_text())
    os.chmod(authorized, 0o600)
    host_pub = host_key.with_suffix(".pub").read_text().split()
    host_key_line = f"{host_pub[0]} {host_pub[1]}"
    if os.geteuid() == 0:
        # sshd refuses to start as root without its privilege-separation directory (Debian: /run/sshd).
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)

    last_log = ""
    for _attempt in range(3):  # another process may grab the free port between probe and bind
        port = _free_port()
        config = workdir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {LOOPBACK}",
                    f"Port {port}",
                    f"HostKey {host_key}",
                    f"PidFile {workdir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {authorized}",
                    f"AllowUsers {user}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "UsePAM no",
                    # The temp dir's parents (/tmp) are group/world writable; the keys are ours.
                    "StrictModes no",
                    "Subsystem sftp internal-sftp",
                    "LogLevel VERBOSE",
                    "",
                ]
            )
        )
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[{LOOPBACK}]:{port} {host_key_line}\n")
        log = workdir / "sshd.log"
        log_handle = open(log, "wb")
        proc = subprocess.Popen(
            [str(sshd), "-D", "-e", "-f", str(config)], stdout=log_handle, stderr=subprocess.STDOUT
        )
        try:
            if _wait_for_banner(port, proc, time.monotonic() + start_timeout):
                yield SshServer(
                    host=LOOPBACK,
                    port=port,
                    user=user,
                    private_key_path=client_key,
                    known_hosts_path=known_hosts,
                    host_key=host_key_line,
                    log_path=log,
                )
                return
            last_log = log.read_text(errors="replace")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_handle.close()
    raise RuntimeError(f"sshd did not start on a loopback port; its log:\n{last_log}")


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """One sshd for the test session (see the module docstring)."""
    with run_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
