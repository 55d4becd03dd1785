"""The analyst's flow in a real browser (Playwright driving Debian's chromium) against `elt dev`:
create a sandbox from the launchpad, materialize one model in it, read its checks and its diff
against prod, trigger a staging build, watch the sensor promote it, see the new release and roll
it back from the launchpad. Assertions are on what the pages show; screenshots go to
elt_platform_tests/artifacts/ (README's four to docs/img with UPDATE_DOCS_IMG=1)."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from playwright.sync_api import sync_playwright

from elt_platform.access.facade import open_warehouse
from elt_platform.orchestration.names import PROMOTE_JOB, PROMOTION_SENSOR
from elt_platform_tests.ui.browser import (
    CHROMIUM_ARGS,
    chromium_path,
    expect_metadata,
    expect_text,
    fill_launchpad,
    launch_from_launchpad,
    materialize_partition,
    screenshot,
)
from elt_platform_tests.ui.conftest import EXPERIMENT_MODEL, wait_for
from elt_platform_tests.ui.graphql import LOCATION

SANDBOX = "ana_ui"
MODEL = EXPERIMENT_MODEL  # changed in sandboxes (see conftest): its diff against prod is real
RUN_TIMEOUT = 420


def _add_new_orders(sources) -> None:
    """New orders land: 50 cancelled orders with fresh ids (cancelled, so the project's "open
    orders are fully paid" test still holds), so staging has something to promote."""
    orders = sorted((sources / "orders").glob("orders-0*.parquet"))
    assert orders, "no orders files"
    extra = pq.read_table(orders[0]).slice(0, 50)
    extra = extra.set_column(0, "order_id", pc.add(extra["order_id"], 2_000_000))
    status = extra.schema.get_field_index("status")
    extra = extra.set_column(status, "status", pa.array(["cancelled"] * 50))
    pq.write_table(extra, sources / "orders" / "orders-ui-00000.parquet")


def _succeeded(gql, run_id: str) -> None:
    run = gql.wait_run(run_id, timeout=RUN_TIMEOUT)
    assert run["status"] == "SUCCESS", gql.run_messages_text(run)[-3000:]


def _promotion_run(gql, after: set[str]) -> str | None:
    data = gql.query(
        """query($f: RunsFilter) { runsOrError(filter: $f, limit: 5) { ... on Runs {
            results { runId status } } } }""",
        {"f": {"pipelineName": PROMOTE_JOB}},
    )
    runs = [r for r in data["runsOrError"]["results"] if r["runId"] not in after]
    return runs[0]["runId"] if runs else None


def test_analyst_flow_in_the_dagster_ui(dagster_ui):
    gql, base, settings = dagster_ui.gql, dagster_ui.base_url, dagster_ui.settings
    wh = open_warehouse(settings)
    first_release = wh.releases.current().release_id
    gql.query("mutation { setNuxSeen }")  # the community pop-up would cover the page
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1600, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        try:
            # 1. A sandbox from the launchpad of the create_sandbox job.
            page.goto(f"{base}/locations/{LOCATION}/jobs/create_sandbox/playground")
            fill_launchpad(
                page,
                "ops:\n  create_sandbox_from_release:\n    config:\n"
                f"      name: {SANDBOX}\n      owner: ana@example.com\n      ttl: 3d\n",
            )
            screenshot(page, "01_launchpad_create_sandbox", docs=True)
            _succeeded(gql, launch_from_launchpad(page))
            expect_text(page, re.compile(rf"created sandbox {SANDBOX} from {first_release}"))

            # 2. One model materialized in the sandbox partition.
            wait_for(lambda: SANDBOX in gql.partition_keys(MODEL), 120, f"partition {SANDBOX}")
            page.goto(f"{base}/assets/{MODEL}")
            page.get_by_role("button", name="Materialize…").first.click()
            run_id = materialize_partition(page, f"Launch runs to materialize {MODEL}", SANDBOX)
            _succeeded(gql, run_id)

            # 3. Its checks and its diff against prod, on the partition's page.
            page.goto(f"{base}/assets/{MODEL}?view=partitions&partition={SANDBOX}")
            expect_text(page, re.compile(r"^View all historical events \([1-9]"))
            # Long markdown opens from a "[Show Markdown]" link, short markdown renders inline.
            label = page.get_by_text("diff_vs_prod", exact=True).first
            label.scroll_into_view_if_needed()
            show = page.get_by_text("[Show Markdown]")
            if show.count():
                show.last.click()
            expect_text(page, f"{MODEL}: {SANDBOX} vs prod (release {first_release})")
            expect_text(page, "added (BOOLEAN)")
            screenshot(page, "02_sandbox_partition_diff", docs=True)
            checks = gql.check_names(MODEL)
            assert checks, f"{MODEL} has no checks"
            page.goto(f"{base}/assets/{MODEL}?view=checks")
            expect_text(page, f"Checks ({len(checks)})")  # names are middle-truncated
            expect_text(page, "Latest execution")
            expect_text(page, re.compile(rf"^{SANDBOX}$"))  # the partition it ran for
            screenshot(page, "03_sandbox_checks")

            # 4. New orders land; a staging build from the job's "Materialize all" dialog.
            _add_new_orders(settings.sources_dir)
            promotions_before = {r for r in [_promotion_run(gql, set())] if r}
            page.goto(f"{base}/locations/{LOCATION}/jobs/build_environment")
            page.get_by_role("button", name=re.compile(r"Materialize all")).first.click()
            run_id = materialize_partition(page, "Launch runs to materialize", "staging")
            _succeeded(gql, run_id)

            # 5. The promotion sensor requests a promotion run, which publishes release 2.
            promotion = wait_for(
                lambda: _promotion_run(gql, promotions_before), 180, "a promotion run"
            )
            _succeeded(gql, promotion)
            second_release = wh.releases.current().release_id
            assert second_release != first_release
            page.goto(f"{base}/locations/{LOCATION}/sensors/{PROMOTION_SENSOR}")
            expect_text(page, re.compile(r"^1 run requested$"))
            screenshot(page, "04_sensor_promoted")

            # 6. The new release: what prod serves, on the prod_release asset.
            page.goto(f"{base}/assets/prod_release")
            expect_metadata(page, "release", second_release)
            expect_metadata(page, "action", "promote")
            expect_metadata(page, "triggered_by", "sensor:promotion_sensor")
            screenshot(page, "05_prod_release", docs=True)

            # 7. Roll back from the launchpad: the default config is the previous release.
            page.goto(f"{base}/locations/{LOCATION}/jobs/rollback_prod/playground")
            page.locator(".CodeMirror").wait_for()
            config = page.evaluate("document.querySelector('.CodeMirror').CodeMirror.getValue()")
            assert "release_id: previous" in config, config
            screenshot(page, "06_rollback_launchpad", docs=True)
            _succeeded(gql, launch_from_launchpad(page))
            assert wh.releases.current().release_id == first_release
            page.goto(f"{base}/assets/prod_release")
            expect_metadata(page, "release", first_release)
            expect_metadata(page, "action", "rollback")
            expect_metadata(page, "previous_release", second_release)
            screenshot(page, "07_rolled_back")
        except Exception:
            screenshot(page, "failure")
            raise
        finally:
            browser.close()
