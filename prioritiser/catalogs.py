"""Catalogues in and tables out: CSV or parquet, image paths relative to the catalogue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prioritiser.errors import PrioritiserError

__all__ = ["read_catalog", "write_table"]


def read_catalog(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet`` catalogue; relative ``file_loc`` values become absolute.

    Raises:
        PrioritiserError: if the file is missing or has no ``id_str`` / ``file_loc`` columns.
    """
    path = Path(path)
    if not path.is_file():
        raise PrioritiserError(f"no catalogue at {path}; pass --catalog with a CSV or parquet file")
    catalog = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = {"id_str", "file_loc"} - set(catalog.columns)
    if missing:
        raise PrioritiserError(f"catalogue {path} lacks columns {sorted(missing)}")
    catalog["id_str"] = catalog["id_str"].astype(str)
    catalog["file_loc"] = [
        str((path.parent / loc).resolve()) for loc in catalog["file_loc"].astype(str)
    ]
    return catalog


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``.parquet`` or ``.csv`` by suffix, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    return path
