"""An independent model of OpenClaw's ``config patch`` semantics, to check the patches the tool builds.

From openclaw 2026.9.6 (``dist/config-cli-input-*.mjs`` ``buildConfigPatchOperations``, observed in
openclaw.md §11): objects merge recursively, scalars and arrays replace, ``null`` deletes, a path named
with ``--replace-path`` is set as a whole, an empty object merges, and shrinking an existing array without
``--replace-path`` is refused.
"""
from __future__ import annotations

import copy
from typing import Any


class Refused(AssertionError):
    pass


def apply_openclaw_patch(base: dict[str, Any], patch: dict[str, Any], replace_paths: list[str]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    replace = set(replace_paths)

    def dotted(keys: list[str]) -> str:
        from components.gateway.openclaw_patch import cli_path

        return cli_path(keys)

    def walk(target: dict[str, Any], node: dict[str, Any], keys: list[str]) -> None:
        for key, value in node.items():
            here = keys + [key]
            if dotted(here) in replace:
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = copy.deepcopy(value)
                continue
            if value is None:
                target.pop(key, None)
                continue
            if isinstance(value, dict):
                if not isinstance(target.get(key), dict):
                    target[key] = {}
                walk(target[key], value, here)
                continue
            if isinstance(value, list) and isinstance(target.get(key), list):
                old = target[key]
                if any(item not in value for item in old):
                    raise Refused(f"Refusing to replace {dotted(here)}; it would remove existing entries")
            target[key] = copy.deepcopy(value)

    walk(result, patch, [])
    return result
