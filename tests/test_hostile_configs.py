"""Hostile task files: every one is a valid config or one ConfigError line, never a traceback.

Property-based (hypothesis) over random TOML documents, mutations of the shipped task
files and raw bytes, checked in-process on ``load_config``; a handful also through the
``s2s run`` command.
"""

from __future__ import annotations

import copy
import math
import tomllib

import pytest
import tomli_w
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import ROOT, run_s2s, tiny, write_toml
from s2s_core.config import Config, load_config
from s2s_core.errors import ConfigError
from s2s_core.hooks import Registry

SHIPPED = sorted((ROOT / "tasks").glob("*.toml"))
KNOWN_KEYS = ["task", "model", "training", "type", "encoder", "decoder", "attention", "digits",
              "questions", "validation_fraction", "reverse", "hidden", "layers", "embedding",
              "dropout", "attention_at", "batch_norm", "context", "epochs", "batch_size",
              "optimizer", "optimizer_params", "learning_rate", "lr_decay", "initializer",
              "initializer_params", "seed", "hybridize", "engine", "clip_gradient",
              "sample_every", "samples", "magnitude", "rnd_type", "factor_type", "momentum",
              "wd", "beta1", "epsilon", "rescale_grad", "lr_scheduler", "param_idx2name", "sym"]
PLUGIN_NAMES = ["addition", "lstm", "concat", "none", "transformer", "", "ADDITION", "lstm "]


def keys():
    return st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=12))


def scalars():
    return st.one_of(
        st.booleans(),
        st.integers(min_value=-2**63, max_value=2**63 - 1),
        st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63 - 1, -2**63, 10**6, 10**7 + 1]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, -0.0, 1e-300, 1e300, float("inf"), float("-inf"), float("nan")]),
        st.text(max_size=20),
        st.sampled_from(PLUGIN_NAMES + KNOWN_KEYS),
        st.datetimes(),
        st.dates(),
        st.times(),
    )


def toml_values():
    return st.recursive(scalars(), lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(keys(), inner, max_size=5)), max_leaves=20)


def documents():
    """Random TOML documents, biased towards the shape of a task file."""
    section = st.dictionaries(keys(), toml_values(), max_size=6)
    return st.fixed_dictionaries({}, optional={
        "task": st.one_of(section, toml_values()),
        "model": st.one_of(st.fixed_dictionaries({}, optional={
            "encoder": st.one_of(section, toml_values()),
            "decoder": st.one_of(section, toml_values()),
            "attention": st.one_of(section, toml_values())}), toml_values()),
        "training": st.one_of(section, toml_values()),
    }) | st.dictionaries(keys(), toml_values(), max_size=4)


def _paths(table: dict, prefix=()):
    for key, value in table.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _paths(value, prefix + (key,))


@st.composite
def mutated_task_files(draw):
    """A shipped task file (or TINY) with a few keys replaced, deleted or added."""
    base = draw(st.sampled_from([tomllib.loads(p.read_text()) for p in SHIPPED] + [tiny()]))
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add", "plugin"]))
        if action == "replace":
            parent[path[-1]] = draw(toml_values())
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add":
            parent[draw(keys())] = draw(toml_values())
        elif isinstance(parent.get("type", None), str):
            parent["type"] = draw(st.sampled_from(PLUGIN_NAMES) | st.text(max_size=8))
    return data


@st.composite
def mangled_bytes(draw):
    """A shipped task file's bytes with some bytes overwritten, inserted or cut."""
    raw = bytearray(draw(st.sampled_from(SHIPPED)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["overwrite", "insert", "cut"]))
        chunk = draw(st.binary(min_size=1, max_size=6))
        if action == "overwrite":
            raw[at:at + len(chunk)] = chunk
        elif action == "insert":
            raw[at:at] = chunk
        else:
            del raw[at:at + len(chunk)]
    return bytes(raw)


@pytest.fixture(scope="module")
def registry():
    return Registry()


def check_one_line_or_valid(path, registry) -> Config | None:
    """The property: a valid Config, or a ConfigError of one line naming the file."""
    try:
        config = load_config(path, registry)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message, message
        assert message.startswith(f"{path}: "), message
        event("config error")
        return None
    event("valid config")
    return config


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(data=documents())
def test_random_toml_documents(data, registry, tmp_path_factory):
    path = tmp_path_factory.mktemp("doc") / "task.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    check_one_line_or_valid(path, registry)


@SETTINGS
@given(data=mutated_task_files())
def test_mutated_task_files(data, registry, tmp_path_factory):
    path = tmp_path_factory.mktemp("mut") / "task.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    config = check_one_line_or_valid(path, registry)
    if config is not None:  # a valid config's resolved form is valid and resolves the same
        again = write_toml(path.with_name("again.toml"), config.to_dict())
        assert load_config(again, registry).to_dict() == config.to_dict()


@SETTINGS
@given(raw=mangled_bytes() | st.binary(max_size=200))
def test_mangled_and_random_bytes(raw, registry, tmp_path_factory):
    path = tmp_path_factory.mktemp("raw") / "task.toml"
    path.write_bytes(raw)
    check_one_line_or_valid(path, registry)


HOSTILE = [
    b"\xff\xfe[task]\n",  # not UTF-8
    b"[task]\ntype = 'addition'\n[model]\nencoder = 3\n",
    tomli_w.dumps(tiny(training={"epochs": 2**63 - 1})).encode(),
    tomli_w.dumps(tiny(training={"batch_size": -1})).encode(),
    tomli_w.dumps(tiny(model={"encoder": {"type": "transformer"}})).encode(),
    tomli_w.dumps({"task": {"type": "addition", "digits": 2, "questions": 300}}).encode(),
    "[task]\n\"ty\\npe\" = 1\n".encode(),  # a key with a newline in it
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_files_through_the_cli_are_one_line(raw, cli, tmp_path):
    path = tmp_path / "task.toml"
    path.write_bytes(raw)
    result = cli("run", path, "--out", tmp_path / "runs")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {path}: ") and result.output.count("\n") == 1, result.output
    assert not (tmp_path / "runs").exists()


def test_hostile_file_as_a_real_process(tmp_path):
    path = tmp_path / "task.toml"
    path.write_bytes(b"[task]\ntype = 'addition'\ndigits = 1e400\n")
    proc = run_s2s("run", path, "--out", tmp_path / "runs")
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: {path}: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_nan_and_inf_are_refused_where_a_number_is_expected(registry, tmp_path):
    for value in (math.inf, -math.inf, math.nan):
        path = write_toml(tmp_path / "t.toml", tiny(training={"lr_decay": value}))
        with pytest.raises(ConfigError, match="training.lr_decay: expected a finite number"):
            load_config(path, registry)


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")  # magnitude -1
@pytest.mark.parametrize("training, expected", [
    ({"optimizer_params": {"beta1": "abc"}}, "training.optimizer_params: optimizer 'adam' cannot update with them"),
    ({"optimizer_params": {"lazy_update": "no"}}, "training.optimizer_params: optimizer 'adam' cannot update"),
    ({"optimizer_params": {"begin_num_update": -5}}, "cannot update with them: math domain error"),
    ({"optimizer": "sgd", "optimizer_params": {"momentum": "x"}}, "optimizer 'sgd' cannot update with them"),
    ({"initializer_params": {"magnitude": -1}}, "training.initializer_params: initializer 'xavier' fails"),
    ({"initializer_params": {"rnd_type": "foo"}}, "initializer 'xavier' fails with them: Unknown random type"),
    ({"initializer": "orthogonal", "initializer_params": {"rand_type": "x"}}, "initializer 'orthogonal' fails"),
])
def test_parameters_mxnet_only_rejects_when_used_are_config_errors_before_training(training, expected, registry):
    """optimizer_params and initializer_params pass through to MXNet, which accepts many
    wrong values when the object is made and fails only when it is used: prepare() uses
    both once, before any run directory exists."""
    from s2s_core.config import parse_config
    from s2s_core.train import prepare

    config = parse_config(tiny(task={"questions": 200}, training=training), "t.toml", registry)
    with pytest.raises(ConfigError) as info:
        prepare(config)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_task_with_no_training_examples_is_a_config_error(registry):
    from s2s_core.config import parse_config
    from s2s_core.train import prepare

    config = parse_config(tiny(task={"questions": 3, "validation_fraction": 0.9}), "t.toml", registry)
    with pytest.raises(ConfigError, match=r"t\.toml: task: 0 training and 3 validation examples"):
        prepare(config)
