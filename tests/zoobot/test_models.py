import time

import pytest
import torch
from safetensors.torch import save_file

from zoobot.errors import CheckpointNotFoundError, EncoderNotFoundError, HubUnavailableError
from zoobot.models import create_encoder, get_encoder_blocks, load_encoder_state

from .conftest import TINY_ENCODER


def test_timm_architecture_gives_a_pooled_feature_encoder():
    encoder = create_encoder(TINY_ENCODER)
    features = encoder(torch.rand(2, 3, 32, 32))
    assert features.shape == (2, encoder.num_features)


def test_greyscale_encoder_takes_one_channel():
    encoder = create_encoder(TINY_ENCODER, channels=1).eval()
    assert encoder(torch.rand(1, 1, 32, 32)).shape[0] == 1


def test_blocks_run_from_stem_to_top_and_cover_the_encoder():
    encoder = create_encoder(TINY_ENCODER)
    blocks = get_encoder_blocks(encoder)
    assert len(blocks) >= 3
    assert any(module is blocks[0][0] for module in next(encoder.children()).modules())
    in_blocks = {id(p) for block in blocks for p in block.parameters()}
    assert in_blocks == {id(p) for p in encoder.parameters()}


def test_hub_name_offline_fails_fast_with_instructions():
    start = time.monotonic()
    with pytest.raises(HubUnavailableError, match="huggingface-cli download"):
        create_encoder("hf_hub:mwalmsley/zoobot-encoder-convnext_nano")
    assert time.monotonic() - start < 60


def test_unknown_name_names_the_alternatives():
    with pytest.raises(EncoderNotFoundError, match="list_pretrained"):
        create_encoder("not_a_real_architecture")


def test_safetensors_weights_round_trip(tmp_path):
    source = create_encoder(TINY_ENCODER)
    path = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = create_encoder(TINY_ENCODER, weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_missing_or_mismatched_weights_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="no encoder weights"):
        create_encoder(TINY_ENCODER, weights=tmp_path / "absent.safetensors")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"something.weight": torch.zeros(2)}, str(wrong))
    with pytest.raises(EncoderNotFoundError, match="same architecture"):
        load_encoder_state(create_encoder(TINY_ENCODER), wrong)
