"""Zoobot 2.9's official examples, in their 2.9 form, on the shared rings with an offline encoder.

They use galaxy-datasets' data modules and transforms, as in Zoobot (galaxy-datasets is in the
dev extra, so CI runs them; they skip where it is not installed, since it pulls torchaudio, datasets
and a second Lightning that a runtime install need not carry).
``hf_hub:mwalmsley/zoobot-encoder-convnext_nano`` resolves to a tiny timm encoder laid out in a
temporary hub cache, with the hub offline.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.zoobot.zoobot2_fixtures import FIXTURES, write_hub_cache

EXAMPLES = Path(__file__).resolve().parent / "zoobot29_examples"
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("galaxy_datasets") is None,
    reason="Zoobot's examples need galaxy-datasets (pip install galaxy-datasets)",
)


@pytest.mark.parametrize(
    ("script", "extra", "output"),
    [
        ("finetune_binary_classification.py", [], "finetuned_predictions.csv"),
        ("finetune_counts_full_tree.py", [], "test_predictions.hdf5"),
        ("finetune_multiclass_classification.py", [], "finetuned_predictions.csv"),
        ("finetune_counts_single_question.py", [], "test_predictions.csv"),
        ("get_representations.py", [str(FIXTURES / "zoobot_tree.ckpt")], "representations.hdf5"),
    ],
)
def test_example_runs_unchanged(
    script: str, extra: list[str], output: str, shared_data: Path, tmp_path: Path
) -> None:
    write_hub_cache(tmp_path / "hub", "mwalmsley/zoobot-encoder-convnext_nano")
    save_dir = tmp_path / "out"
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO),
    }
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / script),
            str(shared_data / "gz_decals_rings"),
            str(save_dir),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (save_dir / output).is_file()
