"""Image batches: decode workers by default where safe, the same images with or without them."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest
import torch
from PIL import Image

from tests.zoobot.conftest import write_tiny_images
from zoobot.data import GalaxyDataset, evaluation_transform
from zoobot.loading import default_num_workers, is_device_decodable, iter_image_batches


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    paths = write_tiny_images(tmp_path_factory.mktemp("loading_images"), 9)
    return pd.DataFrame({"id_str": [str(i) for i in range(9)], "file_loc": paths})


def test_default_workers_only_where_they_help_and_may_start(monkeypatch):
    assert default_num_workers(64, 64) == 0
    assert 1 <= default_num_workers(1000, 64) <= 4
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True, raising=False)
    assert default_num_workers(1000, 64) == 0


@pytest.mark.parametrize("num_workers", [0, 2])
def test_batches_equal_the_dataset_with_or_without_workers(catalog, num_workers):
    dataset = GalaxyDataset(catalog, transform=evaluation_transform(16))
    batches = list(iter_image_batches(catalog, 16, batch_size=4, num_workers=num_workers))
    assert [len(i) for i, _ in batches] == [4, 4, 1]
    images = torch.cat([b for _, b in batches])
    torch.testing.assert_close(images, torch.stack([dataset[i]["image"] for i in range(9)]))
    subset = list(iter_image_batches(catalog, 16, batch_size=4, num_workers=0, rows=[5, 1]))
    assert subset[0][0].tolist() == [5, 1]
    torch.testing.assert_close(subset[0][1][0], images[5])


def test_device_decoding_needs_cuda_colour_and_jpeg(tmp_path, catalog):
    jpeg = tmp_path / "a.jpg"
    Image.new("RGB", (8, 8)).save(jpeg)
    jpegs = pd.DataFrame({"id_str": ["1"], "file_loc": [str(jpeg)]})
    assert not is_device_decodable(jpegs, torch.device("cpu"), greyscale=False)
    assert not is_device_decodable(jpegs, torch.device("cuda"), greyscale=True)
    assert is_device_decodable(jpegs, torch.device("cuda"), greyscale=False)
    assert not is_device_decodable(catalog, torch.device("cuda"), greyscale=False)  # PNGs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA JPEG decoding needs a GPU")
def test_cuda_decoding_matches_the_cpu_within_jpeg_tolerance(tmp_path):
    paths = []
    for i in range(5):
        path = tmp_path / f"g{i}.jpg"
        Image.effect_mandelbrot((48, 48), (-2, -1.5, 1, 1.5), 20 + i).convert("RGB").save(path)
        paths.append(str(path))
    catalog = pd.DataFrame({"id_str": [str(i) for i in range(5)], "file_loc": paths})
    cpu = torch.cat([b for _, b in iter_image_batches(catalog, 32, 4, num_workers=0)])
    cuda = [b for _, b in iter_image_batches(catalog, 32, 4, 0, torch.device("cuda"))]
    assert all(b.device.type == "cuda" for b in cuda)
    torch.testing.assert_close(torch.cat(cuda).cpu(), cpu, atol=0.05, rtol=0)
