"""Where a version's files are: its folder under `<root>/versions` and, with an object store
(`objects.py`), the shared copy that folder caches. Uploads happen before a version is recorded,
fetched files are checked against the sizes and checksums recorded at commit before they are
used, and files are discarded locally and in the object store together."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from elt_platform.store.checksums import file_problems, recorded_files, refuse_damaged
from elt_platform.store.metadata import MetadataStore
from elt_platform.store.objects import LocalDisk, ObjectStore
from elt_platform.store.parts import rename_into_place


def asset_dir_name(asset: str) -> str:
    """Filesystem-safe folder for an asset key string such as `raw/orders`."""
    return asset.replace("/", "__")


def object_key(asset: str, version_id: str) -> str:
    """A version's place in the object store: the same as in the local folder."""
    return f"{asset_dir_name(asset)}/{version_id}"


class VersionFiles:
    """The local folders of versions and the object store behind them (none by default)."""

    def __init__(
        self,
        versions_dir: Path,
        pending_dir: Path,
        meta: MetadataStore,
        objects: ObjectStore | None = None,
    ) -> None:
        self.versions_dir, self.pending_dir, self.meta = versions_dir, pending_dir, meta
        self.objects = objects or LocalDisk()

    def version_dir(self, asset: str, version_id: str) -> Path:
        """The local folder of a version (the same on every machine, relative to its root)."""
        return self.versions_dir / asset_dir_name(asset) / version_id

    def new_pending_dir(self) -> Path:
        path = self.pending_dir / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def ensure_local(self, asset: str, version_id: str) -> None:
        """Fetch a recorded version that is not in the local folder from the object store."""
        if self.objects.remote and not self.version_dir(asset, version_id).exists():
            self.fetch(asset, version_id)

    def fetch(self, asset: str, version_id: str) -> None:
        """Download into a private folder, refuse files that differ from their record, then
        rename the folder into place (a concurrent fetch of the same version may win)."""
        key = object_key(asset, version_id)
        staging = self.new_pending_dir()
        try:
            self.objects.fetch_dir(key, staging)
            recorded = recorded_files(self.meta, asset, version_id)
            if recorded is not None:
                problems = file_problems(staging, recorded)
                refuse_damaged(asset, version_id, self.objects.location(key), problems, stored=True)
            rename_into_place(staging, self.version_dir(asset, version_id))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def place(self, asset: str, version_id: str) -> tuple[bool, bool]:
        """(whether the version's files are in the local folder, whether the object store has
        them); files only in the object store are fetched first."""
        local = self.version_dir(asset, version_id).exists()
        if not self.objects.remote:
            return local, local
        stored = self.objects.exists(object_key(asset, version_id))
        if stored and not local:
            self.fetch(asset, version_id)
        return local or stored, stored

    def upload(self, asset: str, version_id: str, *, installed: bool) -> None:
        """Put the version's files in the object store before its record is written (metadata
        never points at a missing object); on failure, files just installed are removed."""
        if not self.objects.remote:
            return
        directory = self.version_dir(asset, version_id)
        try:
            self.objects.put_dir(directory, object_key(asset, version_id))
        except BaseException:
            if installed:
                shutil.rmtree(directory, ignore_errors=True)
            raise

    def discard(self, asset: str, version_id: str) -> None:
        """Remove a version's files locally and in the object store."""
        shutil.rmtree(self.version_dir(asset, version_id), ignore_errors=True)
        if self.objects.remote:
            self.objects.delete(object_key(asset, version_id))

    def orphans(self, recorded: Iterable[tuple[str, str]], older_than: float) -> list[str]:
        """Version folders no record names, untouched since `older_than` (epoch seconds): what a
        writer killed after installing or uploading a version and before recording it left.
        Each as `local:<key>` or `object store:<key>` (key: `<asset folder>/<version id>`)."""
        known = {object_key(asset, version_id) for asset, version_id in recorded}
        found = []
        for folder in sorted(self.versions_dir.glob("*/*")):
            key = f"{folder.parent.name}/{folder.name}"
            if folder.parent == self.pending_dir or not folder.is_dir() or key in known:
                continue
            if _newest_mtime(folder) < older_than:
                found.append(f"{LOCAL}:{key}")
        if self.objects.remote:
            for key, written in sorted(self.objects.version_keys().items()):
                if key not in known and written < older_than:
                    found.append(f"{STORED}:{key}")
        return found

    def discard_orphan(self, orphan: str) -> None:
        place, key = orphan.split(":", 1)
        if place == LOCAL:
            shutil.rmtree(self.versions_dir / key, ignore_errors=True)
        elif place == STORED and self.objects.remote:
            self.objects.delete(key)


LOCAL, STORED = "local", "object store"


def _newest_mtime(folder: Path) -> float:
    try:
        return max([folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.rglob("*"))])
    except FileNotFoundError:  # removed meanwhile
        return float("inf")
