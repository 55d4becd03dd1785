"""Running one benchmark measurement in a child process of a given code tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from elt_platform.settings import REPO_ROOT


def run_child(
    child: Path, code: Path, work: Path, args: list[str], timeout: int, env: dict | None = None
) -> dict:
    """Run `child` (copied into `work`, so it does not import this checkout by its path) with
    `code` on PYTHONPATH and the arguments `code, dbt project, *args`; return the JSON it prints
    on its last `RESULT ` line."""
    script = work / "child.py"
    shutil.copy(child, script)
    env = {
        **os.environ,
        **(env or {}),
        "PYTHONPATH": str(code),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    proc = subprocess.run(
        [sys.executable, str(script), str(code), str(REPO_ROOT / "dbt_project"), *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=work,
    )  # fmt: skip
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{child.stem} in {code} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])
