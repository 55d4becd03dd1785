"""The dbt executable the platform gives dagster-dbt (`elt-dbt`): dbt itself, except that
`--version` answers from the installed package's metadata.

dagster-dbt runs `<dbt_executable> --version` before every dbt command to learn the version (it
offers no setting to skip this); real dbt imports itself and asks PyPI for the latest release to
print it: 2-3 s of CPU and up to a second of network per run. Every other command runs dbt's own
entry point in this process, exactly as the `dbt` script does.
"""

from __future__ import annotations

import sys
from importlib.metadata import version


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        print(f"Core:\n  - installed: {version('dbt-core')}")
        return
    from dbt.cli.main import cli  # imported only when dbt really runs (seconds)

    sys.exit(cli())
