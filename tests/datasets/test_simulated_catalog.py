import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import zoobot.datasets
import zoobot.datasets.simulated as simulated
from zoobot.datasets.simulated import load_catalog, make_catalog
from zoobot.datasets.simulated.cli import main
from zoobot.errors import CatalogError
from zoobot.schemas import decals_dr5_schema

SCHEMA = decals_dr5_schema
N, SIZE = 12, 32


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    make_catalog(N, SIZE, seed=1, out_dir=out, n_volunteers=20)
    return out


def test_catalog_has_ids_paths_votes_totals_and_truths(catalog_dir):
    catalog = load_catalog(catalog_dir / "catalog.csv")
    assert len(catalog) == N and catalog["id_str"].is_unique
    for question, answers in zip(SCHEMA.questions, SCHEMA.question_slices, strict=True):
        counts = catalog[SCHEMA.label_cols[answers]].to_numpy()
        np.testing.assert_array_equal(counts.sum(axis=1), catalog[question.total_votes_col])
    assert (catalog["smooth-or-featured_total-votes"] == 20).all()
    assert {"truth_inclination_deg", "truth_bar_strength", "truth_visibility"} <= set(catalog)
    for path in catalog["file_loc"]:
        assert Path(path).is_absolute()
        with Image.open(path) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"


def test_file_locations_on_disk_are_relative_to_the_catalogue(catalog_dir):
    on_disk = pd.read_csv(catalog_dir / "catalog.csv")
    assert all(loc.startswith("images/") for loc in on_disk["file_loc"])


def test_same_seed_gives_identical_bytes_and_votes(catalog_dir, tmp_path):
    make_catalog(N, SIZE, seed=1, out_dir=tmp_path, n_volunteers=20)
    assert (tmp_path / "catalog.csv").read_bytes() == (catalog_dir / "catalog.csv").read_bytes()
    for image in (catalog_dir / "images").iterdir():
        assert (tmp_path / "images" / image.name).read_bytes() == image.read_bytes()


def test_an_identical_call_reuses_the_catalogue(catalog_dir):
    image = next((catalog_dir / "images").iterdir())
    before = image.stat().st_mtime_ns
    again = make_catalog(N, SIZE, seed=1, out_dir=catalog_dir, n_volunteers=20)
    assert len(again) == N and image.stat().st_mtime_ns == before


def test_different_arguments_remake_the_catalogue(tmp_path):
    make_catalog(4, SIZE, seed=2, out_dir=tmp_path, n_volunteers=5)
    votes_5 = load_catalog(tmp_path / "catalog.csv")["smooth-or-featured_total-votes"]
    remade = make_catalog(4, SIZE, seed=2, out_dir=tmp_path, n_volunteers=9)
    assert (votes_5 == 5).all() and (remade["smooth-or-featured_total-votes"] == 9).all()
    assert json.loads((tmp_path / "simulation.json").read_text())["n_volunteers"] == 9


def test_png_fits_and_parquet(tmp_path):
    catalog = make_catalog(
        3, SIZE, seed=3, out_dir=tmp_path, image_format="png", fits=True, catalog_format="parquet"
    )
    assert (tmp_path / "catalog.parquet").is_file()
    assert all(Path(p).suffix == ".png" and Path(p).is_file() for p in catalog["file_loc"])
    assert all(Path(p).is_file() for p in catalog["fits_loc"])


def test_worker_processes_give_the_same_images(catalog_dir, tmp_path):
    make_catalog(N, SIZE, seed=1, out_dir=tmp_path, n_volunteers=20, workers=2)
    for image in (catalog_dir / "images").iterdir():
        assert (tmp_path / "images" / image.name).read_bytes() == image.read_bytes()


def test_bad_arguments_and_missing_catalogue(tmp_path):
    with pytest.raises(ValueError, match="n >= 1"):
        make_catalog(0, SIZE, seed=0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="image_format"):
        make_catalog(2, SIZE, seed=0, out_dir=tmp_path, image_format="gif")
    with pytest.raises(CatalogError, match="no catalogue"):
        load_catalog(tmp_path / "nothing.csv")


def test_cli_writes_a_catalogue_and_prints_its_path(tmp_path, capsys):
    code = main(["--n", "3", "--size", "16", "--seed", "4", "--out", str(tmp_path), "--fits"])
    assert code == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "catalog.csv")
    assert len(load_catalog(tmp_path / "catalog.csv")) == 3
    assert len(list((tmp_path / "fits").iterdir())) == 3


def test_cli_exit_codes(tmp_path, capsys):
    assert main(["--n", "0", "--out", str(tmp_path)]) == 1
    with pytest.raises(SystemExit) as usage:
        main(["--out", str(tmp_path)])
    assert usage.value.code == 2
    with pytest.raises(SystemExit) as shown:
        main(["--help"])
    assert shown.value.code == 0 and "--volunteers" in capsys.readouterr().out


def test_cli_subprocess_smoke(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "zoobot.datasets.simulated", "--n", "2", "--size", "16"]
        + ["--out", str(tmp_path), "--format", "png", "--volunteers", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "catalog.csv")
    assert "catalogue written" in result.stderr


def test_simulator_is_torch_free():
    code = "import sys, zoobot.datasets.simulated; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("module", [zoobot.datasets, simulated])
def test_all_lists_exactly_the_public_names(module):
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(module.__all__) - {"simulated"} == public
