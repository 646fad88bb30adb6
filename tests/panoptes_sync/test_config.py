"""Settings: precedence, types, env-only credentials, and every setting documented on the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from panoptes_sync.cli import COMMANDS, build_parser, main
from panoptes_sync.config import (
    SECRET_SETTINGS,
    Settings,
    describe_settings,
    load_settings,
    setting_names,
)
from panoptes_sync.errors import ConfigError


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zoo.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.database_url == "sqlite:///zoo.sqlite3"
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.page_size = 5  # type: ignore[misc]


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path,
        '[panoptes_sync]\npage_size = 50\nworkflow_id = 1\nschema = "gz2"\ndry_run = true\n',
    )
    env = {"ZOO_PAGE_SIZE": "60", "ZOO_WORKFLOW_ID": "2", "ZOO_DRY_RUN": "false"}
    settings = load_settings(config, env, {"page_size": 70, "workflow_id": None})
    assert (settings.page_size, settings.workflow_id, settings.schema) == (70, 2, "gz2")
    assert settings.dry_run is False
    assert load_settings(config, {}).page_size == 50


def test_top_level_toml_keys_work(tmp_path: Path) -> None:
    assert load_settings(write_toml(tmp_path, "project_id = 5733\n")).project_id == 5733


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 'red'\n", "unknown setting 'colour'"),
        ("page_size = 'many'\n", "page_size"),
        ("page_size = 500\n", "1..100"),
        ("panoptes_password = 'x'\n", "credentials come only from"),
        ("page_size = \n", "not valid TOML"),
        ("log_level = 'LOUD'\n", "log_level"),
    ],
)
def test_bad_config_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_toml(tmp_path, text))


def test_missing_config_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ZOO_CONFIG"):
        load_settings(tmp_path / "absent.toml")


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ZOO_MAX_RETRIES"):
        load_settings(env={"ZOO_MAX_RETRIES": "lots"})


def test_credentials_from_env_only_and_never_shown() -> None:
    settings = load_settings(
        env={"ZOO_PANOPTES_USERNAME": "owner", "ZOO_PANOPTES_PASSWORD": "hunter2"}
    )
    assert (settings.panoptes_username, settings.panoptes_password) == ("owner", "hunter2")
    assert "hunter2" not in repr(settings) and "owner" not in repr(settings)
    assert all(d["default"] is None for d in describe_settings() if d["secret"])
    with pytest.raises(ConfigError, match="ZOO_PANOPTES_PASSWORD"):
        load_settings(overrides={"panoptes_password": "x"})


def test_every_setting_is_documented() -> None:
    described = {d["name"]: d for d in describe_settings()}
    assert list(described) == setting_names()
    for name, description in described.items():
        assert len(description["help"]) > 20, f"setting {name} has no help text"
        assert description["env"] == f"ZOO_{name.upper()}"
    parser = build_parser()
    for name in COMMANDS:
        help_text = parser._subparsers._group_actions[0].choices[name].format_help()  # noqa: SLF001
        for setting in setting_names():
            flag = "--" + setting.replace("_", "-")
            assert (flag in help_text) is (setting not in SECRET_SETTINGS), (name, flag)


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert name in text
        assert main([name, "--help"]) == 0
        assert "usage:" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["no-such-command"]) == 2
    assert main(["status", "--page-size", "lots"]) == 2
    assert main(["status", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[panoptes-sync]\npage_size = 5\n", r"unknown table \[panoptes-sync\].*\[panoptes_sync\]"),
        ("[panoptes_sync]\npage_sise = 5\n", "did you mean 'page_size'"),
        ("page_size = 5\n[panoptes_sync]\nproject_id = 1\n", "outside any table"),
        ("[panoptes_sync]\nmax_retries = -1\n", "max_retries must be >= 0, got -1"),
        ("[panoptes_sync]\nrequest_timeout_s = 0\n", "request_timeout_s must be > 0"),
        ("[panoptes_sync]\nworkflow_id = 0\n", "workflow_id must be >= 1"),
    ],
)
def test_misspelt_tables_and_keys_and_ranges_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write_toml(tmp_path, text))


def test_the_daemon_table_is_not_an_unknown_one(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[panoptes_sync]\nproject_id = 7\n[prioritiser]\nn_models = 3\n")
    assert load_settings(path).project_id == 7


def test_an_empty_variable_is_unset() -> None:
    assert load_settings(env={"ZOO_PAGE_SIZE": "", "ZOO_WORKFLOW_ID": ""}) == Settings()


def test_a_misspelt_flag_override_names_the_closest() -> None:
    with pytest.raises(ConfigError, match="did you mean 'page_size'"):
        load_settings(overrides={"page_sise": 5})
