import subprocess
import sys
import threading

import lightning as L
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prioritiser.cli import main
from prioritiser.ensemble import StopWhenSet, train_ensemble
from zoobot.schemas import decals_dr5_schema


@pytest.fixture(scope="module")
def vote_catalog(tmp_path_factory):
    """24 seeded images with random tree-shaped vote counts, file_loc relative to the catalogue."""
    root = tmp_path_factory.mktemp("votes")
    (root / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            root / "images" / f"{i}.png"
        )
        row = {"id_str": f"g{i}", "file_loc": f"images/{i}.png"}
        row.update(dict(zip(decals_dr5_schema.label_cols, rng.integers(0, 8, 34))))
        rows.append(row)
    catalog = pd.DataFrame(rows)
    catalog.to_csv(root / "catalog.csv", index=False)
    return root / "catalog.csv"


@pytest.fixture(scope="module")
def tiny_checkpoints(vote_catalog, tmp_path_factory):
    catalog = pd.read_csv(vote_catalog)
    catalog["file_loc"] = [str(vote_catalog.parent / p) for p in catalog["file_loc"]]
    return train_ensemble(
        catalog.iloc[:16],
        catalog.iloc[16:],
        decals_dr5_schema,
        tmp_path_factory.mktemp("ensemble"),
        n_models=2,
        encoder="test_resnet",
        model_kwargs={"image_size": 32, "n_blocks": 1},
        trainer_kwargs={"max_epochs": 1, "accelerator": "cpu", "enable_progress_bar": False},
        batch_size=8,
    ).checkpoints


def test_score_ranks_the_whole_catalogue_with_per_question_information(
    vote_catalog, tiny_checkpoints, tmp_path
):
    out = tmp_path / "ranked.csv"
    argv = ["score", "--catalog", str(vote_catalog), "--out", str(out), "--samples", "3"]
    for checkpoint in tiny_checkpoints:
        argv += ["--checkpoint", str(checkpoint)]
    assert main(argv) == 0
    ranked = pd.read_csv(out)
    assert len(ranked) == 24 and sorted(ranked["id_str"]) == sorted(f"g{i}" for i in range(24))
    assert list(ranked["rank"]) == list(range(1, 25))
    assert ranked["score"].is_monotonic_decreasing
    mi = ranked[[f"mi_{q}" for q in decals_dr5_schema.question_names]].to_numpy()
    assert np.isfinite(mi).all() and (mi >= 0).all() and mi.max() > 0
    fractions = ranked[[f"{c}_fraction" for c in decals_dr5_schema.label_cols]].to_numpy()
    np.testing.assert_allclose(fractions[:, :3].sum(axis=1), 1, rtol=1e-6)


@pytest.mark.parametrize("weighting", ["asked", "uniform"])
def test_bald_score_sums_the_questions_information_by_the_chosen_weighting(
    vote_catalog, tiny_checkpoints, tmp_path, weighting
):
    out = tmp_path / "ranked.csv"
    argv = ["score", "--catalog", str(vote_catalog), "--out", str(out), "--samples", "3"]
    argv += ["--checkpoint", str(tiny_checkpoints[0]), "--question-weighting", weighting]
    assert main(argv) == 0
    ranked = pd.read_csv(out)
    mi = ranked[[f"mi_{q}" for q in decals_dr5_schema.question_names]].to_numpy()
    fractions = ranked[[f"{c}_fraction" for c in decals_dr5_schema.label_cols]].to_numpy()
    asked = decals_dr5_schema.question_asked_probability(fractions)
    expected = mi.sum(axis=1) if weighting == "uniform" else (mi * asked).sum(axis=1)
    np.testing.assert_allclose(ranked["score"], expected, rtol=1e-5, atol=1e-9)


def test_score_refuses_epig_with_the_reason_before_loading_anything(tmp_path, capsys):
    out = tmp_path / "ranked.csv"
    argv = ["score", "--catalog", str(tmp_path / "absent.csv"), "--out", str(out)]
    argv += ["--checkpoint", str(tmp_path / "absent.ckpt"), "--acquisition", "epig"]
    assert main(argv) == 1
    assert "cannot rank a catalogue by 'epig': EPIG needs" in capsys.readouterr().err
    assert not out.exists()


def test_score_top_k_parquet_and_bf16_in_a_subprocess(vote_catalog, tiny_checkpoints, tmp_path):
    out = tmp_path / "top.parquet"
    command = [
        sys.executable,
        "-m",
        "prioritiser",
        "score",
        "--catalog",
        str(vote_catalog),
        "--out",
        str(out),
    ]
    command += ["--checkpoint", str(tiny_checkpoints[0]), "--top", "5", "--samples", "2"]
    command += ["--precision", "bf16-mixed"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert len(pd.read_parquet(out)) == 5


def test_missing_catalogue_is_a_clear_error_and_exit_code_1(tmp_path, capsys):
    code = main(
        [
            "score",
            "--catalog",
            str(tmp_path / "nope.csv"),
            "--checkpoint",
            "x.ckpt",
            "--out",
            "o.csv",
        ]
    )
    assert code == 1
    assert "no catalogue at" in capsys.readouterr().err


def test_training_ends_after_the_current_step_once_a_stop_is_asked(vote_catalog, tmp_path):
    catalog = pd.read_csv(vote_catalog)
    catalog["file_loc"] = [str(vote_catalog.parent / p) for p in catalog["file_loc"]]
    stop = threading.Event()
    stop.set()
    steps = []

    class Count(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            steps.append(trainer.global_step)

    trained = train_ensemble(
        catalog.iloc[:16],
        catalog.iloc[16:],
        decals_dr5_schema,
        tmp_path,
        n_models=1,
        encoder="test_resnet",
        model_kwargs={"image_size": 32, "n_blocks": 1},
        trainer_kwargs={
            "max_epochs": 3,
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "callbacks": [Count(), StopWhenSet(stop)],
        },
        batch_size=4,
    )
    assert steps == [1]
    assert len(trained.models) == 1


def _score_argv(catalog, tmp_path):
    out = tmp_path / "ranked.csv"
    return ["score", "--catalog", str(catalog), "--checkpoint", "x.ckpt", "--out", str(out)]


def test_duplicate_ids_are_refused_naming_them(tmp_path, capsys):
    catalog = tmp_path / "dup.csv"
    rows = [f"g{i % 8},img{i}.png" for i in range(16)]
    catalog.write_text("id_str,file_loc\n" + "\n".join(rows) + "\n")
    assert main(_score_argv(catalog, tmp_path)) == 1
    err = capsys.readouterr().err
    assert "repeats 8 id_str value(s): 'g0', 'g1', 'g2', 'g3', 'g4' and 3 more" in err
    assert str(catalog) in err and not (tmp_path / "ranked.csv").exists()


def test_score_catalog_refuses_duplicate_ids_too():
    from prioritiser.errors import PrioritiserError
    from prioritiser.scoring import score_catalog
    from zoobot.finetune import FinetuneableZoobotTree

    model = FinetuneableZoobotTree(name="test_resnet", schema="decals_dr5")
    catalog = pd.DataFrame({"id_str": ["a", "b", "a"], "file_loc": ["x.png"] * 3})
    with pytest.raises(PrioritiserError, match="repeats 1 id_str value"):
        score_catalog(catalog, [model], progress=False)


@pytest.mark.parametrize(
    ("text", "message"), [("", "is empty"), ("id_str,file_loc\n", "has a header but no rows")]
)
def test_an_empty_catalogue_is_a_clear_error_naming_the_file(tmp_path, capsys, text, message):
    catalog = tmp_path / "empty.csv"
    catalog.write_text(text)
    assert main(_score_argv(catalog, tmp_path)) == 1
    err = capsys.readouterr().err
    assert message in err and str(catalog) in err and "EmptyDataError" not in err
