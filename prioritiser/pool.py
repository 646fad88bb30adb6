"""From the store to catalogues: cached images, labelled galaxies and the unlabelled pool."""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import requests
from sqlalchemy.engine import Engine

from panoptes_sync.aggregate import stored_vote_table
from panoptes_sync.store import (
    cached_subjects,
    session_scope,
    set_cache_paths,
    uncached_subjects,
)
from zoobot.schemas import Schema

__all__ = ["Catalogues", "build_catalogues", "cache_images", "count_labelled", "labelled_mask"]

logger = logging.getLogger(__name__)

_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg"}


@dataclass(frozen=True)
class Catalogues:
    """Galaxies split for one cycle: ``train`` and ``validation`` are labelled, ``pool`` is not."""

    train: pd.DataFrame
    validation: pd.DataFrame
    pool: pd.DataFrame

    @property
    def n_labelled(self) -> int:
        """Labelled galaxies, train and validation together."""
        return len(self.train) + len(self.validation)


def _first_location(locations: list | None) -> tuple[str, str] | None:
    for location in locations or []:
        for mime, url in location.items():
            return url, _SUFFIXES.get(mime, ".png")
    return None


def _download(url: str, path: Path, timeout_s: float) -> None:
    response = requests.get(url, timeout=timeout_s)
    response.raise_for_status()
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(response.content)
    os.replace(partial, path)


def cache_images(
    engine: Engine, folder: str | Path, timeout_s: float = 30.0, workers: int = 8
) -> int:
    """Download the image of every subject that has none cached yet, and record where.

    Files are written under a temporary name and renamed, so a crash never leaves a truncated
    image behind a recorded path. A failed download is logged and retried next cycle.

    Returns:
        Images downloaded now.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with session_scope(engine) as session:
        rows = uncached_subjects(session)
    wanted = {}
    for subject_id, locations in rows:
        found = _first_location(locations)
        if found is not None:
            wanted[subject_id] = (found[0], folder / f"{subject_id}{found[1]}")

    def fetch(item: tuple[int, tuple[str, Path]]) -> int | None:
        subject_id, (url, path) = item
        try:
            if not path.is_file():
                _download(url, path, timeout_s)
        except (requests.RequestException, OSError) as error:
            logger.warning("image download failed subject_id=%d error=%s", subject_id, error)
            return None
        return subject_id

    with ThreadPoolExecutor(workers) as pool:
        done = [s for s in pool.map(fetch, wanted.items()) if s is not None]
    with session_scope(engine) as session:
        set_cache_paths(session, {s: str(wanted[s][1]) for s in done})
    logger.info("images cached downloaded=%d missing=%d", len(done), len(wanted) - len(done))
    return len(done)


def _is_validation(subject_id: int, fraction: float, seed: int) -> bool:
    digest = hashlib.sha256(f"{seed}:{subject_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def labelled_mask(votes: pd.DataFrame, schema: Schema, min_votes: int) -> pd.Series:
    """Rows of a vote table that count as labelled: ``min_votes`` on the first question."""
    if votes.empty:
        return pd.Series(False, index=votes.index)
    return votes[schema.questions[0].total_votes_col] >= min_votes


def count_labelled(engine: Engine, schema: Schema, min_votes: int) -> int:
    """Labelled subjects in the store (with or without a cached image)."""
    votes = stored_vote_table(engine, schema.name, schema.label_cols, schema)
    return int(labelled_mask(votes, schema, min_votes).sum())


def build_catalogues(
    engine: Engine, schema: Schema, min_votes: int, validation_fraction: float, seed: int = 0
) -> Catalogues:
    """Labelled galaxies (at least ``min_votes`` volunteers on the first question) and the pool.

    The pool holds the galaxies neither labelled nor retired.

    The validation split hashes each subject id with the seed, so a galaxy stays on the same side
    as the labelled set grows, and old and new ensembles are compared on the same galaxies.

    Args:
        engine: the store, with votes aggregated under ``schema.name``.
        schema: the decision tree.
        min_votes: volunteers needed for a galaxy to count as labelled (its retirement limit).
        validation_fraction: share of labelled galaxies held out.
        seed: seeds the split.

    Returns:
        The catalogues, each with ``id_str`` (the subject id), ``subject_id``, ``file_loc`` and,
        for labelled ones, the vote counts.
    """
    with session_scope(engine) as session:
        subjects = pd.DataFrame(
            cached_subjects(session), columns=["subject_id", "file_loc", "retired"]
        )
    votes = stored_vote_table(engine, schema.name, schema.label_cols, schema)
    table = subjects.merge(votes, on="subject_id", how="left").fillna(0)
    table.insert(0, "id_str", table["subject_id"].astype(str))
    is_labelled = labelled_mask(table, schema, min_votes)
    labelled = table[is_labelled]
    held_out = labelled["subject_id"].map(
        lambda s: _is_validation(int(s), validation_fraction, seed)
    )
    pool = table[~is_labelled & ~table["retired"].astype(bool)][
        ["id_str", "subject_id", "file_loc"]
    ]
    return Catalogues(
        train=labelled[~held_out].reset_index(drop=True),
        validation=labelled[held_out].reset_index(drop=True),
        pool=pool.reset_index(drop=True),
    )
