#!/usr/bin/env python3
"""openclaw-patch: turn on OTLP metrics, per-model prices and our plugins in an OpenClaw gateway's openclaw.json.

Runs on the gateway host with the host's python3 (3.9+), standard library only plus the pure-Python
``json5`` package shipped beside it.  It edits exactly the keys named in the spec and nothing else, asks
the gateway's own CLI to validate every candidate before it replaces the file, writes atomically with a
timestamped backup, records the previous value of every key it manages so ``revert`` can restore them, and
after a change checks that the gateway really picked it up.

Why the file is edited here rather than through ``openclaw config set``: ``config get`` redacts secrets
(apiKey becomes ``__OPENCLAW_REDACTED__``) and materialises defaults, so a read-modify-write through it
would destroy API keys; and ``config patch`` replaces arrays wholesale.  OpenClaw still has the last word:
the exact candidate file is written next to openclaw.json (the directory the container mounts) and checked
with the gateway's own ``config validate --json``, ``OPENCLAW_CONFIG_PATH`` pointing at it (passed with
``-e`` through ``docker exec``).  ``config patch --dry-run`` is not enough: in 2026.9.6 it does not check
the config of a plugin whose load path the same change adds.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import fcntl
import json
import os
import posixpath
import re
import shlex
import stat
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

if sys.version_info < (3, 9):  # pragma: no cover - exercised only on old hosts
    sys.stderr.write("openclaw-patch: error: needs Python 3.9 or newer (found %s)\n" % sys.version.split()[0])
    sys.exit(1)

# The deploy ships the pure-Python json5 package in a ``json5/`` directory next to this script (when run as
# a script, Python puts that directory first on sys.path already).
_HERE = os.path.dirname(os.path.abspath(__file__))
try:
    import json5
except ImportError:  # pragma: no cover - only when imported as a module from elsewhere
    sys.path.insert(0, _HERE)
    try:
        import json5
    except ImportError:
        sys.stderr.write(
            "openclaw-patch: error: the json5 package is missing; it must sit next to this script "
            "(%s/json5/__init__.py)\n" % _HERE
        )
        sys.exit(1)

PROG = "openclaw-patch"
STATE_VERSION = 1
SPEC_VERSION = 1
DEFAULT_OPENCLAW = "docker exec -i openclaw-gateway node /app/dist/entry.js"
OTEL_PLUGIN_ID = "diagnostics-otel"
OTEL_PLUGIN_INSTALL_SPEC = "clawhub:@openclaw/diagnostics-otel"
MASK = "********"

#: Gateway log lines that prove the exporter did NOT start (OpenClaw 2026.4.x .. 2026.9.x wording).
DEFAULT_LOG_FAILURES = (
    r"diagnostics-otel: internal diagnostics capability unavailable",
    r"diagnostics-otel: failed to start SDK",
    r"plugin service failed \(diagnostics-otel",
    r"diagnostics-otel: unsupported (\w+ )?protocol",
    r"plugin not installed: diagnostics-otel",
    r"config reload skipped \(invalid config\)",
    r"config reload failed",
)

#: Tolerated clock difference between this host and the gateway (a container shares the host's clock).
CLOCK_SLACK_SECONDS = 5
#: The gateway's startup line naming its plugins; diagnostics-otel among them, and then "ready" (plugin
#: services started), is the evidence on versions that keep no exporter-health records (2026.4.x).
_LOG_LISTENING = re.compile(r"listening \(\d+ plugins?: ([^;)]*)")
_LOG_READY = re.compile(r"\[gateway\] ready\b")
_LOG_STAMP = re.compile(r"^\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))")
#: Gateway log lines worth showing when the verification fails.
_LOG_EVIDENCE = re.compile(r"(?i)diagnostics|otel|plugins?\b|reload|restart")
_SECRET_KEY = re.compile(r"(?i)(api[-_]?key|token|secret|password|authorization|bearer|cookie)")


# ------------------------------------------------------------------------------------------- errors


class PatchError(Exception):
    """Anything that stops the tool; the message is shown to the user as is."""


class OpenClawRejected(PatchError):
    """The gateway's CLI said no: the candidate is not a valid openclaw.json."""

    def __init__(self, problems: List[str]):
        self.problems = problems
        super().__init__(
            "OpenClaw rejected the change (openclaw.json left unchanged):\n"
            + "\n".join("  - " + p for p in problems)
        )


class OpenClawUnavailable(PatchError):
    """The gateway's CLI could not be run or gave no usable answer."""


# ------------------------------------------------------------------------------------------- paths
#
# A path is a list of segments: a ``str`` is an object key, a ``{"id": "..."}`` dict selects the one element
# of an array whose ``id`` matches (model entries are identified by id, never by index).

Segment = Union[str, Dict[str, str]]
Path = List[Segment]


def path_str(path: Sequence[Segment]) -> str:
    """Human form, e.g. ``models.providers.anthropic.models[id=claude-sonnet-4].cost``."""
    out = ""
    for seg in path:
        if isinstance(seg, dict):
            out += "[id=%s]" % seg["id"]
        else:
            out += ("." if out else "") + seg
    return out


def path_key(path: Sequence[Segment]) -> str:
    return json.dumps(list(path), sort_keys=True)


def _select(node: Any, seg: Segment, where: Sequence[Segment]) -> Tuple[bool, Any]:
    if isinstance(seg, dict):
        if not isinstance(node, list):
            return False, None
        matches = [e for e in node if isinstance(e, dict) and e.get("id") == seg["id"]]
        if len(matches) > 1:
            raise PatchError(
                "%s: %d entries have id %r; OpenClaw identifies models by id, remove the duplicates first"
                % (path_str(where), len(matches), seg["id"])
            )
        return (True, matches[0]) if matches else (False, None)
    if isinstance(node, dict) and seg in node:
        return True, node[seg]
    return False, None


def lookup(root: Any, path: Sequence[Segment]) -> Tuple[bool, Any]:
    """``(found, value)`` of ``path`` in ``root``."""
    node = root
    for i, seg in enumerate(path):
        found, node = _select(node, seg, path[:i])
        if not found:
            return False, None
    return True, node


def assign(root: Dict[str, Any], path: Sequence[Segment], value: Any, created: List[Path]) -> None:
    """Set ``path`` to ``value``, creating missing containers (their paths are appended to ``created``)."""
    node: Any = root
    for i, seg in enumerate(path):
        last = i == len(path) - 1
        if isinstance(seg, dict):
            if not isinstance(node, list):
                raise PatchError("%s: expected an array" % path_str(path[:i]))
            found, element = _select(node, seg, path[:i])
            if last:
                if found:
                    node[node.index(element)] = value
                else:
                    node.append(value)
                return
            if not found:
                raise PatchError("%s: no entry with id %r" % (path_str(path[:i]), seg["id"]))
            node = element
            continue
        if not isinstance(node, dict):
            raise PatchError("%s: expected an object, found %s" % (path_str(path[:i]) or "<root>", _kind(node)))
        if last:
            node[seg] = value
            return
        if seg not in node:
            node[seg] = [] if isinstance(path[i + 1], dict) else {}
            created.append(list(path[: i + 1]))
        node = node[seg]


def remove(root: Dict[str, Any], path: Sequence[Segment]) -> bool:
    found, parent = lookup(root, path[:-1])
    if not found:
        return False
    seg = path[-1]
    if isinstance(seg, dict):
        present, element = _select(parent, seg, path[:-1])
        if present:
            parent.remove(element)
        return present
    if isinstance(parent, dict) and seg in parent:
        del parent[seg]
        return True
    return False


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: 1 == 1.0, but True != 1 and key order does not matter."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def deep_merge(base: Any, overlay: Dict[str, Any]) -> Dict[str, Any]:
    """``overlay`` merged into a copy of ``base`` (objects recursively; anything else replaced)."""
    result = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# ------------------------------------------------------------------------------------ reading/writing


def parse_config(text: str, where: str = "openclaw.json") -> Dict[str, Any]:
    """The JSON5 document (comments, trailing commas, unquoted keys) as plain Python values."""
    try:
        value = json5.loads(text)
    except ValueError as error:
        raise PatchError("%s is not valid JSON5: %s (nothing was changed)" % (where, error)) from None
    if not isinstance(value, dict):
        raise PatchError("%s must hold a JSON5 object at the top level, found %s" % (where, _kind(value)))
    return value


def dump_config(config: Dict[str, Any]) -> str:
    """The text written back: plain JSON, 2-space indent, like OpenClaw's own writes (comments are lost)."""
    try:
        return json.dumps(config, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError:
        raise PatchError("openclaw.json holds Infinity or NaN, which JSON cannot represent; fix it first") from None


def read_config_bytes(path: str) -> Tuple[bytes, os.stat_result]:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise PatchError("%s does not exist (check --config / gateway.configPath)" % path) from None
    except OSError as error:
        raise PatchError("cannot read %s: %s" % (path, error.strerror)) from None
    if stat.S_ISLNK(info.st_mode):
        raise PatchError("%s is a symlink; OpenClaw requires openclaw.json to be a regular file" % path)
    if not stat.S_ISREG(info.st_mode):
        raise PatchError("%s is not a regular file" % path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise PatchError("cannot read %s: %s" % (path, error.strerror)) from None
    return data, info


def decode(data: bytes, path: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PatchError("%s is not UTF-8 text (byte %d): nothing was changed" % (path, error.start)) from None
    return text[1:] if text.startswith("\ufeff") else text


def atomic_write(path: str, data: bytes, like: Optional[os.stat_result] = None, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a mix.

    Temp file in the same directory, fsync, same owner and mode as the file it replaces, rename, fsync
    of the directory.  If the owner cannot be kept (not root, file owned by someone else) nothing is
    written: a gateway running as another user could otherwise no longer read its own config.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if like is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(like.st_mode))
                if (like.st_uid, like.st_gid) != (os.geteuid(), os.getegid()):
                    try:
                        os.fchown(handle.fileno(), like.st_uid, like.st_gid)
                    except PermissionError:
                        raise PatchError(
                            "cannot keep the owner %d:%d of %s (running as uid %d); run as that user or root"
                            % (like.st_uid, like.st_gid, path, os.geteuid())
                        ) from None
            else:
                os.fchmod(handle.fileno(), mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def utc_stamp(now: Optional[datetime.datetime] = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.%fZ")


def write_backup(data: bytes, config_path: str, backup_dir: str) -> str:
    """Keep the exact bytes (comments included) of the file about to be replaced; mode 0600 (API keys)."""
    os.makedirs(backup_dir, mode=0o700, exist_ok=True)
    target = os.path.join(backup_dir, "%s.%s.bak" % (os.path.basename(config_path), utc_stamp()))
    atomic_write(target, data, mode=0o600)
    return target


# ---------------------------------------------------------------------------------------------- spec


def load_spec(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except FileNotFoundError:
        raise PatchError("spec file %s does not exist" % path) from None
    except (OSError, ValueError) as error:
        raise PatchError("cannot read spec %s: %s" % (path, error)) from None
    validate_spec(spec)
    return spec


def validate_spec(spec: Any) -> None:
    """Reject a malformed spec up front, naming the key (a typo must not silently disable a feature)."""
    problems: List[str] = []
    if not isinstance(spec, dict):
        raise PatchError("spec: must be a JSON object")
    known = {"version", "diagnostics", "plugins", "prices", "pluginRevisions", "otelPlugin", "apply", "verify"}
    for key in sorted(set(spec) - known):
        problems.append("%s: unknown spec key (known: %s)" % (key, ", ".join(sorted(known))))
    if spec.get("version", SPEC_VERSION) != SPEC_VERSION:
        problems.append("version: unsupported spec version %r (this tool reads %d)" % (spec.get("version"), SPEC_VERSION))
    diagnostics = spec.get("diagnostics", {})
    if not isinstance(diagnostics, dict):
        problems.append("diagnostics: must be an object")
    elif "otel" in diagnostics and not isinstance(diagnostics["otel"], dict):
        problems.append("diagnostics.otel: must be an object")
    plugins = spec.get("plugins", {})
    if not isinstance(plugins, dict):
        problems.append("plugins: must be an object of plugin id -> entry")
    else:
        for plugin_id, entry in plugins.items():
            if not isinstance(entry, dict):
                problems.append("plugins.%s: must be an object" % plugin_id)
            elif "loadPath" in entry and not (isinstance(entry["loadPath"], str) and entry["loadPath"]):
                problems.append("plugins.%s.loadPath: must be a non-empty string" % plugin_id)
    revisions = spec.get("pluginRevisions", {})
    if not isinstance(revisions, dict) or not all(isinstance(v, str) for v in revisions.values()):
        problems.append("pluginRevisions: must be an object of plugin id -> revision string")
    prices = spec.get("prices", {})
    if not isinstance(prices, dict):
        problems.append("prices: must be an object of provider -> model id -> price")
    else:
        for provider, models in prices.items():
            if not isinstance(models, dict):
                problems.append("prices.%s: must be an object of model id -> price" % provider)
                continue
            for model_id, price in models.items():
                where = "prices.%s.%s" % (provider, model_id)
                if not isinstance(price, dict):
                    problems.append("%s: must be an object" % where)
                    continue
                for field in ("input", "output", "cacheRead", "cacheWrite"):
                    value = price.get(field)
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                        problems.append("%s.%s: required, a number >= 0 (USD per 1M tokens)" % (where, field))
                extra = set(price) - {"name", "input", "output", "cacheRead", "cacheWrite"}
                for key in sorted(extra):
                    problems.append("%s.%s: unknown price key" % (where, key))
    for section, keys in (
        ("otelPlugin", {"check", "install", "installSpec"}),
        ("apply", {"restartCommand"}),
        ("verify", {"enabled", "configGet", "exporter", "logCommand", "logReady", "logFailures", "timeoutSeconds",
                    "intervalSeconds"}),
    ):
        value = spec.get(section, {})
        if not isinstance(value, dict):
            problems.append("%s: must be an object" % section)
            continue
        for key in sorted(set(value) - keys):
            problems.append("%s.%s: unknown key (known: %s)" % (section, key, ", ".join(sorted(keys))))
    if problems:
        raise PatchError("invalid spec:\n" + "\n".join("  - " + p for p in problems))


def spec_secrets(spec: Dict[str, Any]) -> List[str]:
    """Values that must never be printed: every OTLP header value (e.g. the bearer token)."""
    headers = (spec.get("diagnostics") or {}).get("otel", {}).get("headers") or {}
    found = []
    for value in headers.values():
        if isinstance(value, str) and value:
            found.append(value)
            if value.lower().startswith("bearer ") and len(value) > 7:
                found.append(value[7:])
    return found


def mask(value: Any, key: str = "") -> Any:
    """A copy safe to print: header values and secret-looking keys are masked."""
    if isinstance(value, dict):
        if key == "headers":
            return {k: MASK for k in value}
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str) and key and _SECRET_KEY.search(key):
        return MASK
    return value


class Redactor:
    """Scrubs known secret strings from any text we print (CLI output included)."""

    def __init__(self, secrets: Sequence[str]):
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


# --------------------------------------------------------------------------------------- the model


ABSENT = {"absent": True}


def _snapshot(found: bool, value: Any) -> Dict[str, Any]:
    return {"value": copy.deepcopy(value)} if found else dict(ABSENT)


class Change:
    """One edit of the file, for the report (``before``/``after`` are snapshots)."""

    def __init__(self, path: Sequence[Segment], before: Dict[str, Any], after: Dict[str, Any], note: str = ""):
        self.path = list(path)
        self.before = before
        self.after = after
        self.note = note

    def describe(self) -> str:
        def show(snap: Dict[str, Any]) -> str:
            if snap.get("absent"):
                return "(absent)"
            return json.dumps(mask(snap["value"], _last_key(self.path)), ensure_ascii=False, sort_keys=True)

        text = "%s: %s -> %s" % (path_str(self.path), show(self.before), show(self.after))
        return text + ("  (%s)" % self.note if self.note else "")


def _last_key(path: Sequence[Segment]) -> str:
    for seg in reversed(path):
        if isinstance(seg, str):
            return seg
    return ""


class Plan:
    """The outcome of a pure planning step: the candidate file content and what changes."""

    def __init__(self, candidate: Dict[str, Any], state: Dict[str, Any], changes: List[Change],
                 conflicts: List[str]):
        self.candidate = candidate
        self.state = state
        self.changes = changes
        self.conflicts = conflicts


def _check_include(config: Dict[str, Any], path: Sequence[Segment]) -> None:
    node: Any = config
    for i in range(len(path) + 1):
        if isinstance(node, dict) and "$include" in node:
            where = path_str(path[:i]) or "<root>"
            raise PatchError(
                "openclaw.json uses $include at %s, which holds the managed key %s; openclaw-patch edits "
                "openclaw.json itself only, so move %s back into openclaw.json first"
                % (where, path_str(path), where)
            )
        if i == len(path):
            return
        found, node = _select(node, path[i], path[:i])
        if not found:
            return


def _preconditions(config: Dict[str, Any], spec: Dict[str, Any]) -> None:
    """Settings that would silently defeat the patch: refuse and say which key to change."""
    plugins = config.get("plugins")
    if isinstance(plugins, dict):
        if plugins.get("enabled") is False:
            raise PatchError(
                "plugins.enabled is false in openclaw.json: no plugin loads, so neither diagnostics-otel nor the "
                "budget gate would run; remove plugins.enabled or set it to true"
            )
        deny = plugins.get("deny")
        if isinstance(deny, list):
            for plugin_id in spec.get("plugins", {}):
                if plugin_id in deny:
                    raise PatchError(
                        "plugins.deny lists %r (deny wins over everything); remove it from plugins.deny" % plugin_id
                    )


class _Item:
    """A managed key the spec wants: a value at ``path``, or membership of ``item`` in the array at ``path``."""

    def __init__(self, kind: str, path: Path, value: Any = None, item: Any = None,
                 compute: Optional[Callable[[bool, Any], Any]] = None):
        self.kind = kind
        self.path = path
        self.value = value
        self.item = item
        self.compute = compute

    @property
    def key(self) -> str:
        return path_key(self.path) + ("" if self.kind == "value" else "+" + json.dumps(self.item))


def _record_key(record: Dict[str, Any]) -> str:
    suffix = "" if record["kind"] == "value" else "+" + json.dumps(record["item"])
    return path_key(record["path"]) + suffix


def _desired_items(config: Dict[str, Any], spec: Dict[str, Any], records: Dict[str, Dict[str, Any]]) -> List[_Item]:
    items: List[_Item] = []
    for key, value in (spec.get("diagnostics") or {}).items():
        items.append(_Item("value", ["diagnostics", key], value=copy.deepcopy(value)))

    plugins = config.get("plugins") if isinstance(config.get("plugins"), dict) else {}
    allow = plugins.get("allow")
    # An empty list is no allowlist for OpenClaw (``allow.length > 0`` gates it); appending to it would
    # create one and switch every other plugin off.
    allowlist_exists = isinstance(allow, list) and len(allow) > 0
    for plugin_id, entry in (spec.get("plugins") or {}).items():
        overlay = {k: v for k, v in entry.items() if k != "loadPath"}
        items.append(_Item(
            "value", ["plugins", "entries", plugin_id],
            compute=lambda found, current, overlay=overlay: deep_merge(current if found else None, overlay),
        ))
        if allowlist_exists:
            items.append(_Item("member", ["plugins", "allow"], item=plugin_id))
        if entry.get("loadPath"):
            items.append(_Item("member", ["plugins", "load", "paths"], item=entry["loadPath"]))

    for provider, models in (spec.get("prices") or {}).items():
        for model_id, price in models.items():
            cost = {k: price[k] for k in ("input", "output", "cacheRead", "cacheWrite")}
            entry_path: Path = ["models", "providers", provider, "models", {"id": model_id}]
            found, entry = lookup(config, entry_path)
            if found and not isinstance(entry, dict):
                raise PatchError("%s: expected an object" % path_str(entry_path))
            if path_key(entry_path) in records or not found:
                # The entry is (or becomes) ours: add it with id and name, or keep what is there now.
                name = price.get("name") or model_id
                items.append(_Item(
                    "value", entry_path,
                    compute=lambda found, current, cost=cost, model_id=model_id, name=name: dict(
                        current if found and isinstance(current, dict) else {"id": model_id, "name": name},
                        cost=copy.deepcopy(cost),
                    ),
                ))
            else:
                items.append(_Item("value", entry_path + ["cost"], value=cost))
    return items


def _restore_record(candidate: Dict[str, Any], record: Dict[str, Any], changes: List[Change],
                    conflicts: List[str]) -> None:
    """Undo one record, unless the user changed that key since we set it (then report, don't clobber)."""
    path = record["path"]
    if record["kind"] == "member":
        if not record.get("added"):
            return
        found, array = lookup(candidate, path)
        if found and isinstance(array, list):
            for index, element in enumerate(array):
                if json_equal(element, record["item"]):
                    before = copy.deepcopy(array)
                    del array[index]
                    changes.append(Change(path, {"value": before}, {"value": copy.deepcopy(array)},
                                          "removed %s" % json.dumps(record["item"])))
                    return
        return
    try:
        found, current = lookup(candidate, path)
    except PatchError as error:
        conflicts.append("%s: %s; left as is" % (path_str(path), error))
        return
    previous = record["previous"]
    applied = record["applied"]
    if (not found and previous.get("absent")) or (
        found and not previous.get("absent") and json_equal(current, previous["value"])
    ):
        return  # already as it was (or never changed: the file had our value before we came)
    if found and json_equal(current, applied["value"]):
        if previous.get("absent"):
            remove(candidate, path)
        else:
            assign(candidate, path, copy.deepcopy(previous["value"]), [])
        changes.append(Change(path, {"value": current}, previous))
    else:
        now = "removed" if not found else "changed"
        conflicts.append(
            "%s: %s since openclaw-patch set it; left as is (was %s before the patch)"
            % (path_str(path), now, "absent" if previous.get("absent") else "set")
        )


def _prune(candidate: Dict[str, Any], created: List[Path], changes: List[Change]) -> List[Path]:
    """Remove containers we created that are empty again; returns those still present."""
    kept = []
    for path in sorted(created, key=len, reverse=True):
        found, value = lookup(candidate, path)
        if found and value in ({}, []) and type(value) in (dict, list):
            remove(candidate, path)
            changes.append(Change(path, {"value": value}, dict(ABSENT), "created by openclaw-patch, now empty"))
        elif found:
            kept.append(path)
    return sorted(kept, key=len)


def plan_apply(config: Dict[str, Any], spec: Dict[str, Any], state: Optional[Dict[str, Any]]) -> Plan:
    """Pure: the file content the spec asks for, and the state that lets ``revert`` undo it.

    A key's *previous* value is recorded the first time we manage it and kept across later applies, so
    revert always goes back to what the user had before openclaw-patch touched the file.
    """
    validate_spec(spec)
    _preconditions(config, spec)
    candidate = copy.deepcopy(config)
    old = {_record_key(r): r for r in (state or {}).get("records", [])}
    created: List[Path] = [list(p) for p in (state or {}).get("created", [])]
    changes: List[Change] = []
    conflicts: List[str] = []
    records: List[Dict[str, Any]] = []

    for item in _desired_items(candidate, spec, old):
        _check_include(candidate, item.path)
        record = old.pop(item.key, None)
        found, current = lookup(candidate, item.path)
        if item.kind == "member":
            record = record or {"kind": "member", "path": item.path, "item": item.item, "added": False}
            if found and not isinstance(current, list):
                raise PatchError("%s: expected an array, found %s" % (path_str(item.path), _kind(current)))
            if not found or not any(json_equal(e, item.item) for e in current):
                before = _snapshot(found, current)
                if found:
                    current.append(copy.deepcopy(item.item))
                else:
                    assign(candidate, item.path, [copy.deepcopy(item.item)], created)
                    created.append(list(item.path))
                record["added"] = True
                after = _snapshot(*lookup(candidate, item.path))
                changes.append(Change(item.path, before, after, "added %s" % json.dumps(item.item)))
            if record["added"]:
                records.append(record)
            continue
        target = item.compute(found, current) if item.compute else copy.deepcopy(item.value)
        record = record or {"kind": "value", "path": item.path, "previous": _snapshot(found, current)}
        record["applied"] = {"value": copy.deepcopy(target)}
        if not (found and json_equal(current, target)):
            assign(candidate, item.path, copy.deepcopy(target), created)
            changes.append(Change(item.path, _snapshot(found, current), {"value": target}))
        records.append(record)

    # Keys we managed before but the spec no longer names go back to what they were.
    for record in reversed(list(old.values())):
        _restore_record(candidate, record, changes, conflicts)
    created = _prune(candidate, created, changes)
    new_state = {
        "version": STATE_VERSION,
        "records": records,
        "created": created,
        "pluginRevisions": dict(spec.get("pluginRevisions") or {}),
    }
    return Plan(candidate, new_state, changes, conflicts)


def plugins_to_reload(spec: Dict[str, Any], state: Optional[Dict[str, Any]]) -> List[str]:
    """Plugins whose code changed since the last apply: the running gateway still has the old code."""
    before = (state or {}).get("pluginRevisions") or {}
    return sorted(
        plugin_id for plugin_id, revision in (spec.get("pluginRevisions") or {}).items()
        if plugin_id in before and before[plugin_id] != revision
    )


def plan_revert(config: Dict[str, Any], state: Dict[str, Any]) -> Plan:
    """Pure: restore every recorded key whose value is still what we set; report the others."""
    candidate = copy.deepcopy(config)
    changes: List[Change] = []
    conflicts: List[str] = []
    for record in reversed(state.get("records", [])):
        _restore_record(candidate, record, changes, conflicts)
    _prune(candidate, [list(p) for p in state.get("created", [])], changes)
    return Plan(candidate, {"version": STATE_VERSION, "records": [], "created": []}, changes, conflicts)


# ----------------------------------------------------------------------------------- the OpenClaw CLI


def parse_json_output(text: str) -> Any:
    """JSON printed by the CLI (tolerates a banner or warnings before it)."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for match in re.finditer(r"^[\[{]", text, re.M):
        try:
            return json.loads(text[match.start():])
        except ValueError:
            continue
    raise ValueError("no JSON in output")


class OpenClawCli:
    """Runs the gateway's own CLI, e.g. ``docker exec -i openclaw-gateway node /app/dist/entry.js``."""

    def __init__(self, command: str, timeout: float, redact: Redactor):
        self.command = command
        try:
            self.argv = shlex.split(command)
        except ValueError as error:
            raise PatchError("--openclaw %r: %s" % (command, error)) from None
        if not self.argv:
            raise PatchError("--openclaw is empty")
        self.timeout = timeout
        self.redact = redact

    def display(self, args: Sequence[str]) -> str:
        return self.command + " " + " ".join(shlex.quote(a) for a in args)

    def command_with_env(self, env: Dict[str, str]) -> Tuple[List[str], Dict[str, str]]:
        """argv and process environment that give the CLI ``env``.

        ``docker exec`` / ``podman exec`` (also behind ``sudo``) start the CLI in a container, which does
        not inherit our environment: the variables go in as ``-e`` options.  Any other command inherits it.
        """
        for index, word in enumerate(self.argv[:-1]):
            if os.path.basename(word) in ("docker", "podman") and self.argv[index + 1] == "exec":
                options: List[str] = []
                for name, value in sorted(env.items()):
                    options += ["-e", "%s=%s" % (name, value)]
                return self.argv[: index + 2] + options + self.argv[index + 2:], {}
        return list(self.argv), dict(env)

    def run(self, args: Sequence[str], stdin: Optional[str] = None, timeout: Optional[float] = None,
            env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
        argv, extra_env = self.command_with_env(env or {})
        try:
            return subprocess.run(
                argv + list(args), input=stdin if stdin is not None else "", capture_output=True, text=True,
                timeout=timeout or self.timeout, env=dict(os.environ, **extra_env) if extra_env else None,
            )
        except FileNotFoundError:
            raise OpenClawUnavailable(
                "cannot run the OpenClaw CLI: %r not found (--openclaw %r)" % (self.argv[0], self.command)
            ) from None
        except subprocess.TimeoutExpired:
            raise OpenClawUnavailable(
                "the OpenClaw CLI did not answer within %ds: %s" % (timeout or self.timeout, self.display(args))
            ) from None

    def failure(self, args: Sequence[str], proc: "subprocess.CompletedProcess[str]") -> OpenClawUnavailable:
        output = (proc.stderr.strip() + "\n" + proc.stdout.strip()).strip()
        tail = "\n".join(output.splitlines()[-15:]) or "(no output)"
        return OpenClawUnavailable(
            "the OpenClaw CLI failed (exit %d): %s\n%s" % (proc.returncode, self.display(args), self.redact(tail))
        )

    def run_json(self, args: Sequence[str], stdin: Optional[str] = None,
                 env: Optional[Dict[str, str]] = None) -> Tuple[int, Any]:
        proc = self.run(args, stdin, env=env)
        try:
            return proc.returncode, parse_json_output(proc.stdout)
        except ValueError:
            raise self.failure(args, proc) from None


def _problems(answer: Any) -> List[str]:
    """OpenClaw's error messages from a ``--json`` answer (``config validate`` or ``config patch`` shapes)."""
    problems: List[str] = []
    if not isinstance(answer, dict):
        return problems
    for error in answer.get("errors") or []:
        if isinstance(error, dict) and error.get("message"):
            problems.append(str(error["message"]).lstrip("- ").strip())
    for issue in answer.get("issues") or []:
        if isinstance(issue, dict):
            problems.append("%s: %s" % (issue.get("path", "<root>"), issue.get("message", "")))
    if not problems and isinstance(answer.get("error"), dict) and answer["error"].get("message"):
        problems.append(str(answer["error"]["message"]))
    return problems


def gateway_config_path(cli: OpenClawCli) -> str:
    """Where the CLI reads openclaw.json (inside the container for ``docker exec``): ``config file``."""
    args = ["config", "file"]
    proc = cli.run(args)
    paths = [line.strip() for line in proc.stdout.splitlines() if line.strip().startswith("/")]
    if proc.returncode != 0 or not paths:
        raise cli.failure(args, proc)
    return paths[-1]


def validate_with_openclaw(cli: OpenClawCli, config_path: str, info: os.stat_result, text: str,
                           out: Callable[[str], None]) -> None:
    """Let the gateway's own CLI judge the exact file we are about to write; raise if it says no.

    The candidate is written next to openclaw.json (same owner and mode, so the gateway's user can read
    it; inside the container through the same bind-mounted directory) and checked with
    ``config validate --json`` with ``OPENCLAW_CONFIG_PATH`` pointing at it: the same full check the
    gateway runs on a reload, including the config schemas of plugins the candidate newly loads (which
    ``config patch --dry-run`` does not check in 2026.9.6).  The candidate is removed afterwards.
    """
    in_gateway = gateway_config_path(cli)
    directory = os.path.dirname(os.path.abspath(config_path))
    fd, candidate = tempfile.mkstemp(prefix=".openclaw-patch-candidate-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
            if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(handle.fileno(), info.st_uid, info.st_gid)
                except PermissionError:
                    pass  # the CLI may still read it; if not, it says so below
        seen = posixpath.join(posixpath.dirname(in_gateway), os.path.basename(candidate))
        args = ["config", "validate", "--json"]
        code, answer = cli.run_json(args, env={"OPENCLAW_CONFIG_PATH": seen})
    finally:
        try:
            os.unlink(candidate)
        except OSError:
            pass
    if not isinstance(answer, dict):
        raise OpenClawUnavailable("`%s` gave no verdict" % cli.display(args))
    if answer.get("path") not in (None, seen):
        raise OpenClawUnavailable(
            "the OpenClaw CLI checked %s instead of the candidate %s: --openclaw must pass environment variables to "
            "the CLI (a local command, or `docker exec` / `podman exec`, which get -e)" % (answer.get("path"), seen)
        )
    problems = [cli.redact(p) for p in _problems(answer)]
    if answer.get("valid") is True and code == 0:
        for warning in answer.get("warnings") or []:
            text_ = warning.get("message") if isinstance(warning, dict) else str(warning)
            path = warning.get("path") if isinstance(warning, dict) else None
            out("OpenClaw warning: %s" % cli.redact("%s: %s" % (path, text_) if path else str(text_)))
        return
    if any("file not found" in p for p in problems):
        raise OpenClawUnavailable(
            "the OpenClaw CLI does not see %s (it reads %s): --config must be the file the gateway reads, in a "
            "directory bind-mounted into the container" % (config_path, in_gateway)
        )
    if problems:
        raise OpenClawRejected(problems)
    raise OpenClawUnavailable("`%s` answered neither valid nor a problem (exit %d): %s"
                              % (cli.display(args), code, cli.redact(json.dumps(answer)[:500])))


def _is_trusted(entry: Dict[str, Any]) -> bool:
    trust = entry.get("trust") if isinstance(entry.get("trust"), dict) else {}
    return (
        entry.get("origin") == "bundled"
        or entry.get("trustedOfficialInstall") is True
        or trust.get("reason") in ("bundled", "trusted-official")
    )


def find_plugin(cli: OpenClawCli, plugin_id: str) -> Optional[Dict[str, Any]]:
    args = ["plugins", "list", "--json"]
    code, answer = cli.run_json(args)
    plugins = answer.get("plugins") if isinstance(answer, dict) else None
    if not isinstance(plugins, list):
        raise OpenClawUnavailable("`%s` gave no plugin list (exit %d)" % (cli.display(args), code))
    for entry in plugins:
        if isinstance(entry, dict) and entry.get("id") == plugin_id:
            return entry
    return None


def ensure_otel_plugin(cli: OpenClawCli, spec: Dict[str, Any], out: Callable[[str], None]) -> bool:
    """Make sure the gateway has a diagnostics-otel it trusts; returns True if it was installed now.

    Official Docker images bundle it; npm installs since 2026.5.2 don't; and OpenClaw hands diagnostic
    events only to a bundled or officially installed copy (a copy loaded via plugins.load.paths loads,
    but exports nothing).
    """
    options = spec.get("otelPlugin") or {}
    install_spec = options.get("installSpec") or OTEL_PLUGIN_INSTALL_SPEC
    install_cmd = cli.display(["plugins", "install", install_spec])
    entry = find_plugin(cli, OTEL_PLUGIN_ID)
    if entry is not None and _is_trusted(entry):
        out("diagnostics-otel: present (origin %s)" % entry.get("origin"))
        return False
    if entry is not None:
        trust = entry.get("trust") if isinstance(entry.get("trust"), dict) else {}
        raise PatchError(
            "diagnostics-otel is loaded from %s (origin %s, trust %s): OpenClaw gives diagnostic events only to "
            "a bundled or officially installed copy, so this one would export no metrics. Remove it (from "
            "plugins.load.paths or the extensions directory) and install the official package:\n  %s"
            % (entry.get("source") or entry.get("rootDir"), entry.get("origin"), trust.get("reason", "unknown"),
               install_cmd)
        )
    if not options.get("install"):
        raise PatchError(
            "the gateway has no diagnostics-otel plugin (npm installs of OpenClaw since 2026.5.2 no longer bundle "
            "it; the official Docker images do). Install it with:\n  %s\n(or the npm package: %s), or set "
            "gateway.installOtelPlugin: true in the stack config so `pulumi up` installs it."
            % (install_cmd, cli.display(["plugins", "install", "@openclaw/diagnostics-otel"]))
        )
    out("diagnostics-otel: missing; installing: %s" % install_cmd)
    proc = cli.run(["plugins", "install", install_spec], timeout=max(cli.timeout, 300))
    if proc.returncode != 0:
        raise PatchError("installing diagnostics-otel failed:\n%s" % cli.failure(["plugins", "install", install_spec],
                                                                               proc))
    entry = find_plugin(cli, OTEL_PLUGIN_ID)
    if entry is None or not _is_trusted(entry):
        raise PatchError("`%s` succeeded but the gateway still lists no trusted diagnostics-otel" % install_cmd)
    out("diagnostics-otel: installed (origin %s)" % entry.get("origin"))
    return True


# ----------------------------------------------------------------------------------------- verifying


def _exporter_events(answer: Any) -> Iterator[Dict[str, Any]]:
    if isinstance(answer, dict):
        if answer.get("type") == "telemetry.exporter":
            yield answer
        for value in answer.values():
            yield from _exporter_events(value)
    elif isinstance(answer, list):
        for value in answer:
            yield from _exporter_events(value)


def _line_time(line: str) -> Optional[float]:
    """Epoch seconds of a log line's leading ISO-8601 timestamp (OpenClaw's console format), if any."""
    found = _LOG_STAMP.match(line)
    if not found:
        return None
    text = found.group(1).replace("Z", "+00:00")
    if "." in text:  # Python 3.9's fromisoformat takes 3 or 6 fraction digits only
        head, rest = text.split(".", 1)
        digits, zone = rest[:-6], rest[-6:]
        text = "%s.%s%s" % (head, (digits + "000000")[:6], zone)
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def restarted_with_exporter(log: str, changed_at: Optional[float]) -> Optional[str]:
    """The log line proving the gateway (re)started with diagnostics-otel after the change and is ready."""
    listening: Optional[str] = None
    for line in log.splitlines():
        stamp = _line_time(line)
        fresh = changed_at is None or (stamp is not None and stamp >= changed_at - CLOCK_SLACK_SECONDS)
        if not fresh:
            continue
        found = _LOG_LISTENING.search(line)
        if found:
            plugins = [p.strip() for p in found.group(1).split(",")]
            listening = line if OTEL_PLUGIN_ID in plugins else None
        elif listening and _LOG_READY.search(line):
            return listening
    return None


def latest_metrics_exporter_event(cli: OpenClawCli) -> Tuple[Optional[Dict[str, Any]], str]:
    """Newest ``telemetry.exporter`` event of diagnostics-otel's metrics signal, and a line of evidence."""
    args = ["gateway", "stability", "--type", "telemetry.exporter", "--limit", "1000", "--json"]
    proc = cli.run(args)
    try:
        answer = parse_json_output(proc.stdout)
    except ValueError:
        return None, "`%s` failed: %s" % (cli.display(args), cli.redact((proc.stderr or proc.stdout).strip()[-300:]))
    events = [
        e for e in _exporter_events(answer)
        if e.get("source", e.get("exporter")) == OTEL_PLUGIN_ID and e.get("target", e.get("signal")) == "metrics"
    ]
    if not events:
        return None, "no telemetry.exporter event from diagnostics-otel for metrics yet"
    newest = max(events, key=lambda e: e.get("seq", 0) if isinstance(e.get("seq"), (int, float)) else 0)
    return newest, "telemetry.exporter: %s" % json.dumps(mask(newest), sort_keys=True)


def _expected_otel_ok(got: Any, expected: Dict[str, Any]) -> List[str]:
    problems = []
    if not isinstance(got, dict):
        return ["diagnostics is %s" % _kind(got)]
    if got.get("enabled") is False:
        problems.append("diagnostics.enabled is false")
    otel = got.get("otel")
    if not isinstance(otel, dict) or otel.get("enabled") is not True:
        problems.append("diagnostics.otel.enabled is not true")
        return problems
    for key, value in expected.items():
        if key == "headers":
            continue
        if not json_equal(otel.get(key), value):
            problems.append("diagnostics.otel.%s is %s, expected %s" % (key, json.dumps(otel.get(key)), json.dumps(value)))
    for leftover in ("metricsEndpoint", "metricNamePrefix"):
        if leftover in otel and leftover not in expected:
            problems.append("diagnostics.otel.%s is still set" % leftover)
    return problems


def verify(cli: OpenClawCli, spec: Dict[str, Any], since: str, changed_at: Optional[float],
           out: Callable[[str], None], redact: Redactor) -> None:
    """Check that the gateway runs with the new config; raise with the evidence collected if it doesn't.

    ``changed_at`` (epoch seconds) is when the file was written or the gateway restarted; an exporter state
    recorded before that says nothing about the new config.
    """
    options = spec.get("verify") or {}
    timeout = float(options.get("timeoutSeconds", 120))
    interval = float(options.get("intervalSeconds", 5))
    deadline = time.monotonic() + timeout
    started_at = time.time()
    expected = ((spec.get("diagnostics") or {}).get("otel")) or {}
    evidence: List[str] = []

    def wait() -> bool:
        if time.monotonic() + interval > deadline:
            return False
        time.sleep(interval)
        return True

    if options.get("configGet", True) and expected:
        args = ["config", "get", "diagnostics", "--json"]
        while True:
            proc = cli.run(args)
            try:
                got = parse_json_output(proc.stdout)
                problems = _expected_otel_ok(got, expected) if proc.returncode == 0 else ["exit %d" % proc.returncode]
                shown = json.dumps(mask(got), sort_keys=True)
            except ValueError:
                problems, shown = ["no JSON answer"], (proc.stderr or proc.stdout).strip()[-300:]
            if not problems:
                out("verify: `config get diagnostics` shows otel enabled: %s" % redact(shown))
                break
            if not wait():
                raise PatchError(
                    "verification failed: the gateway's CLI does not see the new diagnostics config (%s).\n"
                    "  `%s` answered: %s\n  If openclaw.json is bind-mounted into the container as a single "
                    "file, an atomic replace is invisible to the container: mount its directory instead."
                    % ("; ".join(problems), cli.display(args), redact(shown))
                )

    log_command = options.get("logCommand")
    failures = [re.compile(p) for p in list(DEFAULT_LOG_FAILURES) + list(options.get("logFailures") or [])]
    ready = [re.compile(p) for p in options.get("logReady") or []]
    want_exporter = options.get("exporter", True) and bool(expected)
    exporter_ok = not want_exporter
    ready_ok = not (log_command and ready)
    log = ""
    while True:
        if log_command:
            argv = shlex.split(log_command.replace("{since}", since))
            try:
                proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                log = (proc.stdout or "") + (proc.stderr or "")
            except (OSError, subprocess.TimeoutExpired) as error:
                raise PatchError("verification failed: cannot read the gateway log with %r: %s" % (log_command, error))
            bad = [line for line in log.splitlines() if any(f.search(line) for f in failures)
                   and (_line_time(line) or started_at) >= (changed_at or started_at) - CLOCK_SLACK_SECONDS]
            if bad:
                raise PatchError(
                    "verification failed: the gateway log shows the OTLP exporter is not working:\n"
                    + "\n".join("  " + redact(line) for line in bad[-10:])
                )
            if not ready_ok:
                good = [line for line in log.splitlines() if any(r.search(line) for r in ready)]
                if good:
                    ready_ok = True
                    out("verify: gateway log: %s" % redact(good[-1]))
            if not exporter_ok:
                started = restarted_with_exporter(log, changed_at)
                if started:
                    exporter_ok = True
                    out("verify: the gateway restarted with diagnostics-otel and is ready: %s" % redact(started))
        if not exporter_ok:
            event, line = latest_metrics_exporter_event(cli)
            evidence = [line]
            if event is not None:
                status = event.get("outcome", event.get("status"))
                stamp = event.get("ts")
                fresh = changed_at is None or (
                    isinstance(stamp, (int, float)) and stamp / 1000.0 >= changed_at - CLOCK_SLACK_SECONDS)
                if status in ("started", "recovered") and fresh:
                    exporter_ok = True
                    out("verify: metrics exporter %s (%s)" % (status, line))
                elif status in ("failure", "dropped") and fresh:
                    raise PatchError("verification failed: the diagnostics-otel metrics exporter reports %s: %s"
                                     % (status, line))
        if exporter_ok and ready_ok:
            return
        if not wait():
            what = []
            if not exporter_ok:
                what.append("no fresh 'started' event of the diagnostics-otel metrics exporter (%s), and no gateway "
                            "restart with diagnostics-otel loaded in the log" % "; ".join(evidence))
            if not ready_ok:
                what.append("no gateway log line matching %s from %r" % ([r.pattern for r in ready], log_command))
            relevant = [line for line in log.splitlines() if _LOG_EVIDENCE.search(line)][-8:]
            shown = ("\n  gateway log (%s):\n" % log_command + "\n".join("    " + redact(l) for l in relevant)
                     if relevant else "")
            raise PatchError(
                "verification failed after %ds: %s.%s\n  Check that diagnostics-otel is installed and enabled "
                "(`%s`)." % (timeout, "; ".join(what), shown, cli.display(["plugins", "list"]))
            )


# ------------------------------------------------------------------------------------------ state


def load_state(path: str, config_path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise PatchError(
            "cannot read the state file %s (%s); it holds the values revert restores, so it is never "
            "overwritten blindly: fix or move it" % (path, error)
        ) from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise PatchError("%s is not an openclaw-patch state file (version %d)" % (path, STATE_VERSION))
    recorded = state.get("config")
    if recorded and os.path.abspath(recorded) != os.path.abspath(config_path):
        raise PatchError(
            "%s records changes to %s, not %s; use another --state for another config" % (path, recorded, config_path)
        )
    return state


def save_state(path: str, state: Dict[str, Any], config_path: str) -> None:
    state = dict(state, config=os.path.abspath(config_path), updated=utc_stamp())
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    atomic_write(path, (json.dumps(state, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), mode=0o600)


class StateLock:
    """One openclaw-patch at a time per state file (two concurrent `pulumi up`s must not interleave)."""

    def __init__(self, state_path: str):
        self.path = state_path + ".lock"

    def __enter__(self) -> "StateLock":
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), mode=0o700, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise PatchError("another openclaw-patch is running (lock %s)" % self.path) from None
        return self

    def __exit__(self, *exc: Any) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# -------------------------------------------------------------------------------------------- commands


class Context:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.config_path = os.path.abspath(os.path.expanduser(args.config))
        self.state_path = os.path.abspath(os.path.expanduser(args.state))
        self.backup_dir = os.path.abspath(os.path.expanduser(
            args.backup_dir or os.path.join(os.path.dirname(self.state_path), "backups")))
        self.spec: Dict[str, Any] = load_spec(args.spec) if getattr(args, "spec", None) else {}
        self.redact = Redactor(spec_secrets(self.spec))
        self.cli = OpenClawCli(args.openclaw, args.timeout, self.redact)

    def out(self, line: str) -> None:
        print(self.redact(line), flush=True)

    def warn(self, line: str) -> None:
        print(self.redact("%s: warning: %s" % (PROG, line)), file=sys.stderr, flush=True)


def _read(ctx: Context) -> Tuple[bytes, os.stat_result, Dict[str, Any]]:
    data, info = read_config_bytes(ctx.config_path)
    return data, info, parse_config(decode(data, ctx.config_path), ctx.config_path)


def _write(ctx: Context, original: bytes, info: os.stat_result, candidate: Dict[str, Any]) -> str:
    """Backup, then atomic replace; refuses if the file changed since we read it."""
    now, _ = read_config_bytes(ctx.config_path)
    if now != original:
        raise PatchError("%s changed while openclaw-patch was working; nothing written, run it again"
                         % ctx.config_path)
    backup = write_backup(original, ctx.config_path, ctx.backup_dir)
    atomic_write(ctx.config_path, dump_config(candidate).encode("utf-8"), like=info)
    return backup


def _reload_plugins(ctx: Context, plugin_ids: List[str], strict: bool) -> bool:
    """New plugin code on disk: ask the running gateway to load it (``plugins reload``).

    Without verification (``strict`` false: no running gateway is expected) a failed reload is a warning,
    and the next apply tries again.
    """
    args = ["plugins", "reload"] + plugin_ids
    ctx.out("plugin code changed, reloading: %s" % ctx.cli.display(args))
    proc = ctx.cli.run(args)
    if proc.returncode == 0:
        return True
    message = ("the gateway did not reload %s, so a running gateway still has the old code (restart it to load "
               "the new one):\n%s" % (", ".join(plugin_ids), ctx.cli.failure(args, proc)))
    if strict:
        raise PatchError(message)
    ctx.warn(message)
    return False


def _run_restart(ctx: Context) -> bool:
    command = (ctx.spec.get("apply") or {}).get("restartCommand")
    if not command:
        return False
    ctx.out("restart: %s" % command)
    try:
        proc = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PatchError("restarting the gateway with %r failed: %s" % (command, error)) from None
    if proc.returncode != 0:
        raise PatchError("restarting the gateway with %r failed (exit %d): %s"
                         % (command, proc.returncode, ctx.redact((proc.stderr or proc.stdout).strip()[-500:])))
    return True


def _report(ctx: Context, plan: Plan) -> None:
    for change in plan.changes:
        ctx.out("  ~ " + change.describe())
    for conflict in plan.conflicts:
        ctx.warn(conflict)


def cmd_diff(ctx: Context) -> int:
    _, _, config = _read(ctx)
    state = load_state(ctx.state_path, ctx.config_path)
    plan = plan_apply(config, ctx.spec, state)
    if not plan.changes:
        ctx.out("%s: up to date, apply would change nothing" % ctx.config_path)
        return 0
    ctx.out("%s: apply would make %d change(s):" % (ctx.config_path, len(plan.changes)))
    _report(ctx, plan)
    return 3 if ctx.args.exit_code else 0


def cmd_apply(ctx: Context) -> int:
    verify_options = ctx.spec.get("verify") or {}
    do_verify = not ctx.args.no_verify and verify_options.get("enabled", True)
    with StateLock(ctx.state_path):
        installed = False
        if not ctx.args.skip_plugin_check and (ctx.spec.get("otelPlugin") or {}).get("check", True):
            installed = ensure_otel_plugin(ctx.cli, ctx.spec, ctx.out)
        original, info, config = _read(ctx)
        state = load_state(ctx.state_path, ctx.config_path)
        plan = plan_apply(config, ctx.spec, state)
        reload = plugins_to_reload(ctx.spec, state)
        # Plugin revisions are recorded only once the gateway runs the new code, so a failed reload is
        # retried by the next apply.
        old_revisions = dict((state or {}).get("pluginRevisions") or {})
        for plugin_id in reload:
            plan.state["pluginRevisions"][plugin_id] = old_revisions[plugin_id]
        changed_at = time.time()
        since = datetime.datetime.fromtimestamp(changed_at - CLOCK_SLACK_SECONDS, datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        wrote = False
        if plan.changes:
            validate_with_openclaw(ctx.cli, ctx.config_path, info, dump_config(plan.candidate), ctx.out)
            ctx.out("OpenClaw accepted the change (`config validate` of the new file)")
            # State first: if we die between the two writes, revert still knows the true previous values.
            save_state(ctx.state_path, plan.state, ctx.config_path)
            changed_at = time.time()
            backup = _write(ctx, original, info, plan.candidate)
            wrote = True
            ctx.out("%s: applied %d change(s) (backup: %s):" % (ctx.config_path, len(plan.changes), backup))
            _report(ctx, plan)
        else:
            if state is None or any(state.get(k) != plan.state[k] for k in ("records", "created", "pluginRevisions")):
                save_state(ctx.state_path, plan.state, ctx.config_path)
            ctx.out("%s: already up to date; no change, file left byte-identical" % ctx.config_path)
        reloaded = False
        if wrote or installed or reload:
            reloaded = _run_restart(ctx)
            if reload and not reloaded:
                reloaded = _reload_plugins(ctx, reload, strict=do_verify)
        if reload and reloaded:
            plan.state["pluginRevisions"].update({k: ctx.spec["pluginRevisions"][k] for k in reload})
            save_state(ctx.state_path, plan.state, ctx.config_path)
        if do_verify:
            verify(ctx.cli, ctx.spec, since, changed_at if (wrote or installed or reload) else None, ctx.out,
                   ctx.redact)
    return 0


def cmd_revert(ctx: Context) -> int:
    with StateLock(ctx.state_path):
        state = load_state(ctx.state_path, ctx.config_path)
        if state is None:
            ctx.out("%s: nothing to revert (no state at %s)" % (ctx.config_path, ctx.state_path))
            return 0
        original, info, config = _read(ctx)
        plan = plan_revert(config, state)
        if ctx.args.dry_run:
            ctx.out("%s: revert would make %d change(s):" % (ctx.config_path, len(plan.changes)))
            _report(ctx, plan)
            return 0
        if plan.changes:
            if ctx.args.no_validate:
                ctx.warn("--no-validate: OpenClaw is not asked to check the reverted file")
            else:
                try:
                    validate_with_openclaw(ctx.cli, ctx.config_path, info, dump_config(plan.candidate), ctx.out)
                except OpenClawUnavailable as error:
                    raise PatchError(
                        "%s\nIf the gateway is gone for good, revert without OpenClaw's check on this host:\n  %s "
                        "revert --config %s --state %s --no-validate"
                        % (error, shlex.quote(os.path.abspath(__file__)), shlex.quote(ctx.config_path),
                           shlex.quote(ctx.state_path))
                    ) from None
            backup = _write(ctx, original, info, plan.candidate)
            ctx.out("%s: reverted %d change(s) (backup: %s):" % (ctx.config_path, len(plan.changes), backup))
            _report(ctx, plan)
        else:
            ctx.out("%s: nothing to revert; file left byte-identical" % ctx.config_path)
            for conflict in plan.conflicts:
                ctx.warn(conflict)
        # Keep the record for reference, but out of the way of a future apply.
        os.replace(ctx.state_path, "%s.reverted-%s" % (ctx.state_path, utc_stamp()))
        if plan.changes:
            _run_restart(ctx)
    return 0


# ----------------------------------------------------------------------------------------------- CLI

EPILOG = """\
spec (--spec FILE, JSON):
  {"version": 1,
   "diagnostics": {"enabled": true, "otel": {"enabled": true, "endpoint": "http://collector:4318",
                   "protocol": "http/protobuf", "serviceName": "openclaw-gateway", "metrics": true,
                   "traces": false, "logs": false, "flushIntervalMs": 30000,
                   "headers": {"Authorization": "Bearer ..."}}},
   "plugins": {"diagnostics-otel": {"enabled": true},
               "openclaw-budget-gate": {"enabled": true, "hooks": {"allowConversationAccess": true},
                                        "config": {"flagFile": "/home/node/.openclaw/budget/flag"},
                                        "loadPath": "/home/node/.openclaw/plugins/openclaw-budget-gate"}},
   "prices": {"anthropic": {"claude-sonnet-4": {"name": "Claude Sonnet 4", "input": 3.0, "output": 15.0,
                                                "cacheRead": 0.3, "cacheWrite": 3.75}}},
   "pluginRevisions": {"openclaw-budget-gate": "<sha256 of its code: a change reloads the plugin>"},
   "otelPlugin": {"check": true, "install": false, "installSpec": "clawhub:@openclaw/diagnostics-otel"},
   "apply": {"restartCommand": "docker restart openclaw-gateway"},
   "verify": {"enabled": true, "configGet": true, "exporter": true,
              "logCommand": "docker logs --since {since} openclaw-gateway",
              "logReady": [], "logFailures": [], "timeoutSeconds": 120, "intervalSeconds": 5}}

managed keys (nothing else in the file is touched):
  diagnostics.<key>          each key given replaces the file's (diagnostics.otel as a whole block, so
                             leftovers such as metricsEndpoint or metricNamePrefix do not survive)
  plugins.entries.<id>       merged with the existing entry
  plugins.allow              <id> appended only if a non-empty allowlist already exists
  plugins.load.paths         a plugin's loadPath appended
  models.providers.<p>.models[id=<m>].cost
                             set to {input, output, cacheRead, cacheWrite} (USD per 1M tokens); a missing
                             model entry is added as {id, name, cost}; every other field stays as it is

how it works:
  The raw file is read (JSON5: comments, trailing commas, unquoted keys) - never `openclaw config get`,
  which redacts secrets.  The candidate file is checked by the gateway's own CLI before anything is
  replaced: written next to openclaw.json (same owner and mode) and run through `config validate --json`
  with OPENCLAW_CONFIG_PATH pointing at it (`config file` says where the CLI reads openclaw.json; for
  `docker exec` / `podman exec` the variable is passed with -e).  If OpenClaw rejects it the file is left
  byte-identical and its messages (naming the key) are shown.  The file is then written as plain
  JSON (2-space indent): comments are lost, and the timestamped backup taken before every write keeps
  them.  Writes are atomic (temp file, fsync, rename; owner and mode kept).  A second apply with the same
  spec changes nothing and leaves the file byte-identical.  The previous value (or absence) of every
  managed key is recorded in --state before the first write; revert restores exactly those, and reports
  instead of overwriting any key changed since.
  apply also checks that the gateway has a trusted diagnostics-otel plugin (bundled in the official Docker
  images; npm installs since 2026.5.2 lack it; a copy loaded through plugins.load.paths receives no
  events), installs it with `plugins install` when the spec says so, and after a change verifies:
  `config get diagnostics` shows otel enabled, the gateway reports a fresh 'started' event of the
  diagnostics-otel metrics exporter (`gateway stability --type telemetry.exporter`; OpenClaw 2026.9.x) or,
  on versions that keep no such record (2026.4.x), the gateway log (verify.logCommand) shows it restarted
  with diagnostics-otel loaded and became ready; and the log shows none of the known exporter failures.

exit status: 0 ok; 1 error (nothing half-done: the file is either unchanged or fully written); 2 usage;
  3 `diff --exit-code` found pending changes.
"""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", required=True, help="openclaw.json on this host (bind-mounted into the gateway)")
    common.add_argument("--openclaw", default=DEFAULT_OPENCLAW, metavar="CMD",
                        help="how to run the gateway's OpenClaw CLI (default: %(default)s)")
    common.add_argument("--state", default="~/.openclaw-usage/openclaw-patch.state.json", metavar="FILE",
                        help="where the previous values of managed keys are kept (default: %(default)s)")
    common.add_argument("--backup-dir", metavar="DIR",
                        help="where timestamped backups go (default: backups/ next to --state)")
    common.add_argument("--timeout", type=float, default=120, metavar="SECONDS",
                        help="timeout of each OpenClaw CLI call (default: %(default)s)")

    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{diff,apply,revert}")
    diff = commands.add_parser("diff", parents=[common], help="show what apply would change (writes nothing)")
    diff.add_argument("--spec", required=True, metavar="FILE", help="the managed values (JSON, see below)")
    diff.add_argument("--exit-code", action="store_true", help="exit 3 when apply would change something")
    apply = commands.add_parser("apply", parents=[common], help="validate with OpenClaw, write, reload, verify")
    apply.add_argument("--spec", required=True, metavar="FILE", help="the managed values (JSON, see below)")
    apply.add_argument("--no-verify", action="store_true", help="skip the post-apply verification")
    apply.add_argument("--skip-plugin-check", action="store_true",
                       help="don't check/install the diagnostics-otel plugin (tests, or a custom build)")
    revert = commands.add_parser("revert", parents=[common], help="restore the recorded previous values")
    revert.add_argument("--spec", metavar="FILE", help="optional; only used for apply.restartCommand")
    revert.add_argument("--dry-run", action="store_true", help="show what revert would change")
    revert.add_argument("--no-validate", action="store_true",
                        help="don't ask the OpenClaw CLI to check the result (only when the gateway is gone)")
    for sub in (diff, apply, revert):
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        sub.epilog = EPILOG
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    ctx: Optional[Context] = None
    try:
        ctx = Context(args)
        return {"diff": cmd_diff, "apply": cmd_apply, "revert": cmd_revert}[args.command](ctx)
    except PatchError as error:
        redact = ctx.redact if ctx is not None else Redactor([])
        print("%s: error: %s" % (PROG, redact(str(error))), file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
