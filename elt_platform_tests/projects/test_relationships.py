"""The relationship reader on a third-party project: every `relationships` test and `foreign_key`
constraint, asset keys as Dagster names them, followed through column lineage to the seeds the
data lives in; cycles are reported, not guessed around."""

from __future__ import annotations

from elt_platform.project.dbt_project import load_dbt_project, prepare_manifest
from elt_platform.project.manifest import load_manifest
from elt_platform.project.relationships import (
    ANONYMIZE,
    DELETE,
    load_relationships,
    relationships_from,
)
from elt_platform_tests.conftest import edit_yaml
from elt_platform_tests.projects.conftest import host_project

DECLARED = {
    "stg_rentals.rider_id -> stg_riders.rider_id",
    "stg_rentals.start_station_id -> stg_stations.station_id",
    "stg_invoices.rental_id -> stg_rentals.rental_id",
    "fct_rentals.start_station_id -> dim_stations.station_id",
}
# Where the data lives: the seeds the staging models copy the key columns from unchanged.
LIFTED = {
    "raw_rentals.rider_id -> raw_riders.rider_id",
    "raw_invoices.rental_id -> raw_rentals.rental_id",
    "raw_rentals.start_station_id -> raw_stations.station_id",
}


def test_relationships_of_a_third_party_project_reach_its_seeds(tmp_path):
    settings = host_project(tmp_path)
    found = load_relationships(settings)
    by_name = {str(r): r for r in found.relationships}
    assert set(by_name) == DECLARED | LIFTED
    for name in DECLARED:
        assert by_name[name].lifted_from is None and by_name[name].declared_by
    for name in LIFTED:
        assert by_name[name].lifted_from in DECLARED
    assert all(r.on_parent_expired == DELETE for r in found.relationships)
    assert found.cycles == () and found.problems() == []
    # Parents come before their children, so a cascade can run in one pass.
    order = found.order(["stg_invoices", "stg_riders", "stg_rentals", "raw_rentals", "raw_riders"])
    assert order.index("stg_riders") < order.index("stg_rentals") < order.index("stg_invoices")
    assert order.index("raw_riders") < order.index("raw_rentals")


def test_foreign_key_constraints_policies_and_a_reported_cycle(tmp_path):
    settings = host_project(tmp_path)
    project = settings.dbt_project_dir

    def staging(data):
        riders = next(m for m in data["models"] if m["name"] == "stg_riders")
        rider_id = next(c for c in riders["columns"] if c["name"] == "rider_id")
        # Riders "reference" their rentals: stg_riders <-> stg_rentals is a cycle.
        rider_id["data_tests"].append(
            {"relationships": {"arguments": {"to": "ref('stg_rentals')", "field": "rider_id"}}}
        )
        invoices = next(m for m in data["models"] if m["name"] == "stg_invoices")
        rental_id = next(c for c in invoices["columns"] if c["name"] == "rental_id")
        rental_id["config"] = {"meta": {"on_parent_expired": "anonymize"}}

    def marts(data):
        facts = next(m for m in data["models"] if m["name"] == "fct_rentals")
        facts["constraints"] = [
            {
                "type": "foreign_key",
                "columns": ["rider_id"],
                "to": "ref('dim_riders')",
                "to_columns": ["rider_id"],
            }
        ]
        usage = next(m for m in data["models"] if m["name"] == "station_daily_usage")
        station = next(c for c in usage["columns"] if c["name"] == "station_id")
        station["constraints"] = [
            {"type": "foreign_key", "to": "ref('dim_stations')", "to_columns": ["station_id"]}
        ]

    edit_yaml(project / "models" / "staging" / "_staging.yml", staging)
    edit_yaml(project / "models" / "marts" / "_marts.yml", marts)
    manifest = load_manifest(prepare_manifest(load_dbt_project(settings)))
    found = relationships_from(manifest)
    by_name = {str(r): r for r in found.relationships}

    assert by_name["fct_rentals.rider_id -> dim_riders.rider_id"].declared_by  # model level
    assert "station_daily_usage.station_id -> dim_stations.station_id" in by_name  # column level
    assert by_name["stg_invoices.rental_id -> stg_rentals.rental_id"].on_parent_expired == (
        ANONYMIZE
    )
    assert found.cycles == (("stg_rentals", "stg_riders"),)
    assert found.problems() == ["cycle stg_rentals -> stg_riders -> stg_rentals: not cascaded"]
    cyclic = {str(r) for r in found.relationships if found.in_cycle(r)}
    assert cyclic == {
        "stg_rentals.rider_id -> stg_riders.rider_id",
        "stg_riders.rider_id -> stg_rentals.rider_id",
    }
    assert not cyclic & {str(r) for r in found.acyclic()}
    assert "stg_invoices.rental_id -> stg_rentals.rental_id" in {str(r) for r in found.acyclic()}
