"""The shipped package archive: deterministic, only the source, hash changes exactly with the content."""
from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import pytest

from components.enforcer_service.package import (
    ENFORCER_SOURCE,
    FIXED_MTIME,
    archive_bytes,
    build_archive,
    describe_archive,
)


def copy_package(tmp_path: Path) -> Path:
    target = tmp_path / "enforcer"
    shutil.copytree(ENFORCER_SOURCE, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_archive_is_the_repo_package() -> None:
    data, names = archive_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for path in ENFORCER_SOURCE.glob("*.py"):
            name = f"enforcer/{path.name}"
            assert name in members, f"{name} missing from the archive"
            extracted = tar.extractfile(members[name])
            assert extracted is not None and extracted.read() == path.read_bytes()
    assert "enforcer/__main__.py" in names


def test_archive_entries_are_normalised() -> None:
    data, _ = archive_bytes()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            assert member.uid == member.gid == 0, member.name
            assert member.mtime == FIXED_MTIME, member.name
            assert member.mode == (0o755 if member.isdir() else 0o644), member.name
            assert member.name.startswith("enforcer"), member.name


def test_same_source_same_bytes(tmp_path: Path) -> None:
    first = build_archive(out_dir=tmp_path / "a")
    second = build_archive(out_dir=tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.path is not None and second.path is not None
    assert first.path.read_bytes() == second.path.read_bytes()
    assert hashlib.sha256(first.path.read_bytes()).hexdigest() == first.sha256
    assert describe_archive().sha256 == first.sha256


def test_bytecode_hidden_files_and_mtimes_do_not_change_the_hash(tmp_path: Path) -> None:
    source = copy_package(tmp_path)
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\x00junk")
    (source / ".swp").write_text("editor leftovers")
    (source / "stray.pyc").write_bytes(b"\x00")
    for path in source.rglob("*"):
        path.touch()
    described = describe_archive(source)
    assert described.sha256 == describe_archive().sha256
    assert not any("__pycache__" in name or name.endswith(".pyc") or "/." in name for name in described.files)


def test_any_content_change_changes_the_hash(tmp_path: Path) -> None:
    source = copy_package(tmp_path)
    before = describe_archive(source).sha256
    with open(source / "cli.py", "a") as handle:
        handle.write("\n# changed\n")
    assert describe_archive(source).sha256 != before


def test_not_a_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not the enforcer package"):
        describe_archive(tmp_path)


def test_build_replaces_a_corrupt_cached_archive(tmp_path: Path) -> None:
    built = build_archive(out_dir=tmp_path)
    assert built.path is not None
    built.path.write_bytes(b"corrupt")
    again = build_archive(out_dir=tmp_path)
    assert again.path == built.path
    assert hashlib.sha256(built.path.read_bytes()).hexdigest() == built.sha256
