"""The feature store: keyed by encoder and preprocessing, appended incrementally, read in chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tests.zoobot.conftest import write_tiny_images
from zoobot.errors import ZoobotError
from zoobot.feature_store import FeatureStore, encode_to_store, encoder_key
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.predict import iter_posterior


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    paths = write_tiny_images(tmp_path_factory.mktemp("store_images"), 10)
    return pd.DataFrame({"id_str": [str(100 + i) for i in range(10)], "file_loc": paths})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return FinetuneableZoobotTree(schema="decals_dr5", name="test_resnet", image_size=32).eval()


def test_key_changes_with_weights_and_preprocessing_only(model):
    key = encoder_key(model.encoder, 32)
    assert key == encoder_key(model.encoder, 32)
    assert key != encoder_key(model.encoder, 64)
    assert key != encoder_key(model.encoder, 32, greyscale=True)
    changed = FinetuneableZoobotTree(schema="decals_dr5", name="test_resnet", image_size=32)
    changed.load_state_dict(model.state_dict())
    assert encoder_key(changed.encoder, 32) == key
    with torch.no_grad():
        next(changed.encoder.parameters()).add_(1e-3)
    assert encoder_key(changed.encoder, 32) != key


def test_encoding_is_incremental_and_matches_the_full_network(model, catalog, tmp_path):
    store = FeatureStore(tmp_path, encoder_key(model.encoder, 32))
    assert encode_to_store(model.encoder, catalog.iloc[:4], store, 32, batch_size=3) == 4
    assert encode_to_store(model.encoder, catalog, store, 32, batch_size=3) == 6
    assert encode_to_store(model.encoder, catalog, store, 32) == 0
    assert len(store.segments()) == 2
    ids = catalog["id_str"].astype(int).to_numpy()
    assert store.subject_ids().tolist() == ids.tolist()
    features = store.load(ids[::-1])
    with torch.inference_mode():
        heads = model.sample_head(torch.from_numpy(features[::-1].copy()), 1).numpy()
    (_, samples), *_ = iter_posterior(model, catalog, 1, batch_size=10, progress=False)
    np.testing.assert_allclose(heads, samples, rtol=1e-5, atol=1e-5)
    streamed = list(store.iter_chunks())
    assert np.concatenate([i for i, _ in streamed]).tolist() == ids.tolist()
    np.testing.assert_array_equal(np.concatenate([f for _, f in streamed]), store.load(ids))


def test_bad_input_is_named(tmp_path):
    store = FeatureStore(tmp_path, "abc")
    store.append(np.array([1, 2]), np.zeros((2, 3)))
    with pytest.raises(ZoobotError, match="holds 3 features"):
        store.append(np.array([3]), np.zeros((1, 4)))
    with pytest.raises(ZoobotError, match="do not match"):
        store.append(np.array([3, 4]), np.zeros((1, 3)))
    with pytest.raises(ZoobotError, match=r"no features for subjects \[9\]"):
        store.load([1, 9])
    with pytest.raises(ZoobotError, match="must be letters"):
        FeatureStore(tmp_path, "../escape")
    assert store.missing([2, 5, 5, 1, 7]).tolist() == [5, 7]


def test_stale_stores_are_pruned(tmp_path):
    from zoobot.feature_store import prune_feature_stores

    for key in ("old", "new"):
        FeatureStore(tmp_path, key).append(np.array([1]), np.zeros((1, 2)))
    assert prune_feature_stores(tmp_path, ["new"]) == [tmp_path / "old"]
    assert [p.name for p in tmp_path.iterdir()] == ["new"]
    assert prune_feature_stores(tmp_path / "absent", []) == []
