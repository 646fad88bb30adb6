"""Write a simulated Galaxy Zoo catalogue: images, volunteer vote counts and the truth behind them.

Layout of ``out_dir``::

    catalog.csv (or catalog.parquet)   one row per galaxy
    simulation.json                    the arguments that made it (the cache key)
    images/<id_str>.jpg                RGB images
    fits/<id_str>.fits                 raw g, r, z bands (only with ``fits=True``)

In the file on disk, ``file_loc`` (and ``fits_loc``) are paths *relative to the catalogue's folder*,
so the folder can be moved; ``make_catalog`` and ``load_catalog`` return frames whose paths are
absolute. Columns: ``id_str``, ``file_loc``, one vote-count column per ``schema.label_cols``,
``<question>_total-votes`` per question, and every truth parameter prefixed ``truth_``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoobot import strict_json
from zoobot.datasets.simulated.images import (
    bands_to_rgb,
    render_bands,
    resize_rgb,
    save_fits,
    save_image,
)
from zoobot.datasets.simulated.truth import draw_truths
from zoobot.datasets.simulated.volunteers import answer_probabilities, ask_volunteers
from zoobot.errors import CatalogError
from zoobot.schemas import decals_dr5_schema

__all__ = ["CATALOG_VERSION", "load_catalog", "make_catalog"]

logger = logging.getLogger(__name__)

CATALOG_VERSION = 2  # bump when the simulator changes what a given seed produces
_SETTINGS_FILE = "simulation.json"
_FORMATS = ("jpg", "png")
_CATALOG_FORMATS = ("csv", "parquet")


def _render_one(job: tuple[dict[str, Any], int, str, str | None, str]) -> None:
    """Render and write one galaxy (a top-level function so that worker processes can run it)."""
    truth, size, image_path, fits_path, image_format = job
    bands = render_bands(truth)
    save_image(resize_rgb(bands_to_rgb(bands), size), Path(image_path), image_format)
    if fits_path is not None:
        save_fits(bands, Path(fits_path), Path(image_path).stem)


def _render_all(jobs: list[tuple[dict[str, Any], int, str, str | None, str]], workers: int) -> None:
    """Render every job, in ``workers`` processes, logging progress about every 10 %."""
    start = time.perf_counter()
    step = max(1, len(jobs) // 10)

    def log_progress(done: int) -> None:
        if done % step == 0 or done == len(jobs):
            elapsed = time.perf_counter() - start
            logger.info(
                "rendering done=%d total=%d galaxies_per_s=%.1f",
                done,
                len(jobs),
                done / max(elapsed, 1e-9),
            )

    results: Iterable[None]
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.imap_unordered(_render_one, jobs, chunksize=8)
            for done, _ in enumerate(results, start=1):
                log_progress(done)
    else:
        for done, job in enumerate(jobs, start=1):
            _render_one(job)
            log_progress(done)


def _vote_columns(votes: np.ndarray) -> pd.DataFrame:
    """Vote counts and per-question totals as a frame."""
    schema = decals_dr5_schema
    frame = pd.DataFrame(votes, columns=schema.label_cols)
    for question, answers in zip(schema.questions, schema.question_slices, strict=True):
        frame[question.total_votes_col] = votes[:, answers].sum(axis=1)
    return frame


def _catalog_path(out_dir: Path, catalog_format: str) -> Path:
    return out_dir / f"catalog.{catalog_format}"


def load_catalog(path: Path | str) -> pd.DataFrame:
    """Read a catalogue written by ``make_catalog``, with ``file_loc`` (and ``fits_loc``) absolute.

    Args:
        path: the ``catalog.csv`` or ``catalog.parquet`` file.

    Returns:
        The catalogue.

    Raises:
        CatalogError: if the file does not exist or lacks ``id_str`` / ``file_loc``.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"no catalogue at {path}; make one with make_catalog(...) first")
    catalog = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = {"id_str", "file_loc"} - set(catalog.columns)
    if missing:
        raise CatalogError(f"catalogue {path} lacks columns {sorted(missing)}")
    root = path.resolve().parent
    for column in ("file_loc", "fits_loc"):
        if column in catalog.columns:
            catalog[column] = [str(root / p) for p in catalog[column]]
    return catalog


def _cached(out_dir: Path, settings: dict[str, Any], catalog_format: str) -> pd.DataFrame | None:
    """The catalogue already in ``out_dir`` if it was made with ``settings`` and is complete."""
    settings_path = out_dir / _SETTINGS_FILE
    path = _catalog_path(out_dir, catalog_format)
    if not (settings_path.is_file() and path.is_file()):
        return None
    if json.loads(settings_path.read_text()) != settings:
        return None
    catalog = load_catalog(path)
    if len(catalog) != settings["n"] or not all(Path(p).is_file() for p in catalog["file_loc"]):
        return None
    return catalog


def _check_arguments(
    n: int, size: int, n_volunteers: int, workers: int, image_format: str, catalog_format: str
) -> None:
    """Raise ValueError naming the argument if a ``make_catalog`` count or format is invalid."""
    if n < 1 or size < 8 or n_volunteers < 0 or workers < 1:
        raise ValueError(
            f"make_catalog needs n >= 1, size >= 8, n_volunteers >= 0 and workers >= 1; "
            f"got n={n}, size={size}, n_volunteers={n_volunteers}, workers={workers}"
        )
    if image_format not in _FORMATS or catalog_format not in _CATALOG_FORMATS:
        raise ValueError(
            f"image_format must be one of {_FORMATS} and catalog_format one of "
            f"{_CATALOG_FORMATS}; got {image_format!r} and {catalog_format!r}"
        )


def _prepare_out_dir(out_dir: Path, fits: bool) -> None:
    """Create the output folders and delete any earlier ``simulation.json``."""
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / _SETTINGS_FILE).unlink(missing_ok=True)  # a half-written catalogue is never cached
    if fits:
        (out_dir / "fits").mkdir(exist_ok=True)


def _simulated_frame(
    truths: pd.DataFrame,
    seed: int,
    n_volunteers: int,
    image_format: str,
    fits: bool,
    kappa: float | None,
) -> pd.DataFrame:
    """The catalogue rows: ids, relative paths, simulated vote counts and ``truth_`` columns."""
    votes = ask_volunteers(
        answer_probabilities(truths, decals_dr5_schema),
        n_volunteers,
        np.random.default_rng([seed, 1]),
        kappa=kappa,
    )
    catalog = pd.DataFrame({"id_str": [f"sim_{seed}_{i:06d}" for i in range(len(truths))]})
    catalog["file_loc"] = [f"images/{id_str}.{image_format}" for id_str in catalog["id_str"]]
    if fits:
        catalog["fits_loc"] = [f"fits/{id_str}.fits" for id_str in catalog["id_str"]]
    truth_columns = truths.add_prefix("truth_")
    return pd.concat([catalog, _vote_columns(votes), truth_columns], axis=1)


def _render_jobs(
    truths: pd.DataFrame,
    catalog: pd.DataFrame,
    out_dir: Path,
    size: int,
    fits: bool,
    image_format: str,
) -> list[tuple[dict[str, Any], int, str, str | None, str]]:
    """One ``_render_one`` job per galaxy, with absolute image (and FITS) paths."""
    return [
        (
            truth,
            size,
            str(out_dir / file_loc),
            str(out_dir / f"fits/{id_str}.fits") if fits else None,
            image_format,
        )
        for truth, file_loc, id_str in zip(
            truths.to_dict("records"), catalog["file_loc"], catalog["id_str"], strict=True
        )
    ]


def _write_catalog(catalog: pd.DataFrame, path: Path, catalog_format: str) -> None:
    """Write the catalogue as CSV or parquet, without the index."""
    if catalog_format == "parquet":
        catalog.to_parquet(path, index=False)
    else:
        catalog.to_csv(path, index=False)


def make_catalog(
    n: int,
    size: int,
    seed: int,
    out_dir: Path | str,
    n_volunteers: int = 40,
    image_format: str = "jpg",
    fits: bool = False,
    workers: int = 1,
    catalog_format: str = "csv",
    kappa: float | None = 10.0,
) -> pd.DataFrame:
    """Simulate ``n`` galaxies and their Galaxy Zoo DECaLS DR5 votes; write images and a catalogue.

    Deterministic: the same arguments give byte-identical images and identical votes, whatever
    ``workers``. Cached: if ``out_dir`` already holds a complete catalogue made with the same
    arguments (and the same ``CATALOG_VERSION``), it is read back instead of being remade.

    Args:
        n: number of galaxies (>= 1).
        size: image side in pixels (the field of view is always 128 x 0.262 arcsec).
        seed: simulation seed.
        out_dir: output folder (created if missing).
        n_volunteers: volunteers who classify every galaxy.
        image_format: ``jpg`` or ``png``.
        fits: also write the raw g, r, z bands as FITS (column ``fits_loc``).
        workers: processes that render images (1 renders in this process).
        catalog_format: ``csv`` or ``parquet``.
        kappa: crowd over-dispersion of the votes (see ``ask_volunteers``); None for none.

    Returns:
        The catalogue, with absolute ``file_loc``.

    Raises:
        ValueError: if a count is out of range or a format is unknown.
    """
    _check_arguments(n, size, n_volunteers, workers, image_format, catalog_format)
    out_dir = Path(out_dir)
    settings = {
        "version": CATALOG_VERSION,
        "n": n,
        "size": size,
        "seed": seed,
        "n_volunteers": n_volunteers,
        "image_format": image_format,
        "fits": fits,
        "kappa": kappa,
    }
    cached = _cached(out_dir, settings, catalog_format)
    if cached is not None:
        logger.info("catalogue cached path=%s n=%d", _catalog_path(out_dir, catalog_format), n)
        return cached
    _prepare_out_dir(out_dir, fits)
    truths = draw_truths(n, seed)
    catalog = _simulated_frame(truths, seed, n_volunteers, image_format, fits, kappa)
    _render_all(_render_jobs(truths, catalog, out_dir, size, fits, image_format), workers)
    path = _catalog_path(out_dir, catalog_format)
    _write_catalog(catalog, path, catalog_format)
    (out_dir / _SETTINGS_FILE).write_text(strict_json.dumps(settings, indent=2))
    logger.info("catalogue written path=%s n=%d", path, n)
    return load_catalog(path)
