"""The tables the demo API serves: Parquet files under `<data_dir>/<table>/`, sorted by their
first column (an ascending integer id), reloaded when the files change."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Snapshot:
    table: pa.Table
    ids: np.ndarray  # the first column, ascending
    signature: tuple


class TableData:
    """Read-only access to one table folder, safe to share between request threads."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def exists(self) -> bool:
        return self.folder.is_dir() and any(self.folder.glob("*.parquet"))

    def snapshot(self) -> Snapshot:
        files = sorted(self.folder.glob("*.parquet"))
        signature = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        with self._lock:
            if self._snapshot is None or self._snapshot.signature != signature:
                table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
                if table is None or table.num_columns == 0:
                    raise LookupError(f"no data in {self.folder}")
                table = table.sort_by(table.column_names[0])
                ids = table.column(0).to_numpy()
                self._snapshot = Snapshot(table, ids, signature)
            return self._snapshot

    def page(self, *, after: int | None, offset: int, limit: int) -> tuple[list[dict], int]:
        """Rows with id > `after`, from `offset`, at most `limit`; plus how many there are."""
        snap = self.snapshot()
        start = 0 if after is None else int(np.searchsorted(snap.ids, after, side="right"))
        total = len(snap.ids) - start
        rows = snap.table.slice(start + offset, max(0, min(limit, total - offset))).to_pylist()
        return rows, total


def json_value(value: Any) -> Any:
    """JSON encoding of Parquet values as APIs usually send them (money and times as strings)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")
