"""A small YAML writer that keeps key order and puts a comment above any key.

PyYAML drops comments, and a hand-written template drifts from the data the tests check.  This writes the
plain subset our collector configs use (mappings, lists, scalars) from a dict, so the text a user reviews
carries the "why" next to each setting, while ``yaml.safe_load(text)`` gives back exactly the dict that was
written (the tests assert that round trip).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import yaml

Path = tuple[str, ...]


def _scalar(value: Any) -> str:
    """One scalar as YAML, quoted only where YAML needs it (``yaml.safe_dump`` decides)."""
    if value is None or isinstance(value, (Mapping, list, tuple)):
        raise TypeError(f"not a scalar: {value!r}")
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True)
    if text.endswith("\n...\n"):
        text = text[: -len("\n...\n")]
    text = text.strip()
    if "\n" in text:
        raise ValueError(f"multi-line scalar not supported here: {value!r}")
    return text


def _is_scalar_list(value: Sequence[Any]) -> bool:
    return all(not isinstance(item, (Mapping, list, tuple)) for item in value)


def _emit(node: Mapping[str, Any], path: Path, indent: int, comments: Mapping[Path, str], out: list[str]) -> None:
    pad = " " * indent
    for key, value in node.items():
        if not isinstance(key, str):
            raise TypeError(f"keys must be strings: {key!r} at {'.'.join(path)}")
        here = path + (key,)
        if indent == 0 and out and out[-1] != "":
            out.append("")  # a blank line between top-level sections
        for line in comments.get(here, "").splitlines():
            out.append(f"{pad}# {line}".rstrip())
        name = _scalar(key)
        if isinstance(value, Mapping):
            if not value:
                out.append(f"{pad}{name}: {{}}")
            else:
                out.append(f"{pad}{name}:")
                _emit(value, here, indent + 2, comments, out)
        elif isinstance(value, (list, tuple)):
            if _is_scalar_list(value):
                out.append(f"{pad}{name}: [{', '.join(_scalar(v) for v in value)}]")
                continue
            out.append(f"{pad}{name}:")
            for item in value:
                if not isinstance(item, Mapping) or not item:
                    raise TypeError(f"lists hold scalars or non-empty mappings only ({'.'.join(here)})")
                item_lines: list[str] = []
                _emit(item, here, indent + 4, {}, item_lines)
                first = item_lines[0]
                item_lines[0] = f"{pad}  - {first[indent + 4:]}"
                out.extend(item_lines)
        else:
            out.append(f"{pad}{name}: {_scalar(value)}")


def dump(document: Mapping[str, Any], comments: Mapping[Path, str] | None = None, header: str = "") -> str:
    """YAML text of ``document``; ``comments[(key, subkey, ...)]`` goes above that key, ``header`` on top."""
    out: list[str] = [f"# {line}".rstrip() for line in header.splitlines()]
    if out:
        out.append("")
    _emit(document, (), 0, comments or {}, out)
    return "\n".join(out) + "\n"
