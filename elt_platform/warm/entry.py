"""The `elt` command: handed to the warm process when one runs (`elt_platform/warm_client.py`),
else run in this process. Imports nothing heavy before knowing which."""

from __future__ import annotations

import sys

from elt_platform.warm_client import run_warm


def main() -> None:
    argv = sys.argv[1:]
    # `elt warm ...` manages the warm process itself: never run by it.
    code = None if argv[:1] == ["warm"] else run_warm("elt", argv)
    if code is None:
        from elt_platform.cli import main as run_here

        run_here()
        return
    sys.exit(code)
