"""The one decoder step: teacher forcing and greedy decoding agree; hybridize changes nothing."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from conftest import tiny
from s2s_core.build import build_model
from s2s_core.config import parse_config
from s2s_core.data import encode_pairs
from s2s_core.hooks import Registry
from s2s_core.search import greedy
from s2s_core.vocab import BOS_ID

ATTENTION_SETUPS = {
    "none": {"attention": None},
    "concat-output": {"attention": {"type": "concat"}},
    "concat-input": {"attention": {"type": "concat"}, "decoder": {"attention_at": "input"}},
    "concat-flatten-input-batchnorm": {"attention": {"type": "concat", "context": "flatten"},
                                       "decoder": {"attention_at": "input", "batch_norm": True}},
    "two-layers-bridge": {"encoder": {"layers": 2, "hidden": 40}, "decoder": {"layers": 1},
                          "attention": {"type": "concat"}},
    "embeddings": {"encoder": {"embedding": 16}, "decoder": {"embedding": 8}},
}


def build(model_overrides, seed=0):
    config = parse_config(tiny(model=model_overrides), "t.toml", Registry())
    task = config.task.build()
    train, _ = task.load_data(0)
    vocabs = task.build_vocabularies(train)
    mx.random.seed(seed)
    model = build_model(config, task, *vocabs)
    model.initialize(mx.init.Xavier())
    data = encode_pairs(task, *vocabs, train[:16])
    return model, data


@pytest.mark.parametrize("name", ATTENTION_SETUPS)
def test_teacher_forcing_and_greedy_share_the_step(name):
    """Feeding greedy's own outputs back as the teacher-forced input reproduces its logits."""
    model, data = build(ATTENTION_SETUPS[name])
    src = nd.array(data.src)
    ids, weights = greedy(model, src)
    tgt_in = nd.concat(nd.full((len(data), 1), BOS_ID), ids[:, :-1], dim=1)
    forced = model(src, tgt_in)
    assert np.array_equal(forced.argmax(axis=2).asnumpy(), ids.asnumpy())
    assert weights.shape == (len(data), model.target_steps, data.src.shape[1])
    if ATTENTION_SETUPS[name].get("attention"):
        sums = weights.asnumpy().sum(axis=2)
        assert np.allclose(sums, 1.0, atol=1e-5)
        # Padding positions get no weight.
        assert np.all(weights.asnumpy()[data.src[:, None, :].repeat(model.target_steps, 1) == 0] < 1e-6)


@pytest.mark.parametrize("name", ATTENTION_SETUPS)
def test_hybridized_gives_the_same_results(name):
    model, data = build(ATTENTION_SETUPS[name])
    src, tgt_in = nd.array(data.src), nd.array(data.tgt_in)
    imperative = model(src, tgt_in).asnumpy()
    imperative_ids = greedy(model, src)[0].asnumpy()
    model.hybridize(static_alloc=True, static_shape=True)
    hybrid = model(src, tgt_in).asnumpy()
    hybrid_ids = greedy(model, src)[0].asnumpy()
    np.testing.assert_allclose(imperative, hybrid, rtol=1e-4, atol=1e-5)
    assert np.array_equal(imperative_ids, hybrid_ids)


def _builtin_combinations() -> dict[str, dict]:
    """Every registered encoder x decoder x attention (and none), each with its defaults."""
    registry = Registry()
    combinations = {}
    for encoder in registry.names("encoder"):
        for decoder in registry.names("decoder"):
            for attention in [*registry.names("attention"), None]:
                name = f"{encoder}-{decoder}-{attention or 'none'}"
                combinations[name] = {"encoder": {"type": encoder}, "decoder": {"type": decoder},
                                      "attention": {"type": attention} if attention else None}
    return combinations


TRAINING_SETUPS = {**_builtin_combinations(), **ATTENTION_SETUPS}


def _train_a_few_steps(model_overrides, hybridize: bool, steps: int = 3):
    from s2s_core.search import decode_arrays
    from s2s_core.train import prepare, train_step

    data = tiny(model=model_overrides, training={"hybridize": hybridize, "batch_size": 16})
    for part, table in model_overrides.items():
        if table is not None and "type" in table:  # another plugin: none of TINY's options
            data["model"][part] = dict(table)
    session = prepare(parse_config(data, "t.toml", Registry()))
    start = {name: p.data().asnumpy() for name, p in session.model.collect_params().items()}
    losses = [train_step(session, np.arange(16 * k, 16 * (k + 1)))[0].asscalar() for k in range(steps)]
    ids, weights = decode_arrays(session.model, session.valid_data.src[:40], session.ctx, 40)
    return list(start.values()), losses, ids, weights


@pytest.mark.parametrize("name", TRAINING_SETUPS)
def test_training_hybridized_gives_the_same_results(name):
    """From the same initial parameters, a few optimizer steps give the same losses and
    the trained models the same greedy decodes, imperatively and hybridized."""
    start_a, losses_a, ids_a, weights_a = _train_a_few_steps(TRAINING_SETUPS[name], hybridize=False)
    start_b, losses_b, ids_b, weights_b = _train_a_few_steps(TRAINING_SETUPS[name], hybridize=True)
    assert all(np.array_equal(a, b) for a, b in zip(start_a, start_b))
    np.testing.assert_allclose(losses_a, losses_b, rtol=1e-4)
    assert losses_a[-1] < losses_a[0]  # it did train
    assert np.array_equal(ids_a, ids_b)
    np.testing.assert_allclose(weights_a, weights_b, rtol=1e-3, atol=1e-5)
