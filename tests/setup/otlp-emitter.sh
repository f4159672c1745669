#!/usr/bin/env bash
# Stages the runtime deps of openclaw@2026.4.26's bundled diagnostics-otel plugin (the real OTLP emitter of
# tests/e2e/test_metrics_pipeline.py) into $CACHE/openclaw-2026.4.26-plugin-deps, the gateway's
# OPENCLAW_PLUGIN_STAGE_DIR. The first run needs the npm registry (~40 s, ~170 MB: the OpenTelemetry JS SDK);
# the tests then run offline against the staged copy. Idempotent: a stamp matching the installed openclaw
# makes this a no-op. Needs tests/setup/python.sh (venv) and tests/setup/openclaw.sh (Node 24, openclaw).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/setup/openclaw.sh >/dev/null
exec venv/bin/python -m tests.support.otlp_emitter stage
