"""Catalogues in and tables out: CSV or parquet, image paths relative to the catalogue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from prioritiser.errors import PrioritiserError

__all__ = ["check_unique_ids", "read_catalog", "write_table"]


def read_catalog(path: str | Path) -> pd.DataFrame:
    """Read a ``.csv`` or ``.parquet`` catalogue; relative ``file_loc`` values become absolute.

    Raises:
        PrioritiserError: if the file is missing, empty or unreadable, has no ``id_str`` /
            ``file_loc`` columns, or repeats an ``id_str``.
    """
    path = Path(path)
    if not path.is_file():
        raise PrioritiserError(f"no catalogue at {path}; pass --catalog with a CSV or parquet file")
    try:
        catalog = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError as error:
        raise PrioritiserError(f"catalogue {path} is empty; it needs id_str, file_loc") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0]
        raise PrioritiserError(f"catalogue {path} is not a readable CSV: {first_line}") from error
    missing = {"id_str", "file_loc"} - set(catalog.columns)
    if missing:
        raise PrioritiserError(f"catalogue {path} lacks columns {sorted(missing)}")
    if catalog.empty:
        raise PrioritiserError(f"catalogue {path} has a header but no rows")
    catalog["id_str"] = catalog["id_str"].astype(str)
    check_unique_ids(catalog, f"catalogue {path}")
    catalog["file_loc"] = [
        str((path.parent / loc).resolve()) for loc in catalog["file_loc"].astype(str)
    ]
    return catalog


def check_unique_ids(catalog: pd.DataFrame, where: str = "catalogue") -> None:
    """Refuse a catalogue that names a galaxy twice (it would be ranked, and pushed, twice).

    Raises:
        PrioritiserError: naming how many ids repeat and the first few of them.
    """
    ids = catalog["id_str"].astype(str)
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        shown = ", ".join(repr(i) for i in repeated[:5])
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise PrioritiserError(
            f"{where} repeats {len(repeated)} id_str value(s): {shown}{more}; each galaxy must "
            "appear once"
        )


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``.parquet`` or ``.csv`` by suffix, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    return path
