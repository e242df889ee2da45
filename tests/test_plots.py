"""Attention heatmaps and the training-history plot."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny
from s2s_core.config import parse_config
from s2s_core.errors import InputError, S2SError
from s2s_core.hooks import Registry
from s2s_core.plots import HISTORY, attention_map, default_attention_path
from s2s_core.predict import predict
from s2s_core.rundir import load_run
from s2s_core.train import Console, train

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_attention_map_keeps_output_rows_and_source_columns(trained_run):
    run = load_run(trained_run.run_dir)
    amap = attention_map(run, "90+9")
    answer = predict(run, ["90+9"])[0]
    assert amap.output == answer.output
    assert amap.output_tokens == list(answer.output)  # the end step is left out
    assert amap.source_tokens == list("9+09")  # TINY reads the question reversed
    assert amap.reordered
    assert amap.weights.shape == (len(amap.output_tokens), 4)
    np.testing.assert_allclose(amap.weights, answer.weights[:-1])
    # Source padding took no weight, so each output row sums to 1 over the kept columns.
    np.testing.assert_allclose(amap.weights.sum(axis=1), 1.0, atol=1e-5)


def test_attention_command_writes_a_png_into_the_run_directory(trained_run, cli, tmp_path):
    result = cli("attention", trained_run.run_dir, "90 + 9")
    assert result.exit_code == 0, result.output
    path = default_attention_path(trained_run.run_dir, "90 + 9")
    assert path.name == "attention-90_+_9.png"
    assert result.stdout == f"{path}\n"
    width, height = png_size(path)
    assert width > 200 and height > 150
    assert not list(trained_run.run_dir.glob("*.tmp"))
    chosen = tmp_path / "heat.png"
    result = cli("attention", trained_run.run_dir, "1+1", "-o", chosen)
    assert result.exit_code == 0 and result.stdout == f"{chosen}\n"
    png_size(chosen)


@pytest.mark.parametrize("text, message", [
    ("1+", "error: '1+': expected a+b with operands of 1 to 2 digits"),
    ("x+1", "error: 'x+1': not in the vocabulary: 'x'"),
])
def test_attention_on_bad_input_is_one_line(trained_run, cli, text, message):
    result = cli("attention", trained_run.run_dir, text)
    assert result.exit_code == 2
    assert result.output == message + "\n"


def test_attention_on_a_broken_run_directory_is_one_line(trained_run, cli, tmp_path):
    result = cli("attention", tmp_path / "missing", "1+1")
    assert (result.exit_code, result.output) == (2, f"error: {tmp_path / 'missing'}: not a run directory\n")
    unwritable = tmp_path / "no" / "such" / "dir" / "x.png"
    result = cli("attention", trained_run.run_dir, "1+1", "-o", unwritable)
    assert result.exit_code == 2
    assert result.output == f"error: {unwritable}: cannot write: No such file or directory\n"


def test_attention_of_a_model_without_attention_is_one_line(cli, tmp_path):
    config = parse_config(tiny(model={"attention": None}, training={"epochs": 1}), "t.toml", Registry())
    run_dir = train(config, tmp_path, Console(quiet=True)).run_dir
    with pytest.raises(S2SError, match="this model has no attention"):
        attention_map(load_run(run_dir), "1+1")
    result = cli("attention", run_dir, "1+1")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {run_dir}: this model has no attention")
    assert len(result.output.splitlines()) == 1


def test_bad_input_from_python_raises_input_error(trained_run):
    with pytest.raises(InputError):
        attention_map(load_run(trained_run.run_dir), "1++1")


def test_every_run_directory_has_a_history_plot(trained_run):
    width, height = png_size(trained_run.run_dir / HISTORY)
    assert width > 600 and height > 200
