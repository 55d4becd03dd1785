"""The dbt executable the platform gives dagster-dbt and its own `dbt parse`/`dbt compile`
(`elt-dbt`): dbt itself, except that `--version` answers from the installed package's metadata
and that a running warm process (`elt warm start`) runs the command when there is one.

dagster-dbt runs `<dbt_executable> --version` before every dbt command to learn the version (it
offers no setting to skip this); real dbt imports itself and asks PyPI for the latest release to
print it: 2-3 s of CPU and up to a second of network per run. Every other command runs dbt's own
entry point, exactly as the `dbt` script does: in the warm process's fresh child when one is
running (dbt is already imported there), else in this process.
"""

from __future__ import annotations

import sys
from importlib.metadata import version


def main() -> None:
    argv = sys.argv[1:]
    if argv == ["--version"]:
        print(f"Core:\n  - installed: {version('dbt-core')}")
        return
    from elt_platform.warm_client import run_warm

    code = run_warm("dbt", argv)
    sys.exit(run_dbt(argv) if code is None else code)


def run_dbt(argv: list[str]) -> int:
    from dbt.cli.main import cli  # imported only when dbt really runs (seconds)

    try:
        cli.main(args=argv, prog_name="dbt")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
