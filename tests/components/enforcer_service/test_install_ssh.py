"""The install and uninstall commands, run for real over SSH (OpenSSH on a loopback port) into a sandbox
root, exactly as the component renders them: the upload-dir command, the package archive uploaded where
the CopyToRemote puts it, the install command with the environment file on stdin.

systemd can't run here, so ``enforcer.systemctl`` is the recording stand-in from support.py (unit-file
verbs go to the real ``systemctl --root``).  The virtualenv is real (the host's python3) and ``requests``
is installed by pip from a local wheel directory (``enforcer.pipArgs``, the offline path).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from components.config import StackConfig
from components.enforcer_service.commands import install_command, uninstall_command, upload_dir_command
from components.enforcer_service.envfile import render_env_file
from components.enforcer_service.layout import UPLOAD_PATH_FROM_HOME
from components.enforcer_service.package import ENFORCER_SOURCE, PackageArchive, build_archive
from components.enforcer_service.units import render_units
from tests.components.enforcer_service.conftest import WORKSTATION_MOUNT
from tests.components.enforcer_service.support import (
    Sandbox,
    fake_token,
    make_config,
    make_sandbox,
    mode_owner,
    sandbox_user_ids,
    wheels_dir,
)
from tests.support.sshd import SshServer

pytestmark = pytest.mark.slow

SERVICE = "openclaw-budget-enforcer.service"
TIMER = "openclaw-budget-enforcer.timer"
FLAG_DIR = f"{WORKSTATION_MOUNT}/budget"
FLAG_FILE = f"{FLAG_DIR}/openclaw-budget-exceeded"
QUERIES = ("is-enabled", "is-active")


class Host:
    """One enforcer host: the sshd, its sandbox root, and the commands the component would run there."""

    def __init__(self, ssh: SshServer, sandbox: Sandbox, tmp_path: Path):
        self.ssh = ssh
        self.sandbox = sandbox
        self.tmp_path = tmp_path

    def config(self, **enforcer: Any) -> StackConfig:
        host = {"address": ssh_host(self.ssh), "port": self.ssh.port, "user": self.ssh.user, "privateKey": "unused"}
        return make_config(
            {
                "rootDir": str(self.sandbox.root),
                "systemctl": str(self.sandbox.systemctl),
                "python": "/usr/bin/python3",
                "pipArgs": ["--no-index", "--find-links", str(wheels_dir())],
                **enforcer,
            },
            hosts={"muletto": host, "workstation": dict(host)},
        )

    def run(self, command: str, stdin: str = "") -> subprocess.CompletedProcess:
        # The SSH user's $HOME is the sandbox's, so the upload never touches the real home directory.
        return self.ssh.run(f"HOME={shlex.quote(str(self.sandbox.home))}; export HOME; {command}", stdin=stdin)

    def upload(self, package: PackageArchive) -> None:
        """What the upload-dir command and the CopyToRemote do."""
        result = self.run(upload_dir_command())
        assert result.returncode == 0, result.stderr
        assert package.path is not None
        remote = self.sandbox.home / UPLOAD_PATH_FROM_HOME
        result = self.ssh.run(f"cat > {shlex.quote(str(remote))}", stdin=package.path.read_bytes())
        assert result.returncode == 0, result.stderr

    def install(
        self, cfg: StackConfig, package: PackageArchive, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        self.sandbox.reset_calls()
        env = render_env_file(cfg, fake_token()) if stdin is None else stdin
        return self.run(install_command(cfg, package), stdin=env)

    def uninstall(self, cfg: StackConfig) -> subprocess.CompletedProcess:
        self.sandbox.reset_calls()
        return self.run(uninstall_command(cfg))

    def changing_calls(self) -> list[str]:
        return [c for c in self.sandbox.systemctl_calls() if not c.startswith(QUERIES)]

    def tree(self) -> dict[str, tuple[int, int, int]]:
        """(mtime, inode, mode) of every path under the sandbox root except systemd's own units."""
        snapshot = {}
        for dirpath, dirnames, filenames in os.walk(self.sandbox.root):
            if dirpath == str(self.sandbox.root / "usr/lib/systemd"):
                dirnames.clear()
                continue
            for name in dirnames + filenames:
                path = Path(dirpath, name)
                info = path.lstat()
                snapshot[str(path.relative_to(self.sandbox.root))] = (info.st_mtime_ns, info.st_ino, info.st_mode)
        return snapshot


def ssh_host(ssh: SshServer) -> str:
    return ssh.host


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    return result.stdout


def failed(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, f"expected a failure\n--- stdout\n{result.stdout}"
    return result.stderr


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> PackageArchive:
    return build_archive(out_dir=tmp_path_factory.mktemp("package"))


@pytest.fixture(scope="module")
def other_package(tmp_path_factory: pytest.TempPathFactory) -> PackageArchive:
    """A second release: the repo's package with one line added."""
    base = tmp_path_factory.mktemp("other-package")
    source = base / "enforcer"
    shutil.copytree(ENFORCER_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    with open(source / "runner.py", "a") as handle:
        handle.write("\n# new release\n")
    return build_archive(source, out_dir=base / "archive")


@dataclass
class FirstInstall:
    sandbox: Sandbox
    cfg: StackConfig
    output: str
    stderr: str
    calls: list[str]


@pytest.fixture(scope="module")
def first_install(
    sshd_server: SshServer, package: PackageArchive, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FirstInstall]:
    """One real first install (creating the virtualenv dominates its time). Tests that start from an
    installed enforcer get a copy of its sandbox (fixture ``installed``), never this one."""
    box = make_sandbox(mount_dirs=(WORKSTATION_MOUNT,))
    host = Host(sshd_server, box, tmp_path_factory.mktemp("first-install"))
    cfg = host.config()
    host.upload(package)
    result = host.install(cfg, package)
    yield FirstInstall(box, cfg, ok(result), result.stderr, host.changing_calls())
    box.remove()


@pytest.fixture
def host(sshd_server: SshServer, sandbox: Sandbox, tmp_path: Path) -> Host:
    """A host where nothing is installed yet."""
    return Host(sshd_server, sandbox, tmp_path)


@pytest.fixture
def installed(sshd_server: SshServer, first_install: FirstInstall, tmp_path: Path) -> Iterator[Host]:
    """A host where the reference configuration is installed and running (a copy of the first install)."""
    box = first_install.sandbox.clone()
    yield Host(sshd_server, box, tmp_path)
    box.remove()


def test_first_install_puts_everything_in_place(first_install: FirstInstall, package: PackageArchive) -> None:
    box, cfg, out = first_install.sandbox, first_install.cfg, first_install.output
    ids = sandbox_user_ids(box, "openclaw-budget")
    assert ids is not None, "the dedicated system user was created"
    assert "created system user openclaw-budget" in out
    uid, gid = ids

    assert box.path(f"/etc/systemd/system/{SERVICE}").read_text() == render_units(cfg)[SERVICE]
    assert mode_owner(box.path(f"/etc/systemd/system/{SERVICE}")) == ("0o644", 0, 0)
    env_file = box.path("/etc/openclaw-budget/enforcer.env")
    assert env_file.read_text() == render_env_file(cfg, fake_token())
    assert mode_owner(env_file) == ("0o600", 0, 0), "root-only: it holds the Matrix token"
    assert mode_owner(box.path("/var/lib/openclaw-budget")) == ("0o700", uid, gid)
    assert mode_owner(box.path(FLAG_DIR)) == ("0o755", uid, gid), "the gateway container reads through it"
    assert mode_owner(box.path("/opt/openclaw-budget")) == ("0o755", 0, 0)
    assert mode_owner(box.path("/opt/openclaw-budget/bin/openclaw-budget")) == ("0o755", 0, 0)

    current = box.path("/opt/openclaw-budget/current")
    assert os.readlink(current) == f"releases/{package.release_id}"
    for source in ENFORCER_SOURCE.glob("*.py"):
        assert (current / "enforcer" / source.name).read_bytes() == source.read_bytes(), source.name
    assert [p.name for p in box.path("/opt/openclaw-budget/releases").iterdir()] == [package.release_id]

    assert first_install.calls == ["daemon-reload", f"enable {SERVICE}", f"restart {SERVICE}"]
    assert box.path(f"/etc/systemd/system/multi-user.target.wants/{SERVICE}").is_symlink()
    assert box.is_active(SERVICE)
    assert out.rstrip().endswith("change(s)")
    assert fake_token() not in out + first_install.stderr


def test_installed_enforcer_runs_in_its_virtualenv(first_install: FirstInstall) -> None:
    box = first_install.sandbox
    current = box.path("/opt/openclaw-budget/current")
    python = box.path("/opt/openclaw-budget/venv/bin/python")
    env = {"PYTHONPATH": str(current), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    probe = subprocess.run(
        [str(python), "-c", "import requests, enforcer.cli, enforcer; print(enforcer.__file__, requests.__version__)"],
        env=env,
        cwd="/",  # not the repo, whose own enforcer/ would shadow the installed one
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(current / "enforcer")), probe.stdout
    help_run = subprocess.run(
        [str(python), "-m", "enforcer", "--help"], env=env, cwd="/", capture_output=True, text=True
    )
    assert help_run.returncode == 0 and "check" in help_run.stdout, help_run.stderr


def test_second_run_changes_nothing(installed: Host, package: PackageArchive) -> None:
    cfg = installed.config()
    before = installed.tree()
    out = ok(installed.install(cfg, package))
    assert out.rstrip().endswith("up to date: nothing changed"), out
    assert "wrote" not in out and "created" not in out
    assert installed.changing_calls() == [], "only is-enabled/is-active queries on a re-run"
    assert installed.tree() == before, "no file or directory touched"


def test_new_settings_rewrite_the_env_file_and_restart(installed: Host, package: PackageArchive) -> None:
    out = ok(installed.install(installed.config(dailyCapUsd=7.5), package))
    assert "wrote /etc/openclaw-budget/enforcer.env" in out
    assert "MAX_DAILY_USD=7.5" in installed.sandbox.path("/etc/openclaw-budget/enforcer.env").read_text().splitlines()
    assert f"unchanged /etc/systemd/system/{SERVICE}" in out
    assert installed.changing_calls() == [f"restart {SERVICE}"], "no daemon-reload: the units did not change"


def test_new_package_activates_a_new_release(
    installed: Host, package: PackageArchive, other_package: PackageArchive
) -> None:
    installed.upload(other_package)
    out = ok(installed.install(installed.config(), other_package))
    box = installed.sandbox
    assert f"activated enforcer package release {other_package.release_id}" in out
    assert f"removed old release {package.release_id}" in out
    assert [p.name for p in box.path("/opt/openclaw-budget/releases").iterdir()] == [other_package.release_id]
    assert box.path("/opt/openclaw-budget/current/enforcer/runner.py").read_text().endswith("# new release\n")
    assert installed.changing_calls() == [f"restart {SERVICE}"]


def test_switch_to_timer_and_back(installed: Host, package: PackageArchive) -> None:
    box = installed.sandbox
    timer_cfg = installed.config(runAs="timer", intervalSeconds=300)
    ok(installed.install(timer_cfg, package))
    assert box.path(f"/etc/systemd/system/{TIMER}").read_text() == render_units(timer_cfg)[TIMER]
    assert "Type=oneshot" in box.path(f"/etc/systemd/system/{SERVICE}").read_text()
    assert installed.changing_calls() == [
        f"disable {SERVICE}",
        f"stop {SERVICE}",
        "daemon-reload",
        f"enable {TIMER}",
        f"restart {TIMER}",
        f"start --no-block {SERVICE}",
    ]
    assert not box.path(f"/etc/systemd/system/multi-user.target.wants/{SERVICE}").exists()
    assert box.path(f"/etc/systemd/system/timers.target.wants/{TIMER}").is_symlink()
    assert box.is_active(TIMER) and not box.is_active(SERVICE)

    out = ok(installed.install(timer_cfg, package))
    assert out.rstrip().endswith("up to date: nothing changed"), out

    ok(installed.install(installed.config(), package))
    assert not box.path(f"/etc/systemd/system/{TIMER}").exists()
    assert not box.path(f"/etc/systemd/system/timers.target.wants/{TIMER}").exists()
    assert installed.changing_calls() == [
        f"stop {TIMER}",
        f"disable {TIMER}",
        "daemon-reload",
        f"enable {SERVICE}",
        f"restart {SERVICE}",
    ]
    assert box.is_active(SERVICE) and not box.is_active(TIMER)


def test_uninstall_removes_everything_but_the_state(installed: Host) -> None:
    cfg = installed.config()
    box = installed.sandbox
    box.path(FLAG_FILE).write_text('{"version": 1, "state": "blocked"}\n')
    (box.path("/var/lib/openclaw-budget") / "decisions.jsonl").write_text("{}\n")
    out = ok(installed.uninstall(cfg))
    assert installed.changing_calls() == [f"stop {SERVICE}", f"disable {SERVICE}", "daemon-reload"]
    assert not box.path(f"/etc/systemd/system/{SERVICE}").exists()
    assert not box.path(f"/etc/systemd/system/multi-user.target.wants/{SERVICE}").exists()
    assert not box.path("/etc/openclaw-budget").exists()
    assert not box.path("/opt/openclaw-budget").exists()
    assert not box.path(FLAG_FILE).exists()
    assert "removed the flag file" in out
    assert not box.path(FLAG_DIR).exists(), "the flag directory the install created is gone"
    assert box.path(WORKSTATION_MOUNT).is_dir(), "the gateway's own directory stays"
    assert (box.path("/var/lib/openclaw-budget") / "decisions.jsonl").exists()
    assert "kept the state directory /var/lib/openclaw-budget" in out

    again = ok(installed.uninstall(cfg))
    assert again.rstrip().endswith("nothing to remove: already uninstalled"), again
    assert installed.changing_calls() == []


def test_uninstall_can_remove_the_state(installed: Host) -> None:
    out = ok(installed.uninstall(installed.config(keepStateOnDestroy=False)))
    assert not installed.sandbox.path("/var/lib/openclaw-budget").exists()
    assert "removed the state directory /var/lib/openclaw-budget" in out


def test_uninstall_keeps_a_flag_directory_someone_else_uses(installed: Host) -> None:
    (installed.sandbox.path(FLAG_DIR) / "notes.txt").write_text("not ours")
    out = ok(installed.uninstall(installed.config()))
    assert (installed.sandbox.path(FLAG_DIR) / "notes.txt").exists()
    assert f"kept directory {FLAG_DIR}: not empty" in out


def test_uninstall_leaves_a_directory_it_did_not_create(host: Host) -> None:
    foreign = host.sandbox.path("/opt/openclaw-budget")
    foreign.mkdir(parents=True)
    (foreign / "someone-elses-file").write_text("keep me")
    out = ok(host.uninstall(host.config()))
    assert (foreign / "someone-elses-file").exists()
    assert "left /opt/openclaw-budget alone" in out


def test_existing_user_is_used(installed: Host, package: PackageArchive) -> None:
    out = ok(installed.install(installed.config(user="daemon"), package))
    assert "unchanged user daemon" in out
    assert "created system user" not in out
    ids = sandbox_user_ids(installed.sandbox, "daemon")
    assert ids is not None
    assert mode_owner(installed.sandbox.path("/var/lib/openclaw-budget"))[1:] == ids
    assert "User=daemon" in installed.sandbox.path(f"/etc/systemd/system/{SERVICE}").read_text()
    assert f"set owner {ids[0]}:{ids[1]} and mode 755 on {FLAG_DIR}" in out
    assert mode_owner(installed.sandbox.path(FLAG_DIR))[1:] == ids
    assert installed.changing_calls() == ["daemon-reload", f"restart {SERVICE}"]


class TestFailsLoudly:
    def test_altered_upload(self, installed: Host, other_package: PackageArchive, package: PackageArchive) -> None:
        installed.upload(other_package)
        upload = installed.sandbox.home / UPLOAD_PATH_FROM_HOME
        upload.write_bytes(upload.read_bytes() + b"tampered")
        err = failed(installed.install(installed.config(), other_package))
        assert f"expected {other_package.sha256} (stale or altered upload)" in err
        assert os.readlink(installed.sandbox.path("/opt/openclaw-budget/current")) == f"releases/{package.release_id}"
        assert installed.changing_calls() == [], "the running service is left alone"

    def test_missing_upload(self, installed: Host, other_package: PackageArchive) -> None:
        (installed.sandbox.home / UPLOAD_PATH_FROM_HOME).unlink()
        err = failed(installed.install(installed.config(), other_package))
        assert "package archive" in err and "not found (the upload step puts it there)" in err

    def test_gateway_mount_missing(self, host: Host, package: PackageArchive) -> None:
        shutil.rmtree(host.sandbox.path("/home/sam"))
        host.upload(package)
        err = failed(host.install(host.config(), package))
        assert f"{WORKSTATION_MOUNT} does not exist on this host" in err and "gateway.mounts" in err

    def test_home_the_service_user_cannot_enter(self, host: Host, package: PackageArchive) -> None:
        """The reference layout with a dedicated user and a 0700 home: the flag would never be written."""
        host.sandbox.path("/home/sam").chmod(0o700)
        host.upload(package)
        err = failed(host.install(host.config(), package))
        assert f"user openclaw-budget cannot create files in {FLAG_DIR}" in err
        assert "enforcer.user" in err
        assert not host.sandbox.path(f"/etc/systemd/system/{SERVICE}").exists()

    def test_pip_cannot_install(self, installed: Host, package: PackageArchive, tmp_path: Path) -> None:
        for site in installed.sandbox.path("/opt/openclaw-budget/venv/lib").glob("python3*/site-packages/requests*"):
            shutil.rmtree(site)  # the package and its dist-info: as if it had never been installed
        empty = tmp_path / "no-wheels"
        empty.mkdir()
        err = failed(installed.install(installed.config(pipArgs=["--no-index", "--find-links", str(empty)]), package))
        assert "No matching distribution found for requests" in err, "pip's own error is shown"
        assert "enforcer.pipArgs" in err

    def test_settings_the_enforcer_rejects(self, installed: Host, package: PackageArchive) -> None:
        cfg = installed.config()
        env_path = installed.sandbox.path("/etc/openclaw-budget/enforcer.env")
        env_before = env_path.read_text()
        bad = render_env_file(cfg, fake_token()).replace("MAX_DAILY_USD=5", "MAX_DAILY_USD=five")
        err = failed(installed.install(cfg, package, stdin=bad))
        assert "MAX_DAILY_USD='five' is not a number" in err
        assert "the enforcer rejects these settings" in err
        assert env_path.read_text() == env_before, "the old settings stay"
        assert installed.changing_calls() == [], "the running service is left alone"
        assert fake_token() not in err

    def test_no_settings_on_stdin(self, host: Host, package: PackageArchive) -> None:
        err = failed(host.install(host.config(), package, stdin=""))
        assert "no enforcer settings on stdin" in err


def test_sftp_relative_path_is_the_login_home(sshd_server: SshServer, tmp_path: Path) -> None:
    """CopyToRemote is given a relative remote path; OpenSSH's SFTP resolves it in the user's home."""
    name = f".openclaw-usage-sftp-test-{os.getpid()}"
    home = Path(os.path.expanduser(f"~{sshd_server.user}"))
    local = tmp_path / "payload"
    local.write_text("payload")
    batch = tmp_path / "batch"
    batch.write_text(f"mkdir {name}\nput {local} {name}/payload\n")
    try:
        argv = sshd_server.ssh_argv("true")
        options = argv[1 : argv.index(f"{sshd_server.user}@{sshd_server.host}")]
        options = [o if o != "-p" else "-P" for o in options]
        result = subprocess.run(
            ["sftp", *options, "-b", str(batch), f"{sshd_server.user}@{sshd_server.host}"],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert (home / name / "payload").read_text() == "payload"
    finally:
        shutil.rmtree(home / name, ignore_errors=True)
