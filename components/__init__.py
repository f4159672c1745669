"""Pulumi components of openclaw-usage, and the pure renderers behind them.

One component per sub-package: ``gateway`` (openclaw.json patch and the budget-gate plugin), ``collector``
(the OpenTelemetry Collector container), ``enforcer_service`` (the enforcer package under systemd).
``config`` is the typed stack configuration; ``stack`` wires the components together; ``render`` writes
every file a stack would put on its hosts, for review (``python -m components render``).
"""
