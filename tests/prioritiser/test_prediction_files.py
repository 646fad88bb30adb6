"""Prediction files: float16 columns streamed to Parquet, read back ranked, pruned by retention."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from prioritiser.errors import PrioritiserError
from prioritiser.prediction_files import (
    PredictionWriter,
    prediction_path,
    prune_predictions,
    read_predictions,
)
from zoobot.schemas import decals_dr5_schema as SCHEMA


def _chunk(rng, ids):
    n = len(ids)
    mi = rng.random((n, len(SCHEMA.question_names)))
    fractions = rng.random((n, len(SCHEMA.label_cols)))
    return np.asarray(ids), rng.random(n), mi, fractions


def test_chunks_stream_to_one_ranked_float16_file(tmp_path):
    rng = np.random.default_rng(0)
    path = prediction_path(tmp_path, 3, 7)
    chunks = [_chunk(rng, range(0, 5)), _chunk(rng, range(5, 8))]
    with PredictionWriter(path, SCHEMA) as writer:
        for chunk in chunks:
            writer.write(*chunk)
        assert not path.exists()
    assert path.name == "predictions-v000003-c000007.parquet"
    types = {field.name: str(field.type) for field in pq.read_schema(path)}
    assert types["score"] == "float" and types[f"mi_{SCHEMA.question_names[0]}"] == "halffloat"
    frame = read_predictions(path)
    scores = np.concatenate([c[1] for c in chunks]).astype(np.float32)
    assert frame["subject_id"].tolist() == np.argsort(-scores, kind="stable").tolist()
    assert frame["rank"].tolist() == list(range(1, 9))
    mi = np.concatenate([c[2] for c in chunks])[frame["subject_id"]]
    np.testing.assert_allclose(frame[[f"mi_{q}" for q in SCHEMA.question_names]], mi, atol=1e-3)
    top = read_predictions(path, columns=["mi_bar"], top=2)
    assert list(top.columns) == ["rank", "id_str", "subject_id", "score", "mi_bar"]
    assert top["subject_id"].tolist() == frame["subject_id"][:2].tolist()


def test_a_failed_write_leaves_no_file_and_bad_input_is_named(tmp_path):
    rng = np.random.default_rng(0)
    path = prediction_path(tmp_path, 1, 1)
    with pytest.raises(PrioritiserError, match="fractions has shape"):
        with PredictionWriter(path, SCHEMA) as writer:
            ids, score, mi, fractions = _chunk(rng, range(3))
            writer.write(ids, score, mi, fractions[:, :2])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PrioritiserError, match="pruned by retention"):
        read_predictions(path)


def test_retention_keeps_the_last_versions_and_every_deployed_one(tmp_path):
    rng = np.random.default_rng(0)
    for version, cycle in [(1, 1), (2, 2), (2, 3), (3, 4), (4, 5)]:
        with PredictionWriter(prediction_path(tmp_path, version, cycle), SCHEMA) as writer:
            writer.write(*_chunk(rng, range(2)))
    removed = prune_predictions(tmp_path, keep_last=2, deployed_versions=[1])
    assert [p.name for p in removed] == [
        "predictions-v000002-c000002.parquet",
        "predictions-v000002-c000003.parquet",
    ]
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [prediction_path(tmp_path, v, c).name for v, c in [(1, 1), (3, 4), (4, 5)]]
    assert prune_predictions(tmp_path, keep_last=5) == []
    assert len(prune_predictions(tmp_path, keep_last=0, deployed_versions=[4])) == 2
    with pytest.raises(PrioritiserError, match="keep_last"):
        prune_predictions(tmp_path, keep_last=-1)
