"""What the demo's assets need while `elt dev` runs: the synthetic sources and the payments API on
a free 127.0.0.1 port with a generated token, both handed to the code location. Sources already
generated (`elt sources generate`, any size) are served as they are; otherwise the default set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from elt_platform.settings import Settings

DEV_ROWS, DEV_SEED = 10_000, 42  # what `elt demo` generates by default


@contextmanager
def demo_dev_service(settings: Settings) -> Iterator[dict[str, str]]:
    # Imported when `elt dev` starts the service, not when `elt` registers its commands.
    from elt_demo.api import TOKEN_ENV, URL_ENV, serving_demo_api
    from elt_demo.sources import ensure_synthetic_sources
    from elt_demo.synthetic.landing import MANIFEST_NAME

    if not (settings.sources_dir / MANIFEST_NAME).exists():
        ensure_synthetic_sources(settings.sources_dir, rows=DEV_ROWS, seed=DEV_SEED)
    with serving_demo_api(settings.sources_dir) as api:
        yield {URL_ENV: api.url, TOKEN_ENV: api.token}
