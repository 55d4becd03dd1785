"""Write the synthetic dataset into the landing folder, skipping work when it is already there."""

from __future__ import annotations

import json
from pathlib import Path

from elt_platform.errors import ConfigError
from elt_platform.synthetic import LandingDirError, SyntheticSpec, generate_frames, write_landing


def ensure_synthetic_sources(out_dir: Path, *, rows: int, seed: int) -> tuple[bool, dict[str, int]]:
    """Generate the dataset for (rows, seed) unless the folder already holds exactly that."""
    try:
        spec = SyntheticSpec(rows=rows, seed=seed)
    except ValueError as exc:
        raise ConfigError(str(exc), hint="use --rows >= 100 and --seed >= 0") from exc
    manifest = out_dir / "_manifest.json"
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        if recorded.get("spec") == {"rows": rows, "seed": seed}:
            tables = recorded.get("tables", {})
            return False, {name: entry["rows"] for name, entry in tables.items()}
    frames = generate_frames(spec)
    try:
        write_landing(frames, out_dir)
    except LandingDirError as exc:
        raise ConfigError(str(exc), hint="pass --out with an empty or generated folder") from exc
    return True, {name: table.num_rows for name, table in frames.items()}
