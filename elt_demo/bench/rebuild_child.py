"""Child process of the rebuild benchmark: build staging, change one model, time the rebuild.

Run as a script with one code tree on PYTHONPATH; it uses only APIs every compared tree has.
Arguments: code root, dbt project to copy, landing folder, work folder, old text, new text.
"""

import json
import resource
import shutil
import sys
import time
from pathlib import Path


def _cpu(before, after) -> float:
    return sum(
        b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime
        for a, b in zip(before, after, strict=True)
    )


def _usage():
    return resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)


def main() -> None:
    code, project_src, sources, work, old, new = sys.argv[1:7]
    import elt_platform

    assert elt_platform.__file__.startswith(code), (elt_platform.__file__, code)
    from elt_demo.api import serving_demo_api
    from elt_platform.launch import runs
    from elt_platform.settings import load_settings

    work = Path(work)
    project = work / "dbt_project"
    shutil.copytree(project_src, project, ignore=shutil.ignore_patterns("target", "logs"))
    home = work / "home"
    settings = load_settings(
        {
            "ELT_HOME": str(home),
            "DAGSTER_HOME": str(home / "dagster_home"),
            "ELT_SOURCES_DIR": sources,
            "ELT_DBT_PROJECT_DIR": str(project),
        }
    )
    with serving_demo_api(Path(sources)):
        first = runs.build_environment(settings, "staging")
        assert first.success, first.error
        model = project / "models" / "intermediate" / "int_orders_enriched.sql"
        text = model.read_text()
        assert old in text
        model.write_text(text.replace(old, new))
        runs.load_definitions.cache_clear()  # as a fresh process would see the change
        started, before = time.perf_counter(), _usage()
        second = runs.build_environment(settings, "staging")
        wall, after = time.perf_counter() - started, _usage()
    assert second.success, second.error
    recomputed = None
    try:  # only the planner's side records builds
        from elt_platform.access.facade import open_warehouse
        from elt_platform.project.manifest import load_manifest

        models = load_manifest(settings.manifest_path).node_names()
        builds = open_warehouse(settings).builds.in_run(second.run_id)
        recomputed = sorted(b.asset for b in builds if b.reused_from is None and b.asset in models)
    except (ImportError, AttributeError):
        pass
    result = {
        "wall": wall,
        "cpu": _cpu(before, after),
        "materialized": len(second.assets),
        "recomputed": recomputed,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
