"""``python -m enforcer``: thin entry point; all wiring lives in :mod:`enforcer.cli`."""
from __future__ import annotations

import sys

from enforcer.cli import main

if __name__ == "__main__":
    sys.exit(main())
