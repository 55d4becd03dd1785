"""Re-create a sandbox's outputs from its experiment record in a fresh sandbox and check that the
content hashes (version ids) are identical."""

from __future__ import annotations

from dataclasses import dataclass, field

from elt_platform.access.facade import open_warehouse
from elt_platform.access.masking import masking_key
from elt_platform.environments import MAX_NAME_LENGTH
from elt_platform.errors import UnknownEnvironment
from elt_platform.launch.sandboxes import build_sandbox
from elt_platform.project.code_version import current_code_version
from elt_platform.sandboxes.create import create_sandbox
from elt_platform.sandboxes.experiment import ExperimentStore
from elt_platform.settings import Settings


@dataclass
class Reproduction:
    original: str
    sandbox: str
    source_release: str
    matched: dict[str, str] = field(default_factory=dict)
    mismatched: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    run_id: str | None = None
    error: str | None = None

    @property
    def identical(self) -> bool:
        return self.error is None and not self.mismatched


def free_name(settings: Settings, base: str) -> str:
    """`<base>_r1`, `<base>_r2`, ... (truncated to the name limit), the first that is unused."""
    wh = open_warehouse(settings)
    for n in range(1, 1000):
        suffix = f"_r{n}"
        candidate = base[: MAX_NAME_LENGTH - len(suffix)] + suffix
        try:
            wh.environments.get(candidate)
        except UnknownEnvironment:
            return candidate
    raise UnknownEnvironment(f"no free reproduction name for {base!r}")  # pragma: no cover


def reproduce(
    settings: Settings, name: str, *, into: str | None = None, actor: str = "user"
) -> Reproduction:
    """Create `into` (default `<name>_rN`) from the record's release and config, build it, and
    compare its outputs with the recorded ones."""
    wh = open_warehouse(settings)
    record = ExperimentStore(wh.root, wh.meta).get(name)
    target = into or free_name(settings, name)
    overrides = record.get("config_overrides") or {}
    result = Reproduction(name, target, record["source_release"])
    if record.get("masking_key_id") != masking_key().key_id:
        result.warnings.append(
            "the masking key differs from the one recorded: masked outputs cannot match"
        )
    recorded_code = (record.get("code_version") or {}).get("label")
    code = current_code_version(settings.dbt_project_dir).label
    if recorded_code and recorded_code != code:
        result.warnings.append(f"code version is {code}, the record has {recorded_code}")
    create_sandbox(
        wh,
        target,
        from_release=record["source_release"],
        ttl=record.get("ttl_seconds"),
        owner=record.get("owner"),
        flags=overrides.get("flags"),
        vars=overrides.get("vars"),
        actor=actor,
    )
    built = build_sandbox(settings, target)
    if built.outcome is not None:
        result.run_id = built.outcome.run_id
        if not built.outcome.success:
            result.error = built.outcome.error or "the build failed"
    expected = record.get("outputs") or {}
    base = wh.releases.get(record["source_release"]).manifest
    pointers = wh.environments.pointers(target)
    got = {a: v for a, v in pointers.items() if base.get(a) != v}
    for asset in sorted(set(expected) | set(got)):
        if expected.get(asset) == got.get(asset):
            result.matched[asset] = got[asset]
        else:
            result.mismatched[asset] = (expected.get(asset), got.get(asset))
    ExperimentStore(wh.root, wh.meta).update(
        target,
        lambda r: r.update(
            reproduction_of=name,
            reproduction={
                "identical": result.identical,
                "matched": result.matched,
                "mismatched": {a: list(v) for a, v in result.mismatched.items()},
            },
        ),
    )
    return result
