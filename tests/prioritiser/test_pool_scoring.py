"""Scoring the pool from stored features equals scoring the images, and encodes only what is new."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from prioritiser.errors import PrioritiserError
from prioritiser.pool_scoring import (
    score_pool_features,
    selected_predictions,
    update_feature_stores,
)
from prioritiser.prediction_files import PredictionWriter, read_predictions
from prioritiser.scoring import score_catalog
from tests.zoobot.conftest import write_tiny_images
from zoobot.finetune import FinetuneableZoobotTree


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    paths = write_tiny_images(tmp_path_factory.mktemp("pool_images"), 12, seed=3)
    return pd.DataFrame({"id_str": [str(50 + i) for i in range(12)], "file_loc": paths})


@pytest.fixture(scope="module")
def ensemble():
    torch.manual_seed(0)
    first = FinetuneableZoobotTree(schema="decals_dr5", name="test_resnet", image_size=32)
    second = FinetuneableZoobotTree(schema="decals_dr5", name="test_resnet", image_size=32)
    second.encoder.load_state_dict(first.encoder.state_dict())
    return [first.eval(), second.eval()]


def _score(ensemble, stores, ids, path, n_samples, seed=0):
    with PredictionWriter(path, ensemble[0].schema) as writer:
        return score_pool_features(ensemble, stores, ids, writer, n_samples=n_samples, seed=seed)


def test_heads_only_scoring_equals_scoring_the_images(ensemble, catalog, tmp_path):
    stores = update_feature_stores(ensemble, catalog, tmp_path / "features")
    assert stores[0].key == stores[1].key and len(stores[0].subject_ids()) == 12
    pool = catalog["id_str"].astype(int).to_numpy()[2:]
    scored = _score(ensemble, stores, pool, tmp_path / "p.parquet", n_samples=1)
    assert sorted(scored.subject_ids.tolist()) == sorted(pool.tolist())
    expected = score_catalog(catalog.iloc[2:], ensemble, n_samples=1, progress=False)
    frame = read_predictions(tmp_path / "p.parquet")
    assert frame["id_str"].tolist() == expected["id_str"].tolist()
    np.testing.assert_allclose(frame["score"], expected["score"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(frame["mi_bar"], expected["mi_bar"], rtol=2e-3, atol=1e-4)


def test_dropout_samples_are_seeded_and_new_encoders_get_new_stores(ensemble, catalog, tmp_path):
    stores = update_feature_stores(ensemble, catalog, tmp_path / "features")
    ids = catalog["id_str"].astype(int).to_numpy()
    first = _score(ensemble, stores, ids, tmp_path / "a.parquet", n_samples=5, seed=1)
    again = _score(ensemble, stores, ids, tmp_path / "b.parquet", n_samples=5, seed=1)
    other = _score(ensemble, stores, ids, tmp_path / "c.parquet", n_samples=5, seed=2)
    np.testing.assert_array_equal(first.scores, again.scores)
    assert not np.array_equal(first.scores, other.scores)
    changed = FinetuneableZoobotTree(schema="decals_dr5", name="test_resnet", image_size=32)
    stores = update_feature_stores([ensemble[0], changed], catalog, tmp_path / "features")
    assert stores[0].key != stores[1].key and len(stores[1].subject_ids()) == 12
    mixed = _score([ensemble[0], changed], stores, ids, tmp_path / "d.parquet", n_samples=2)
    assert len(mixed.scores) == 12


def test_a_pool_galaxy_missing_from_the_store_is_named(ensemble, catalog, tmp_path):
    stores = update_feature_stores(ensemble, catalog.iloc[:3], tmp_path / "features")
    with pytest.raises(PrioritiserError, match="lacks 1 pool subjects"):
        _score(ensemble, stores, [50, 51, 99], tmp_path / "e.parquet", n_samples=1)
    assert not (tmp_path / "e.parquet").exists()


def test_the_selected_batch_is_read_back_with_ranks_and_flags(ensemble, catalog, tmp_path):
    from prioritiser.selection import select_batch

    stores = update_feature_stores(ensemble, catalog, tmp_path / "features")
    ids = catalog["id_str"].astype(int).to_numpy()
    scored = _score(ensemble, stores, ids, tmp_path / "f.parquet", n_samples=3)
    picks = select_batch(scored.scores, 4, np.random.default_rng(0), random_fraction=0.5)
    chosen = selected_predictions(scored, picks, tmp_path / "f.parquet")
    ranked = read_predictions(tmp_path / "f.parquet").set_index("subject_id")
    assert chosen["subject_id"].tolist() == scored.subject_ids[picks["index"]].tolist()
    assert chosen["rank"].tolist() == ranked.loc[chosen["subject_id"], "rank"].tolist()
    assert chosen["selection"].tolist() == picks["selection"].tolist()
    assert chosen["rank"].iloc[0] == 1
    np.testing.assert_allclose(chosen["mi_bar"], ranked.loc[chosen["subject_id"], "mi_bar"])


@pytest.mark.parametrize("p", [0.5, 0.2])
def test_dropout_masks_keep_one_minus_p(p):
    from prioritiser.pool_scoring import _dropout_keep

    keep = _dropout_keep(np.random.default_rng(0), (400, 5, 37), p)
    assert keep.shape == (400, 5, 37)
    assert set(np.unique(keep).tolist()) <= {0, 1}
    assert abs(keep.mean() - (1 - p)) < 0.01


def test_a_head_with_a_hidden_layer_samples_through_torch_dropout(catalog, tmp_path):
    from zoobot.finetune.heads import DirichletHead

    torch.manual_seed(0)
    model = FinetuneableZoobotTree(schema="decals_dr5", name="test_resnet", image_size=32)
    model.head = DirichletHead(model.encoder.num_features, 34, hidden=8, input_dropout_prob=0.1)
    stores = update_feature_stores([model], catalog, tmp_path / "features")
    ids = catalog["id_str"].astype(int).to_numpy()
    scored = _score([model], stores, ids, tmp_path / "h.parquet", n_samples=4)
    assert len(scored.scores) == 12 and np.isfinite(scored.scores).all()
    assert (scored.scores > 0).any()
