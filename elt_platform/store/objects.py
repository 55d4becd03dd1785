"""Where version files are shared between machines: the local disk (default: the versions folder
is the only copy) or an fsspec object store named by a URL (ELT_VERSIONS_URL: `s3://`, `gs://`,
`az://`, `file://`...). Versions are immutable and content-addressed, so the object store is the
source of truth and each installation's versions folder is a verified local cache of it."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from elt_platform.errors import InvalidObjectStoreUrl, ObjectStoreUnavailable
from elt_platform.store.parts import PARTS_FILE

# Written last when a version is uploaded and removed first when it is deleted: a version whose
# marker is there has all its files (an interrupted upload is invisible and is simply redone).
MARKER = "_files.json"


class LocalDisk:
    """No object store: the installation's versions folder is the only copy of each version."""

    remote = False
    url: str | None = None


class FsspecStore:
    """Versions under `<url>/<asset folder>/<version id>/` in any fsspec file system; the URL's
    query string holds the file system's options (`s3://bucket/prefix?endpoint_url=http://...`)."""

    remote = True

    def __init__(self, url: str) -> None:
        import fsspec  # not at import: installations on local disk never need it

        parts = urlsplit(url)
        if not parts.scheme:
            raise InvalidObjectStoreUrl(f"ELT_VERSIONS_URL {url!r} has no protocol")
        self.url = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
        options: dict[str, Any] = dict(parse_qsl(parts.query))
        try:
            self.fs = fsspec.filesystem(parts.scheme, **options)
        except (ImportError, ValueError, TypeError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidObjectStoreUrl(
                f"ELT_VERSIONS_URL {self.url!r} cannot be used: {first}"
            ) from exc
        self.root = self.fs._strip_protocol(self.url).rstrip("/")
        self._checked = False

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

    def exists(self, key: str) -> bool:
        """Whether the version's files are all in the store (its marker is written last)."""
        return bool(self._call("read", lambda: self.fs.exists(self._path(key, MARKER))))

    def put_dir(self, local: Path, key: str) -> None:
        """Upload a version's files, then its marker."""
        files = sorted([*local.glob("*.parquet"), *local.glob(PARTS_FILE)])
        marker = json.dumps({f.name: f.stat().st_size for f in files}, sort_keys=True)

        def upload() -> None:
            self.fs.makedirs(self._path(key), exist_ok=True)
            for f in files:
                self.fs.put_file(str(f), self._path(key, f.name))
            self.fs.pipe_file(self._path(key, MARKER), marker.encode())

        self._call("upload to", upload)

    def fetch_dir(self, key: str, local: Path) -> None:
        """Download the files the marker lists into the (empty) folder `local`."""

        def download() -> None:
            names = json.loads(self.fs.cat_file(self._path(key, MARKER)))
            for name in names:
                self.fs.get_file(self._path(key, name), str(local / name))

        self._call("download from", download)

    def delete(self, key: str) -> None:
        """Remove the marker first (the version is then absent), then its files."""

        def remove() -> None:
            for path in [self._path(key, MARKER), self._path(key)]:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(path, recursive=True)

        self._call("delete from", remove)

    def version_keys(self) -> dict[str, float]:
        """Every version folder in the store (`<asset folder>/<version id>`) with when its newest
        object was written (epoch seconds; "now" when the file system does not say, so a folder
        of unknown age is never taken for an old one)."""
        found = self._call("list", lambda: self.fs.find(self.root, detail=True))
        keys: dict[str, float] = {}
        for path, info in found.items():
            parts = path[len(self.root) :].strip("/").split("/")
            if len(parts) == 3:  # asset folder / version id / file
                key = "/".join(parts[:2])
                keys[key] = max(keys.get(key, 0.0), _modified(info))
        return keys

    def _path(self, key: str, name: str | None = None) -> str:
        return f"{self.root}/{key}" + (f"/{name}" if name else "")

    def _call(self, what: str, action):
        """Run `action`, checking once that the store's root exists; any failure becomes one line
        naming the object store."""
        try:
            if not self._checked:
                self._check_root()
            return action()
        except ObjectStoreUnavailable:
            raise
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ObjectStoreUnavailable(
                f"could not {what} the object store {self.url}: {type(exc).__name__}: {first}"
            ) from exc

    def _check_root(self) -> None:
        """The bucket (or shared folder) must exist: a typo must not create a new one."""
        protocols = {self.fs.protocol} if isinstance(self.fs.protocol, str) else self.fs.protocol
        top = self.root if {"file", "local"} & set(protocols) else self.root.split("/", 1)[0]
        try:
            self.fs.info(top)  # unlike exists(), raises when the store cannot be reached
        except FileNotFoundError as exc:
            raise ObjectStoreUnavailable(
                f"the object store {self.url} is unusable: {top} does not exist"
            ) from exc
        self._checked = True


def _modified(info: dict) -> float:
    """When an object was last written, from whichever field its file system reports."""
    for field in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = info.get(field)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return time.time()


ObjectStore = LocalDisk | FsspecStore


def open_object_store(url: str | None) -> ObjectStore:
    """The object store a versions URL names; None or empty: the local disk only."""
    return FsspecStore(url) if url else LocalDisk()
