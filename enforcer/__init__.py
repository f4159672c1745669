"""OpenClaw budget enforcer: measures spend in Prometheus, decides, alerts a Matrix room, and writes the
flag file that the gateway's budget gate reads.

Runs on a host outside the project's venv: Python 3.9+, stdlib plus ``requests`` only.
"""
from __future__ import annotations

__version__ = "0.1.0"
