"""``hf_hub:`` encoders load offline from a Hugging Face cache laid out exactly as the hub does.

The cache holds a tiny timm model in Zoobot's encoder repository layout (``config.json`` and
``model.safetensors`` as timm's ``push_to_hf_hub`` writes them, the files of
``mwalmsley/zoobot-encoder-*``). The load runs in a fresh interpreter with ``HF_HUB_OFFLINE=1``
and ``HF_HOME``/``HF_HUB_CACHE`` on the temp dir (huggingface_hub reads them at import), through
``zoobot.models.create_encoder``: the real online path, with no network.
"""

import os
import subprocess
import sys

import timm
from timm.models import save_for_hf

from tests.zoobot.hub_cache import lay_out_hub_cache

REPO_ID = "mwalmsley/zoobot-encoder-test_resnet"


LOAD = f"""
import sys
import torch
from safetensors.torch import load_file
from zoobot.models import create_encoder

encoder = create_encoder("hf_hub:{REPO_ID}")
expected = load_file(sys.argv[1])
state = encoder.state_dict()
assert set(state) == set(expected), sorted(set(state) ^ set(expected))[:5]
assert all(torch.equal(state[k], expected[k]) for k in expected), "weights differ"
print(encoder.num_features)
"""


def test_an_hf_hub_encoder_loads_offline_from_a_hub_shaped_cache(tmp_path):
    source = tmp_path / "repo"
    model = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    save_for_hf(model, str(source), safe_serialization=True)
    assert sorted(p.name for p in source.iterdir()) == ["config.json", "model.safetensors"]
    home = tmp_path / "hf"
    lay_out_hub_cache(home / "hub", REPO_ID, {p.name: p for p in source.iterdir()})
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(home / "hub"),
    }
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(source / "model.safetensors")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) == model.num_features
