"""The install/uninstall commands as rendered: quoting, sudo, no secrets, shell that lints clean.

Whether they *work* is tested for real over SSH in test_install_ssh.py.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from components.enforcer_service import render_files
from components.enforcer_service.commands import (
    install_command,
    render_install_script,
    render_uninstall_script,
    render_wrapper,
    sudo_prefix,
    uninstall_command,
    upload_dir_cleanup_command,
    upload_dir_command,
)
from components.enforcer_service.package import describe_archive
from tests.components.enforcer_service.support import fake_token, make_config, workstation_raw

HOSTS_AS_ROOT = {
    "muletto": {"address": "192.168.1.100", "user": "root", "privateKey": "k"},
    "workstation": {"address": "192.168.1.111", "user": "root", "privateKey": "k"},
}


def shellcheck() -> str:
    found = shutil.which("shellcheck")
    if not found:
        pytest.fail(
            "shellcheck not found; install it with `bash tests/setup/sshd.sh` (tests/run does this)", pytrace=False
        )
    return found


def variants() -> dict[str, object]:
    return {
        "watch": make_config(),
        "timer": make_config({"runAs": "timer", "intervalSeconds": 300}),
        "sandbox": make_config({"rootDir": "/srv/sandbox", "systemctl": "/usr/local/bin/fake-systemctl --x"}),
        "offline": make_config({"pipArgs": ["--no-index", "--find-links", "/srv/wheels; rm -rf /"]}),
        "tmp-flag": make_config({"flagFile": "/tmp/openclaw-budget-exceeded"}, gate={"enabled": False}),
    }


@pytest.mark.parametrize("name", list(variants()))
def test_scripts_lint_clean(name: str, tmp_path: Path) -> None:
    cfg = variants()[name]
    for script_name, text in (
        ("install.sh", render_install_script(cfg, describe_archive())),
        ("uninstall.sh", render_uninstall_script(cfg)),
        ("openclaw-budget", render_wrapper(cfg)),
    ):
        path = tmp_path / script_name
        path.write_text(text)
        subprocess.run(["sh", "-n", str(path)], check=True)
        # SC2016: single-quoted text with backticks/$ is literal on purpose (unit and file contents).
        result = subprocess.run([shellcheck(), "-s", "sh", "-e", "SC2016", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}/{script_name}:\n{result.stdout}"


def test_every_configured_value_is_quoted() -> None:
    cfg = variants()["offline"]
    script = render_install_script(cfg, describe_archive())
    assert "pip_install() { \"$@\" --no-index --find-links '/srv/wheels; rm -rf /'; }" in script
    cfg = variants()["sandbox"]
    assert "svc_ctl() { /usr/local/bin/fake-systemctl --x \"$@\"; }" in render_uninstall_script(cfg)
    assert "\nROOT=/srv/sandbox\n" in render_uninstall_script(cfg)


def test_command_is_the_script_under_sh_with_the_upload_path() -> None:
    cfg = make_config(hosts=HOSTS_AS_ROOT)
    script = render_install_script(cfg, describe_archive())
    words = shlex.split(install_command(cfg, describe_archive()), posix=True)
    assert words[:3] == ["/bin/sh", "-c", script]
    assert words[3] == "openclaw-budget-install"
    # Expanded by the SSH user's login shell, before any sudo.
    upload = '"$HOME"/.openclaw-usage/enforcer-upload/enforcer.tar'
    assert install_command(cfg, describe_archive()).endswith(f" openclaw-budget-install {upload}")


def test_sudo_prefix() -> None:
    as_sam = make_config()
    assert sudo_prefix(as_sam) == "sudo -n"
    assert install_command(as_sam, describe_archive()).startswith("sudo -n /bin/sh -c ")
    assert uninstall_command(as_sam).startswith("sudo -n /bin/sh -c ")
    as_root = make_config(hosts=HOSTS_AS_ROOT)
    assert sudo_prefix(as_root) == ""
    assert install_command(as_root, describe_archive()).startswith("/bin/sh -c ")
    explicit = make_config({"sudo": "doas -n"})
    assert uninstall_command(explicit).startswith("doas -n /bin/sh -c ")


def test_package_hash_is_in_the_install_script() -> None:
    archive = describe_archive()
    script = render_install_script(make_config(), archive)
    assert f"\nPACKAGE_SHA256={archive.sha256}\n" in script
    assert f"\nRELEASE_ID={archive.sha256[:16]}\n" in script


def test_no_secret_in_commands() -> None:
    cfg = make_config()
    commands = (install_command(cfg, describe_archive()), uninstall_command(cfg))
    for text in commands + (upload_dir_command(), upload_dir_cleanup_command()):
        assert fake_token() not in text
        assert "FAKE-TEST-KEY" not in text


def test_keep_state_switch() -> None:
    assert "\nKEEP_STATE=yes\n" in render_uninstall_script(make_config())
    assert "\nKEEP_STATE=no\n" in render_uninstall_script(make_config({"keepStateOnDestroy": False}))


class TestRenderFiles:
    def test_files_of_the_enforcer_host(self) -> None:
        files = render_files(make_config())
        assert list(files) == ["muletto"]
        assert sorted(files["muletto"]) == [
            "_commands/enforcer-install.sh",
            "_commands/enforcer-uninstall.sh",
            "etc/openclaw-budget/enforcer.env",
            "etc/systemd/system/openclaw-budget-enforcer.service",
            "opt/openclaw-budget/bin/openclaw-budget",
        ]

    def test_timer_mode_renders_both_units(self) -> None:
        files = render_files(make_config({"runAs": "timer", "intervalSeconds": 300}))["muletto"]
        assert "etc/systemd/system/openclaw-budget-enforcer.timer" in files

    def test_sandbox_root_prefixes_host_files(self) -> None:
        files = render_files(make_config({"rootDir": "/srv/sandbox"}))["muletto"]
        assert "srv/sandbox/etc/systemd/system/openclaw-budget-enforcer.service" in files

    def test_secrets_are_masked(self) -> None:
        raw = workstation_raw()
        assert raw["matrix"]["accessToken"] == fake_token()
        for text in render_files(make_config())["muletto"].values():
            assert fake_token() not in text
