"""Playwright helpers for the Dagster OSS UI (1.13), driving Debian's chromium: the selectors and
waits that held up under load in the probes (/work/scratch/probe_notes.md)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "elt_platform_tests" / "artifacts"  # gitignored
DOCS_IMG = REPO / "docs" / "img"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN_URL = re.compile(r"/runs/([0-9a-f-]{36})")


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError(
            "chromium is not installed: `make browser` (or `make test`) installs it"
        )
    return found


def fill_launchpad(page: Page, yaml_text: str) -> None:
    """Replace the launchpad's config (CodeMirror 5): one input event, so no auto-indent."""
    editor = page.locator(".CodeMirror")
    editor.wait_for()
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(yaml_text)
    if page.evaluate("document.querySelector('.CodeMirror').CodeMirror.getValue()") != yaml_text:
        page.evaluate(
            "v => document.querySelector('.CodeMirror').CodeMirror.setValue(v)", yaml_text
        )


def launch_from_launchpad(page: Page) -> str:
    """Click "Launch Run" once config validation enabled it; the run's id from the run page."""
    button = page.get_by_role("button", name="Launch Run")
    expect(button).to_be_enabled(timeout=60_000)
    button.click()
    page.wait_for_url(RUN_URL, timeout=60_000)
    return RUN_URL.search(page.url).group(1)


def materialize_partition(page: Page, title: str, partition: str) -> str:
    """In the open "Launch runs to materialize ..." dialog: pick one partition and launch; the
    run's id from the toast's "View" link."""
    dialog = page.get_by_role("dialog").first
    expect(dialog.get_by_text(title)).to_be_visible(timeout=60_000)
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("textbox", name="Filter partitions").fill(partition)
    page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(partition)}\b")).click()
    dialog.get_by_text(title).click()  # closes the partition popover
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled(timeout=30_000)
    launch.click()
    toast = page.get_by_role("region", name=re.compile("^Notifications"))
    toast.get_by_role("link", name="View", exact=True).click(timeout=60_000)
    page.wait_for_url(RUN_URL, timeout=60_000)
    return RUN_URL.search(page.url).group(1)


def expect_text(page: Page | Locator, pattern: str | re.Pattern, timeout: float = 60_000) -> None:
    """Wait until the page (or part) shows `pattern` (the UI renders skeletons, then polls)."""
    expect(page.get_by_text(pattern).first).to_be_visible(timeout=timeout)


def expect_metadata(page: Page, key: str, value: str, timeout: float = 60_000) -> None:
    """Wait until the asset page's metadata table has a row `key` showing `value`."""
    # A row's text runs its cells together ("releaseNov 30, 3:01 PMr0002-…").
    row = page.get_by_role("row").filter(has_text=re.compile(rf"^{re.escape(key)}(?![a-z_])"))
    expect(row.filter(has_text=value).first).to_be_visible(timeout=timeout)


def screenshot(page: Page, name: str, *, docs: bool = False) -> Path:
    """Save to the test artifacts; `docs` screenshots also go to docs/img (README's) when
    UPDATE_DOCS_IMG=1, so a test run does not rewrite tracked files."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get("UPDATE_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / path.name)
    return path
