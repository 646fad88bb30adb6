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


def test_a_misspelt_table_is_refused_naming_the_closest(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[prioritizer]\nn_models = 4\n")
    with pytest.raises(
        ConfigError, match=r"unknown table \[prioritizer\].*did you mean \[prioritiser\]"
    ):
        load_config(path, env={})


def test_a_misspelt_key_names_the_closest_setting(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[prioritiser]\nn_modles = 4\n")
    with pytest.raises(ConfigError, match="did you mean 'n_models'"):
        load_config(path, env={})
    with pytest.raises(ConfigError, match="did you mean 'push_size'"):
        load_config(None, env={}, overrides={"push_sise": 3})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("push_size = -5", r"push_size must be >= 1, got -5 \(from .*c.toml \[prioritiser\]\)"),
        ("n_models = 0", "n_models must be >= 1, got 0"),
        ("validation_fraction = 1.0", r"validation_fraction must be in \(0, 1\)"),
        ("learning_rate = 0.0", "learning_rate must be > 0"),
        ("random_control_fraction = 1.5", "random_control_fraction must be in 0..1"),
    ],
)
def test_numeric_settings_are_range_checked(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(f"[prioritiser]\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path, env={})


def test_ranges_apply_to_the_environment_and_flags_too():
    with pytest.raises(ConfigError, match=r"push_size must be >= 1, got -5 \(from ZOO_PUSH_SIZE\)"):
        load_config(None, env={"ZOO_PUSH_SIZE": "-5"})
    with pytest.raises(ConfigError, match="the command line"):
        load_config(None, env={}, overrides={"n_models": 0})
    with pytest.raises(ConfigError, match="page_size must be in 1..100"):
        load_config(None, env={}, sync_overrides={"page_size": 0})


def test_an_empty_variable_is_unset_in_both_tables():
    config = load_config(None, env={"ZOO_N_MODELS": "", "ZOO_PAGE_SIZE": "", "ZOO_SCHEMA": ""})
    assert config.prioritiser.n_models == PrioritiserSettings().n_models
    assert config.sync.page_size == 100 and config.sync.schema is None


def test_one_config_error(tmp_path):
    from panoptes_sync.errors import ConfigError as SettingsError

    assert ConfigError is SettingsError
    path = tmp_path / "c.toml"
    path.write_text("[panoptes_sync]\npage_sise = 4\n")
    with pytest.raises(ConfigError, match="did you mean 'page_size'"):
        load_config(path, env={})
    with pytest.raises(SettingsError):
        load_config(path, env={})


def test_precision_defaults_to_auto_and_the_example_uses_it():
    assert PrioritiserSettings().precision == "auto"
    assert load_config(EXAMPLE, env={}).prioritiser.precision == "auto"
    assert not any(
        entry["name"] == "precision" and entry["allowed"] is None for entry in describe_settings()
    )
