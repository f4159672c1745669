"""openclaw-usage: cost visibility and a hard daily budget stop for an OpenClaw gateway.

Deploys, per the stack's config (Pulumi.<stack>.yaml):
  - the gateway's openclaw.json patch (OTLP metrics, per-model prices, the budget-gate plugin), over SSH;
  - an OpenTelemetry Collector container feeding Prometheus (pulumi-docker);
  - the budget enforcer under systemd on the gateway host.
All logic lives in components/; this file only validates the config and wires the stack.
"""
import pulumi

from components.config import ConfigError, load_from_pulumi
from components.stack import deploy

try:
    config = load_from_pulumi()
except ConfigError as error:
    # RunError prints the message without a Python traceback, before any resource is registered.
    raise pulumi.RunError(str(error)) from None

for name, value in deploy(config).items():
    pulumi.export(name, value)
