"""The enforcer package as a deterministic archive: same source, same bytes, same hash.

The hash is what re-deploys the enforcer: it names the release directory on the host, the install script
checks the uploaded archive against it, and it is a trigger of the upload.  So it must change when (and
only when) the package's source changes: no timestamps, owners or ``__pycache__`` in the archive.  The
archive is an uncompressed tar: gzip output depends on the zlib version of the machine running Pulumi,
which would re-deploy an unchanged package after a zlib upgrade.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The package shipped to the host: read from the repository at deploy time, never copied.
ENFORCER_SOURCE = REPO_ROOT / "enforcer"
#: Every entry gets this mtime (2020-01-01): deterministic, and not "implausibly old" for tar.
FIXED_MTIME = 1577836800


@dataclass(frozen=True)
class PackageArchive:
    #: The archive on disk (None when only described, e.g. for a render).
    path: Optional[Path]
    sha256: str
    files: tuple[str, ...]

    @property
    def release_id(self) -> str:
        """Name of the release directory on the host."""
        return self.sha256[:16]


def _package_files(source: Path) -> list[Path]:
    if not (source / "__init__.py").is_file() or not (source / "__main__.py").is_file():
        raise FileNotFoundError(f"{source} is not the enforcer package (no __init__.py/__main__.py)")
    files = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.is_file() and path.suffix not in (".pyc", ".pyo"):
            files.append(path)
    return files


def archive_bytes(source: Path = ENFORCER_SOURCE) -> tuple[bytes, tuple[str, ...]]:
    """A tar of ``source`` as ``enforcer/...``: sorted, root-owned, 0644/0755, fixed mtime."""
    buffer = io.BytesIO()
    names: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs_added: set[str] = set()

        def add_dir(name: str) -> None:
            if name in dirs_added:
                return
            parent = os.path.dirname(name)
            if parent:
                add_dir(parent)
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, FIXED_MTIME
            tar.addfile(info)
            dirs_added.add(name)

        for path in _package_files(source):
            name = "enforcer/" + path.relative_to(source).as_posix()
            add_dir(os.path.dirname(name))
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
    return buffer.getvalue(), tuple(names)


def describe_archive(source: Path = ENFORCER_SOURCE) -> PackageArchive:
    """The archive's hash and file list, without writing it anywhere."""
    data, names = archive_bytes(source)
    return PackageArchive(path=None, sha256=hashlib.sha256(data).hexdigest(), files=names)


def build_archive(source: Path = ENFORCER_SOURCE, out_dir: Path | None = None) -> PackageArchive:
    """Write the archive (atomically, once per content) and return its path and hash.

    The file is what Pulumi's FileAsset reads at preview and up; it lives outside the repository, in a
    per-user temp directory, named by its hash so two stacks never overwrite each other's archive.
    """
    data, names = archive_bytes(source)
    sha256 = hashlib.sha256(data).hexdigest()
    out_dir = out_dir or Path(tempfile.gettempdir()) / f"openclaw-usage-{os.getuid()}"
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = out_dir / f"enforcer-{sha256[:16]}.tar"
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".enforcer-", suffix=".tar")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    return PackageArchive(path=path, sha256=sha256, files=names)
