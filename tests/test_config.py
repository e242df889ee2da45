"""Every kind of config error is one line naming the file, the key and what was expected."""

from __future__ import annotations

import pytest

from conftest import tiny, write_toml
from s2s_core.config import load_config, parse_config
from s2s_core.errors import ConfigError
from s2s_core.hooks import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry()


def error_of(data, registry) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "t.toml", registry)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("t.toml: ")
    return message


def test_valid_config_resolves_defaults(registry):
    config = parse_config(tiny(), "t.toml", registry)
    assert config.encoder.params.hidden == 64
    assert config.encoder.params.layers == 1  # default filled in
    assert config.training.hybridize is True
    resolved = config.to_dict()
    assert resolved["model"]["decoder"]["attention_at"] == "output"
    # The resolved dict is itself a valid config that resolves to the same thing.
    assert parse_config(resolved, "again.toml", registry).to_dict() == resolved


@pytest.mark.parametrize("data, expected", [
    (tiny(training={"epochs": "ten"}), "t.toml: training.epochs: expected an integer, got 'ten' (str)"),
    (tiny(training={"epochs": 2.5}), "training.epochs: expected an integer"),
    (tiny(training={"hybridize": 1}), "training.hybridize: expected true or false"),
    (tiny(training={"epochs": True}), "training.epochs: expected an integer"),
    (tiny(task={"digits": "3"}), "task.digits: expected an integer, got '3' (str)"),
    (tiny(model={"encoder": {"hidden": [1]}}), "model.encoder.hidden: expected an integer"),
    (tiny(training={"optimizer_params": 3}), "training.optimizer_params: expected a table"),
])
def test_wrong_type(registry, data, expected):
    assert expected in error_of(data, registry)


@pytest.mark.parametrize("data, expected", [
    (tiny(training={"epochs": 0}), "training.epochs: must be >= 1: 0"),
    (tiny(training={"batch_size": -5}), "training.batch_size: must be >= 1"),
    (tiny(training={"optimizer": "adamx"}), "training.optimizer: must be in"),
    (tiny(task={"digits": 12}), "task.digits: must be <= 9"),
    (tiny(task={"validation_fraction": 1.5}), "task.validation_fraction: must be < 1.0"),
    (tiny(task={"digits": 1, "questions": 500}), "task: questions: 500 is too many for digits = 1"),
    (tiny(model={"decoder": {"attention_at": "middle"}}), "model.decoder.attention_at: must be in"),
    (tiny(training={"optimizer_params": {"learning_rat": 0.1}}),
     "training.optimizer_params: not accepted by optimizer 'adam'"),
    (tiny(training={"optimizer_params": {"learning_rate": [1]}}),
     "training.optimizer_params.learning_rate: expected a number"),
])
def test_bad_value(registry, data, expected):
    assert expected in error_of(data, registry)


@pytest.mark.parametrize("data, expected", [
    (tiny(training={"epoch": 3}), "training.epoch: unknown key (known keys: epochs, batch_size"),
    (tiny(task={"digit": 3}), "task.digit: unknown key (known keys: digits, questions"),
    (tiny(model={"encoder": {"hiden": 3}}), "model.encoder.hiden: unknown key (known keys: hidden"),
    ({**tiny(), "trainer": {}}, "trainer: unknown section"),
    ({k: v for k, v in tiny().items() if k != "task"}, "[task]: missing section"),
])
def test_unknown_or_missing_key(registry, data, expected):
    assert expected in error_of(data, registry)


def test_unknown_plugin_lists_registered_names(registry):
    message = error_of(tiny(model={"encoder": {"type": "transformer"}}), registry)
    assert message == ("t.toml: model.encoder.type: unknown encoder 'transformer' "
                       f"(registered encoders: {', '.join(registry.names('encoder'))})")
    assert "lstm" in message
    assert "registered tasks: addition" in error_of(tiny(task={"type": "nope"}), registry)


def test_attention_none_means_no_attention(registry):
    config = parse_config(tiny(model={"attention": {"type": "none"}}), "t.toml", registry)
    assert config.attention is None
    assert parse_config(tiny(model={"attention": None}), "t.toml", registry).attention is None


def test_file_problems(tmp_path, registry):
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read"):
        load_config(tmp_path / "missing.toml", registry)
    bad = tmp_path / "bad.toml"
    bad.write_text("[task\ntype = 'addition'\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 1"):
        load_config(bad, registry)
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[task]\ntype = 'caf\xe9'\n")
    with pytest.raises(ConfigError, match=r"latin\.toml: not UTF-8 text"):
        load_config(latin, registry)


def test_cli_reports_config_error_in_one_line(cli, tmp_path):
    path = write_toml(tmp_path / "t.toml", tiny(training={"epochs": -1}))
    result = cli("run", path, "--out", tmp_path / "runs")
    assert result.exit_code == 2
    assert result.output == f"error: {path}: training.epochs: must be >= 1: -1\n"
    assert not (tmp_path / "runs").exists()  # nothing written for a bad config


def test_shipped_task_files_are_valid(registry):
    from conftest import ROOT

    files = sorted((ROOT / "tasks").glob("*.toml"))
    assert files
    for path in files:
        load_config(path, registry)
