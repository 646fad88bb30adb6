"""Predictions as columnar files: one Parquet file per model version and cycle, and their retention.

A cycle's predictions for the whole pool (score, mutual information per question, expected vote
fractions) go to ``<directory>/predictions-v<version>-c<cycle>.parquet``, written chunk by chunk
so memory stays flat, with the score as float32 (exact ranking) and the rest as float16. The
database keeps only a pointer to the file and the selected batch with its flags.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from prioritiser.errors import PrioritiserError
from zoobot.schemas import Schema

__all__ = [
    "PredictionWriter",
    "prediction_path",
    "prune_predictions",
    "read_predictions",
    "read_subjects",
    "selected_rows",
]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"predictions-v(\d+)-c(\d+)\.parquet")


def prediction_path(directory: str | Path, version_id: int, cycle_id: int) -> Path:
    """Where a version's predictions for a cycle live."""
    return Path(directory) / f"predictions-v{version_id:06d}-c{cycle_id:06d}.parquet"


def _arrow_schema(schema: Schema) -> pa.Schema:
    fields = [pa.field("subject_id", pa.int64()), pa.field("score", pa.float32())]
    fields += [pa.field(f"mi_{q}", pa.float16()) for q in schema.question_names]
    fields += [pa.field(f"{c}_fraction", pa.float16()) for c in schema.label_cols]
    return pa.schema(fields)


class PredictionWriter:
    """Stream prediction chunks into one Parquet file, made visible atomically on ``close``.

    Args:
        path: the ``.parquet`` file (see :func:`prediction_path`).
        schema: the decision tree (names the columns).
        compression: Parquet codec.

    Use as a context manager; leaving it by an exception removes the partial file.
    """

    def __init__(self, path: str | Path, schema: Schema, compression: str = "zstd") -> None:
        self.path = Path(path)
        self.schema = schema
        self.arrow_schema = _arrow_schema(schema)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._writer = pq.ParquetWriter(
            str(self._partial), self.arrow_schema, compression=compression
        )
        self.rows = 0

    def write(
        self,
        subject_ids: np.ndarray,
        scores: np.ndarray,
        mutual_information: np.ndarray,
        fractions: np.ndarray,
    ) -> None:
        """Append one chunk.

        Args:
            subject_ids: [n] int64.
            scores: [n] acquisition scores.
            mutual_information: [n, n_questions] nats.
            fractions: [n, n_answers] expected vote fractions.

        Raises:
            PrioritiserError: if a shape disagrees with the schema or the ids.
        """
        n = len(subject_ids)
        expected = {
            "scores": ((n,), np.shape(scores)),
            "mutual_information": ((n, len(self.schema.question_names)), mutual_information.shape),
            "fractions": ((n, len(self.schema.label_cols)), fractions.shape),
        }
        for name, (want, got) in expected.items():
            if tuple(got) != want:
                raise PrioritiserError(f"prediction chunk {name} has shape {got}, expected {want}")
        columns = [np.asarray(subject_ids, np.int64), np.asarray(scores, np.float32)]
        columns += list(np.asarray(mutual_information, np.float16).T)
        columns += list(np.asarray(fractions, np.float16).T)
        arrays = [pa.array(column) for column in columns]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self.arrow_schema))
        self.rows += n

    def close(self) -> Path:
        """Finish the file and move it into place. Returns its path."""
        self._writer.close()
        os.replace(self._partial, self.path)
        logger.info("predictions written path=%s galaxies=%d", self.path, self.rows)
        return self.path

    def abort(self) -> None:
        """Drop the partial file."""
        self._writer.close()
        self._partial.unlink(missing_ok=True)

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def read_predictions(
    path: str | Path,
    columns: Iterable[str] | None = None,
    top: int | None = None,
) -> pd.DataFrame:
    """A prediction file as a table, best first, with ``rank`` (1 = highest score) and ``id_str``.

    Args:
        path: the ``.parquet`` file.
        columns: columns to read besides ``subject_id`` and ``score`` (default all).
        top: keep only the ``top`` best-ranked rows.

    Returns:
        ``rank``, ``id_str``, ``subject_id``, ``score`` and the columns asked for, float32.

    Raises:
        PrioritiserError: if the file is missing or lacks a column asked for.
    """
    path = _existing_file(path)
    wanted = None
    if columns is not None:
        wanted = ["subject_id", "score", *[c for c in columns if c not in ("subject_id", "score")]]
        missing = set(wanted) - set(pq.read_schema(path).names)
        if missing:
            raise PrioritiserError(f"prediction file {path} lacks columns {sorted(missing)}")
    frame = pq.read_table(path, columns=wanted).to_pandas()
    order = np.argsort(-frame["score"].to_numpy(), kind="stable")
    if top is not None:
        order = order[:top]
    frame = frame.iloc[order].reset_index(drop=True)
    frame = _as_float32(frame)
    frame.insert(0, "id_str", frame["subject_id"].astype(str))
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return frame


def read_subjects(path: str | Path, subject_ids: Iterable[int]) -> pd.DataFrame:
    """The rows of the given subjects (a selected batch, say), in the order given, float32.

    Raises:
        PrioritiserError: if the file is missing or lacks one of the subjects.
    """
    path = _existing_file(path)
    wanted = [int(i) for i in subject_ids]
    table = pq.read_table(path, filters=[("subject_id", "in", wanted)]) if wanted else None
    frame = (
        table.to_pandas().drop_duplicates("subject_id").set_index("subject_id")
        if table is not None
        else pd.DataFrame(columns=_arrow_schema_names(path)).set_index("subject_id")
    )
    lacking = [i for i in wanted if i not in frame.index]
    if lacking:
        raise PrioritiserError(f"prediction file {path} has no rows for subjects {lacking[:10]}")
    frame = frame.loc[wanted].reset_index()
    return _as_float32(frame)


def _existing_file(path: str | Path) -> Path:
    """``path`` as a Path, or a clear error if retention (or anything else) removed it."""
    path = Path(path)
    if not path.is_file():
        raise PrioritiserError(f"no prediction file at {path}; was it pruned by retention?")
    return path


def _as_float32(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with its float16 columns (fractions, information) widened to float32."""
    return frame.astype({c: np.float32 for c in frame.columns if frame[c].dtype == np.float16})


def selected_rows(frame: pd.DataFrame, version_id: int, cycle_id: int) -> list[dict]:
    """``prioritiser_predictions`` rows (the database's copy of the selected batch) from a frame.

    Args:
        frame: ``subject_id``, ``score``, ``rank``, ``selection``, ``mi_<question>`` and
            ``<answer>_fraction`` per selected galaxy (see ``selected_predictions``).
        version_id: the model version that scored them.
        cycle_id: the cycle that selected them.

    Returns:
        One mapping per galaxy, for a bulk insert.
    """
    mi_cols = [c for c in frame.columns if c.startswith("mi_")]
    fraction_cols = [c for c in frame.columns if c.endswith("_fraction")]
    mi_names = [c.removeprefix("mi_") for c in mi_cols]
    answer_names = [c.removesuffix("_fraction") for c in fraction_cols]
    columns = zip(
        frame["subject_id"].astype("int64").tolist(),
        frame["score"].astype(float).tolist(),
        frame["rank"].astype(int).tolist(),
        frame[mi_cols].to_numpy(dtype=float).tolist(),
        frame[fraction_cols].to_numpy(dtype=float).tolist(),
        frame["selection"].tolist(),
    )
    return [
        {
            "model_version_id": version_id,
            "subject_id": subject_id,
            "cycle_id": cycle_id,
            "score": score,
            "rank": rank,
            "mutual_information": dict(zip(mi_names, mi)),
            "vote_fractions": dict(zip(answer_names, fractions)),
            "selection": selection,
        }
        for subject_id, score, rank, mi, fractions, selection in columns
    ]


def _arrow_schema_names(path: Path) -> list[str]:
    return pq.read_schema(path).names


def prune_predictions(
    directory: str | Path, keep_last: int, deployed_versions: Iterable[int] = ()
) -> list[Path]:
    """Delete prediction files except the last ``keep_last`` versions' and every deployed one's.

    Args:
        directory: where the files live.
        keep_last: how many of the newest model versions (by id) to keep, all their cycles.
        deployed_versions: version ids kept whatever their age (deployed now or ever).

    Returns:
        The files deleted.

    Raises:
        PrioritiserError: if ``keep_last`` is negative.
    """
    if keep_last < 0:
        raise PrioritiserError(f"retention keep_last must be >= 0, got {keep_last}")
    files = {}
    for path in Path(directory).glob("predictions-v*-c*.parquet"):
        match = _NAME.fullmatch(path.name)
        if match:
            files[path] = int(match.group(1))
    versions = sorted(set(files.values()))
    keep = set(versions[max(0, len(versions) - keep_last) :]) | set(deployed_versions)
    removed = sorted(path for path, version in files.items() if version not in keep)
    for path in removed:
        path.unlink()
    if removed:
        logger.info("pruned prediction files removed=%d kept_versions=%s", len(removed), keep)
    return removed
