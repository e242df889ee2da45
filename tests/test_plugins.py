"""The plugin manager: names, clashes, and a plugin registered from a test module."""

from __future__ import annotations

import types

import attrs
import pytest

from conftest import tiny
from s2s_core.config import parse_config
from s2s_core.errors import PluginError
from s2s_core.hooks import Registry, hookimpl, make_plugin_manager
from s2s_core.interfaces import Task
from s2s_core.train import Console, train


def test_builtins_come_through_the_entry_point_group():
    registry = Registry()
    entries = {e.name: e for e in registry.entries("encoder")}
    assert entries["lstm"].distribution.startswith("s2s ")
    assert registry.names("task") == ["addition"] or "addition" in registry.names("task")
    assert "concat" in registry.names("attention")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(PluginError, match=r"unknown decoder 'gpt' \(registered decoders: .*lstm"):
        Registry().get("decoder", "gpt")


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    class Impostor:
        @hookimpl
        def s2s_encoders(self):
            return {"lstm": object}

    pm = make_plugin_manager()
    pm.register(Impostor(), name="impostor")
    with pytest.raises(PluginError, match=r"encoder 'lstm' is registered twice: by plugin 'lstm' "
                                          r"and by plugin 'impostor'"):
        Registry(pm)


@attrs.define
class EchoParams:
    length: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    questions: int = 1500


class EchoTask(Task):
    """Copy a string of digits: a task that only this test module knows."""

    Params = EchoParams
    primary_metric = "exact_match"

    @property
    def max_source_length(self):
        return self.options.length

    @property
    def max_target_length(self):
        return self.options.length

    def load_data(self, seed):
        import random

        rng = random.Random(seed)
        words = ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, self.options.length)))
                 for _ in range(self.options.questions)]
        pairs = [(w, w) for w in words]
        return pairs[:-200], pairs[-200:]


echo_plugin = types.SimpleNamespace(s2s_tasks=hookimpl(lambda: {"echo": EchoTask}))


def test_a_plugin_from_a_test_module_is_used_by_a_run(tmp_path):
    registry = Registry(make_plugin_manager([echo_plugin]))
    assert "echo" in registry.names("task")
    data = tiny(task={"type": "echo", "length": 3}, training={"epochs": 6})
    data["task"] = {"type": "echo", "length": 3}
    config = parse_config(data, "echo.toml", registry)
    assert isinstance(config.task.params, EchoParams)
    result = train(config, tmp_path, Console(quiet=True))
    # Copying 1-3 digits by chance would be right ~0.1% of the time.
    assert result.best["exact_match"] > 0.5
    assert (result.run_dir / "config.toml").read_text().count('type = "echo"') == 1


def test_plugin_params_are_checked_like_builtin_ones():
    registry = Registry(make_plugin_manager([echo_plugin]))
    data = tiny()
    data["task"] = {"type": "echo", "length": 0}
    with pytest.raises(Exception, match=r"e\.toml: task\.length: must be >= 1: 0"):
        parse_config(data, "e.toml", registry)
    data["task"] = {"type": "echo", "colour": "red"}
    with pytest.raises(Exception, match=r"task\.colour: unknown key \(known keys: length, questions\)"):
        parse_config(data, "e.toml", registry)


def test_plugins_command_lists_every_kind(cli):
    result = cli("plugins")
    assert result.exit_code == 0
    for line in ("tasks:", "encoders:", "decoders:", "attentions:", "addition", "concat"):
        assert line in result.output


def test_plugin_modules_named_in_the_environment_are_registered(monkeypatch):
    from conftest import ROOT

    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    monkeypatch.setenv("S2S_PLUGINS", " broken_plugins , ")
    assert "shape_bug" in Registry().names("encoder")
    monkeypatch.setenv("S2S_PLUGINS", "no_such_plugin_module")
    with pytest.raises(PluginError, match=r"^S2S_PLUGINS: cannot import plugin module 'no_such_plugin_module': "
                                          r"No module named 'no_such_plugin_module'$"):
        Registry()
