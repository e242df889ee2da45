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
                      f"greedy decoding of 60 questions; engine threaded; 5 rounds alternating the modes")
    assert columns.split() == ["imperative", "hybridized", "speed-up"]
    assert [row.rsplit(None, 3)[0] for row in rows] == [
        "training samples/s", "training ms/batch", "decoding questions/s"]
    for row in rows:
        imperative, hybridized, speedup = row.rsplit(None, 3)[1:]
        a, b = float(imperative.replace(",", "")), float(hybridized.replace(",", ""))
        assert a > 0 and b > 0
        ratio = a / b if "ms/batch" in row else b / a  # of the rounded figures shown
        assert speedup.endswith("x") and abs(float(speedup[:-1]) - ratio) < 0.02 * ratio + 0.01


def test_bench_measures_the_configured_work_in_both_modes():
    from s2s_core import bench

    config = parse_config(tiny(), "t.toml", Registry())
    timings = bench.compare(config, bench.Settings(train_batches=3, warmup_batches=0, decode_questions=30,
                                                   rounds=2))
    assert [t.mode for t in timings] == ["imperative", "hybridized"]
    for timing in timings:
        assert (timing.batch_size, timing.train_batches, timing.decode_questions) == (32, 3, 30)
        assert timing.train_samples_per_second == 3 * 32 / timing.train_seconds > 0
        assert timing.decode_seconds > 0


def test_rounds_share_the_work_in_whole_decoding_batches():
    from s2s_core.bench import _shares

    assert _shares(10_000, 5, 1000) == [2000] * 5
    assert _shares(2500, 2, 1000) == [1000, 1500]  # the odd rows with the last round
    assert _shares(30, 4) == [8, 8, 7, 7]
    assert _shares(3, 5) == [1, 1, 1]  # fewer batches than rounds
    assert sum(_shares(12_345, 7, 1000)) == 12_345


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



def test_paired_speedup_is_the_median_round_ratio():
    from s2s_core.bench import paired_speedup

    # A round hit by a hiccup (10 s) is outvoted; the total would have said 4.7x.
    assert paired_speedup([2.0, 2.2, 10.0], [1.0, 1.1, 1.0]) == 2.0
    assert paired_speedup([1.0, 1.0], [2.0, 2.0]) == 0.5
