"""``python -m components render``: every file a stack would put on its hosts, for review.

The project's ``helm template``: no Pulumi CLI, no network, secrets masked.  One folder per host; each
component contributes its files through its pure ``render_files(cfg)``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from components import collector, enforcer_service, gateway
from components.config import StackConfig

RENDERERS = (gateway.render_files, collector.render_files, enforcer_service.render_files)


def render_stack(cfg: StackConfig) -> dict[str, dict[str, str]]:
    """``{host name: {relative path: content}}`` for every component of the stack."""
    files: dict[str, dict[str, str]] = {}
    for render in RENDERERS:
        for host, host_files in render(cfg).items():
            target = files.setdefault(host, {})
            for path, content in host_files.items():
                if path in target:
                    raise ValueError(f"two components render {host}/{path}")
                target[path] = content
    return files


def write_tree(files: dict[str, dict[str, str]], out_dir: Path) -> list[Path]:
    """Write the rendered tree, replacing ``out_dir`` as a whole so no stale file survives a re-render."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".render-", dir=out_dir.parent))
    written = []
    for host, host_files in sorted(files.items()):
        for rel, content in sorted(host_files.items()):
            path = staging / host / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            written.append(out_dir / host / rel)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return written
