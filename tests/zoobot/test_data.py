import numpy as np
import pandas as pd
import pytest
import torch
from astropy.io import fits

from zoobot.data import (
    CatalogDataModule,
    check_images,
    evaluation_transform,
    load_image,
    training_transform,
)
from zoobot.errors import CatalogError, ImageLoadError

from .conftest import write_tiny_images


def test_missing_and_corrupt_images_are_all_named(tmp_path):
    good = write_tiny_images(tmp_path, 2)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    missing = tmp_path / "missing.png"
    with pytest.raises(ImageLoadError) as raised:
        check_images([*good, corrupt, missing])
    assert set(raised.value.problems) == {str(corrupt), str(missing)}
    assert "missing.png" in str(raised.value) and "corrupt.jpg" in str(raised.value)


def test_datamodule_checks_images_before_training(tmp_path):
    paths = write_tiny_images(tmp_path, 4)
    paths[2] = str(tmp_path / "gone.png")
    catalog = pd.DataFrame({"id_str": list("abcd"), "file_loc": paths, "label": [0, 1, 0, 1]})
    datamodule = CatalogDataModule(["label"], train_catalog=catalog, val_catalog=catalog)
    with pytest.raises(ImageLoadError, match="gone.png"):
        datamodule.setup("fit")


def test_catalog_without_required_columns_is_rejected(tmp_path):
    catalog = pd.DataFrame({"id_str": ["a"], "file_loc": ["x.png"]})
    with pytest.raises(CatalogError, match="label"):
        CatalogDataModule(["label"], catalog=catalog)


def test_multiband_fits_becomes_stretched_channels(tmp_path):
    rng = np.random.default_rng(0)
    cube = rng.normal(100, 5, (3, 40, 40)).astype(np.float32)
    cube[:, 18:22, 18:22] += 500
    path = tmp_path / "galaxy.fits"
    fits.PrimaryHDU(cube).writeto(path)
    image = load_image(path)
    assert image.shape == (3, 40, 40)
    assert 0 <= image.min() and image.max() <= 1
    assert image[:, 20, 20].min() > image[:, 2, 2].max()
    assert load_image(path, greyscale=True).shape == (1, 40, 40)


def test_evaluation_transform_is_deterministic_and_training_is_not():
    image = torch.rand(3, 48, 48)
    evaluate = evaluation_transform(24)
    assert torch.equal(evaluate(image), evaluate(image))
    assert evaluate(image).shape == (3, 24, 24)
    torch.manual_seed(0)
    train = training_transform(24)
    assert train(image).shape == (3, 24, 24)
    assert not torch.equal(train(image), train(image))


def test_jpeg_and_png_load_as_unit_range_channels_first(tmp_path):
    path = write_tiny_images(tmp_path, 1)[0]
    image = load_image(path)
    assert image.shape == (3, 32, 32) and image.dtype == np.float32
    assert 0 <= image.min() <= image.max() <= 1
