from pathlib import Path

import pytest

from prioritiser.config import PrioritiserSettings, describe_settings, load_config
from prioritiser.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config.example.toml"


def test_the_deploy_example_configuration_loads():
    config = load_config(EXAMPLE, env={})
    assert config.sync.project_id == 5733 and config.sync.dry_run is True
    assert config.prioritiser.n_models == 3


def test_every_setting_is_documented_and_in_the_example():
    described = describe_settings()
    assert all(entry["help"] for entry in described)
    example = EXAMPLE.read_text()
    assert all(f"\n{entry['name']} = " in example for entry in described)


def test_precedence_is_defaults_then_file_then_environment_then_flags(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[prioritiser]\nn_models = 4\nseed = 3\npush_size = 7\n")
    config = load_config(
        path, env={"ZOO_SEED": "5", "ZOO_PUSH_SIZE": "9"}, overrides={"push_size": 11}
    )
    assert config.prioritiser.n_models == 4
    assert config.prioritiser.seed == 5
    assert config.prioritiser.push_size == 11
    assert config.prioritiser.batch_size == PrioritiserSettings().batch_size


def test_bad_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "missing.toml", env={})
    path = tmp_path / "c.toml"
    path.write_text("[prioritiser]\nn_modles = 4\n")
    with pytest.raises(ConfigError, match="n_modles"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="ZOO_N_MODELS"):
        load_config(None, env={"ZOO_N_MODELS": "three"})
    with pytest.raises(ConfigError, match="precision must be one of"):
        load_config(None, env={"ZOO_PRECISION": "fp8"})
    with pytest.raises(ConfigError, match="question_weighting must be one of"):
        load_config(None, env={"ZOO_QUESTION_WEIGHTING": "deepest"})
    with pytest.raises(ConfigError, match="acquisition must be one of"):
        load_config(None, env={"ZOO_ACQUISITION": "epig"})
