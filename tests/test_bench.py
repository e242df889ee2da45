"""`s2s bench` and the seed's exact model (tasks/addition_seed.toml)."""

from __future__ import annotations

import numpy as np
from mxnet import nd

from conftest import ROOT, tiny
from s2s_core.config import load_config, parse_config, read_toml
from s2s_core.hooks import Registry


def test_bench_prints_both_modes_and_the_speedups(cli, config_file):
    path = config_file(tiny())
    result = cli("bench", path, "--batches", "3", "--warmup", "1", "--questions", "60")
    assert result.exit_code == 0, result.output
    header, columns, *rows = result.stdout.splitlines()
    assert header == (f"{path}: batch 32, 3 timed training batches after 1 warm-up; "
                      f"greedy decoding of 60 questions; engine threaded")
    assert columns.split() == ["imperative", "hybridized", "speed-up"]
    assert [row.rsplit(None, 3)[0] for row in rows] == [
        "training samples/s", "training ms/batch", "decoding questions/s"]
    for row in rows:
        imperative, hybridized, speedup = row.rsplit(None, 3)[1:]
        a, b = float(imperative.replace(",", "")), float(hybridized.replace(",", ""))
        assert a > 0 and b > 0
        ratio = a / b if "ms/batch" in row else b / a  # of the rounded figures shown
        assert speedup.endswith("x") and abs(float(speedup[:-1]) - ratio) < 0.02 * ratio + 0.01


def test_bench_measures_the_configured_batches():
    from s2s_core import bench

    config = parse_config(tiny(), "t.toml", Registry())
    timing = bench.measure(config, hybridize=True, settings=bench.Settings(2, 0, 30))
    assert (timing.mode, timing.batch_size, timing.train_batches, timing.decode_questions) == (
        "hybridized", 32, 2, 30)
    assert timing.train_samples_per_second == 2 * 32 / timing.train_seconds


def test_the_seed_model_is_post_2s_setup():
    """One-hot inputs, length 9 in and out, LSTM 300, the concat attention over the
    flattened weighted outputs, BatchNorm, RMSProp defaults, Xavier, batch 256, 50,000
    questions split 90/10; it trains a step and decodes."""
    from s2s_core.search import greedy
    from s2s_core.train import prepare, train_step

    config = load_config(ROOT / "tasks" / "addition_seed.toml")
    task = config.task.build()
    assert (task.max_source_length, task.max_target_length + 1) == (9, 9)
    assert (config.task.params.questions, config.task.params.validation_fraction) == (50_000, 0.1)
    assert (config.training.batch_size, config.training.optimizer, config.training.optimizer_params,
            config.training.initializer) == (256, "rmsprop", {}, "xavier")
    # The same model on a few questions, to keep the test fast.
    data = read_toml(ROOT / "tasks" / "addition_seed.toml")
    data["task"]["questions"] = 600
    data["training"]["batch_size"] = 8
    session = prepare(parse_config(data, "seed.toml", Registry()))
    model = session.model
    assert model.encoder.embed is None and model.decoder.embed is None  # one-hot
    assert model.encoder.rnn.hidden == 300 and model.decoder.rnn.hidden == 300
    assert model.decoder.output_layer.norm is not None and model.decoder.attention_at == "input"
    assert model.decoder.attention.context_size == 9 * 300  # flattened
    loss, _ = train_step(session, np.arange(8))
    assert np.isfinite(loss.asscalar())
    ids, weights = greedy(model, nd.array(session.valid_data.src[:5]))
    assert ids.shape == (5, 9) and weights.shape == (5, 9, 9)

