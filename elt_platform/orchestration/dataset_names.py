"""How the platform names a dataset (OpenLineage naming conventions; the facets that describe
them are `lineage_datasets.py`). Kept apart so connectors name their sources without importing
the OpenLineage client (~0.4 s of start-up)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from elt_platform.store.catalog import relation_for_asset
from elt_platform.store.versions import Version

FILE_NAMESPACE = "file"
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
# SQLAlchemy backend name -> naming-convention scheme (and whether names carry a schema).
_SQL_SCHEMES = {
    "postgresql": ("postgres", True),
    "mysql": ("mysql", False),
    "mariadb": ("mysql", False),
    "mssql": ("mssql", True),
    "oracle": ("oracle", True),
}


@dataclass(frozen=True, order=True)
class DatasetName:
    namespace: str
    name: str


def file_dataset(path: Path) -> DatasetName:
    return DatasetName(FILE_NAMESPACE, str(Path(path).resolve()))


def version_dataset(version: Version) -> DatasetName:
    """A version is its folder of Parquet files."""
    return file_dataset(version.directory)


def catalog_view(catalog_path: Path, asset: str) -> DatasetName:
    """The view an environment's catalog file exposes for `asset`."""
    catalog = Path(catalog_path).resolve()
    schema, view = relation_for_asset(asset)
    return DatasetName(f"duckdb://{catalog}", f"{catalog.stem}.{schema}.{view}")


def sql_table_dataset(url: Any, schema: str | None, table: str) -> DatasetName:
    """A table of a SQLAlchemy `url` (only host, port, database and backend are read)."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = Path(url.database or ":memory:")
        where = str(database.resolve()) if url.database else ":memory:"
        return DatasetName(f"sqlite://{where}", f"{schema or 'main'}.{table}")
    scheme, with_schema = _SQL_SCHEMES.get(backend, (backend, bool(schema)))
    port = url.port or _DEFAULT_PORTS.get(scheme)
    authority = f"{url.host or 'localhost'}" + (f":{port}" if port else "")
    parts = [url.database] if url.database else []
    if with_schema:
        parts.append(schema or ("public" if scheme == "postgres" else "dbo"))
    return DatasetName(f"{scheme}://{authority}", ".".join([*parts, table]))


def http_dataset(url: str) -> DatasetName:
    """An HTTP endpoint: no convention exists; scheme://host:port + path (no query)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return DatasetName(f"{parts.scheme}://{parts.hostname}:{port}", parts.path or "/")
