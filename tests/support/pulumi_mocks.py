"""Pulumi mocks that record every resource, and stack config loading for mock runs.

Tests decorated with ``@pulumi.runtime.test`` must RETURN the Output they assert on, or the assertions in
``.apply`` never run.
"""
from __future__ import annotations

import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from tests.support.tools import REPO_ROOT

PROJECT = "openclaw-usage"
STACK = "workstation"

#: Fake secrets for mock runs: recognisable, so a leak check can search outputs and inputs for them.
FAKE_SECRETS = {
    "privateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nFAKE-TEST-KEY-abc123\n-----END OPENSSH PRIVATE KEY-----",
    "accessToken": "syt_FAKE_MATRIX_TOKEN_abc123",
    "bearerToken": "FAKE_OTLP_BEARER_abc123",
}

_SECRET_SIG = "4dabf18193072939515e22adb298388d"


@dataclass
class RecordedResource:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    custom: bool


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Records resources; echoes inputs as outputs and fills the computed outputs our code reads."""

    resources: list[RecordedResource] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(RecordedResource(args.typ, args.name, dict(args.inputs), args.provider, args.custom))
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs.setdefault("imageId", f"sha256:{args.name}")
            outputs.setdefault("repoDigest", f"{args.inputs.get('name')}@sha256:0")
        if args.typ in ("command:remote:Command", "command:local:Command"):
            outputs.setdefault("stdout", "")
            outputs.setdefault("stderr", "")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def by_type(self, typ: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
        return matches[0]


def unwrap_secrets(value: Any) -> Any:
    """Replace Pulumi's wire-format secret wrappers with their values (for assertions)."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def plaintext_leaks(value: Any, secrets: list[str]) -> list[str]:
    """Paths where a secret value appears OUTSIDE a Pulumi secret wrapper."""
    leaks: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if node.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
                return
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif isinstance(node, str):
            for secret in secrets:
                if secret and secret in node:
                    leaks.append(path)

    walk(value, "")
    return leaks


def stack_file_config(stack: str = STACK, with_secrets: bool = True) -> tuple[dict[str, str], list[str]]:
    """Config map (``project:key`` → JSON string) of ``Pulumi.<stack>.yaml``, plus its secret keys.

    With ``with_secrets`` the fake secrets are added the way ``pulumi config set --secret --path`` does:
    the value sits inside the object and the whole top-level key is marked secret.
    """
    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    raw = {k.split(":", 1)[1]: v for k, v in document["config"].items()}
    secret_keys: list[str] = []
    if with_secrets:
        for host in raw.get("hosts", {}).values():
            host.setdefault("privateKey", FAKE_SECRETS["privateKey"])
        raw.setdefault("matrix", {}).setdefault("accessToken", FAKE_SECRETS["accessToken"])
        secret_keys = [f"{PROJECT}:hosts", f"{PROJECT}:matrix"]
        if raw.get("otlp", {}).get("bearerToken"):
            secret_keys.append(f"{PROJECT}:otlp")
    return {f"{PROJECT}:{k}": json.dumps(v) for k, v in raw.items()}, secret_keys


def set_config(config: dict[str, Any], secret_keys: list[str] | None = None) -> None:
    """Install a config map (values may be objects; they are JSON-encoded as the engine does)."""
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_all_config(encoded, secret_keys or [])


def run_program() -> dict[str, Any]:
    """Execute the real ``__main__.py`` (the stack's wiring) under the current mocks and config."""
    return runpy.run_path(str(REPO_ROOT / "__main__.py"), run_name="__pulumi_main__")


class ResourceTracker:
    """Keeps every resource object the program creates, so a test can wait until all are registered.

    Under mocks, registration is asynchronous: an assertion over the whole graph must run in an ``apply``
    over every resource's URN (see :meth:`when_registered`), or it sees a half-built graph.
    """

    def __init__(self) -> None:
        self.created: list[pulumi.Resource] = []
        self._original = pulumi.Resource.__init__

    def install(self, monkeypatch: Any) -> None:
        tracker = self
        original = self._original

        def recording_init(resource: pulumi.Resource, *args: Any, **kwargs: Any) -> None:
            original(resource, *args, **kwargs)
            tracker.created.append(resource)

        monkeypatch.setattr(pulumi.Resource, "__init__", recording_init)

    def when_registered(self, check: Any) -> pulumi.Output:
        """An Output that runs ``check()`` once every resource created so far is registered."""
        return pulumi.Output.all(*[r.urn for r in self.created]).apply(lambda _: check())
