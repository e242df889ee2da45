"""The one decoder step: teacher forcing and greedy decoding agree; hybridize changes nothing."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon, nd

from conftest import tiny
from s2s_core.build import build_model
from s2s_core.config import parse_config
from s2s_core.data import encode_pairs
from s2s_core.errors import ConfigError
from s2s_core.hooks import Registry
from s2s_core.model import TeacherForcedLoss
from s2s_core.search import beam_search, greedy
from s2s_core.vocab import BOS_ID, EOS_ID

ATTENTION_SETUPS = {
    "none": {"attention": None},
    "concat-output": {"attention": {"type": "concat"}},
    "concat-input": {"attention": {"type": "concat"}, "decoder": {"attention_at": "input"}},
    "concat-flatten-input-batchnorm": {"attention": {"type": "concat", "context": "flatten"},
                                       "decoder": {"attention_at": "input", "batch_norm": True}},
    "two-layers-bridge": {"encoder": {"layers": 2, "hidden": 40}, "decoder": {"layers": 1},
                          "attention": {"type": "concat"}},
    "embeddings": {"encoder": {"embedding": 16}, "decoder": {"embedding": 8}},
    "gru-input-additive": {"encoder": {"type": "gru"}, "decoder": {"type": "gru", "attention_at": "input"},
                           "attention": {"type": "additive", "units": 12}},
    "bi-lstm-2-layers-bridge-gru-general": {
        "encoder": {"type": "lstm", "hidden": 24, "layers": 2, "bidirectional": True},
        "decoder": {"type": "gru", "attention_at": "input"}, "attention": {"type": "general"}},
    "gru-to-lstm-dot": {"encoder": {"type": "gru"}, "attention": {"type": "dot"}},
}


def through_the_end(ids: np.ndarray) -> np.ndarray:
    """(N, Lt) bool: the steps up to and including each row's first end token."""
    ends = ids == EOS_ID
    return np.cumsum(ends, axis=1) - ends == 0


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
    kept = through_the_end(ids.asnumpy())  # after its end token a row is padding
    assert np.array_equal(forced.argmax(axis=2).asnumpy()[kept], ids.asnumpy()[kept])
    assert not ids.asnumpy()[~kept].any() and not weights.asnumpy()[~kept].any()
    assert weights.shape == (len(data), model.target_steps, data.src.shape[1])
    if ATTENTION_SETUPS[name].get("attention"):
        sums = weights.asnumpy().sum(axis=2)[kept]
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


# Every encoder x decoder x attention; tiny sizes, with states copied (encoder states as
# wide as the decoder's) and dot attention possible (outputs as wide as the query).
ENCODERS = {
    "lstm": {"type": "lstm", "hidden": 16},
    "gru": {"type": "gru", "hidden": 16},
    "bi-lstm": {"type": "lstm", "hidden": 8, "bidirectional": True},
    "bi-gru": {"type": "gru", "hidden": 8, "bidirectional": True},
}
DECODERS = {"lstm": {"type": "lstm", "hidden": 16}, "gru": {"type": "gru", "hidden": 16}}
ATTENTIONS = {"none": None, "concat": {"type": "concat"}, "dot": {"type": "dot"},
              "general": {"type": "general"}, "additive": {"type": "additive"}}


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("decoder", DECODERS)
@pytest.mark.parametrize("encoder", ENCODERS)
def test_every_combination_trains_and_hybridizes_to_the_same_results(encoder, decoder, attention):
    model, data = build({"encoder": ENCODERS[encoder], "decoder": DECODERS[decoder],
                         "attention": ATTENTIONS[attention]})
    src, tgt_in, tgt_out = (nd.array(a) for a in (data.src, data.tgt_in, data.tgt_out))
    loss = TeacherForcedLoss(model)
    trainer = gluon.Trainer(model.collect_params(), "adam", {"learning_rate": 0.02})

    def train_steps(count):
        losses = []
        for _ in range(count):
            with autograd.record():
                value = loss(src, tgt_in, tgt_out)
            value.backward()
            trainer.step(len(data))
            losses.append(value.asscalar())
        return losses

    def outputs():
        ids, weights, scores = beam_search(model, src, 3)
        return [loss(src, tgt_in, tgt_out), model(src, tgt_in), greedy(model, src)[0], ids, weights, scores]

    imperative_losses = train_steps(3)
    imperative = [a.asnumpy() for a in outputs()]
    loss.hybridize(static_alloc=True, static_shape=True)
    hybrid = [a.asnumpy() for a in outputs()]
    hybrid_losses = train_steps(3)
    for name, a, b in zip(["loss", "logits", "greedy ids", "beam ids", "beam weights", "beam scores"],
                          imperative, hybrid):
        if "ids" in name:
            assert np.array_equal(a, b), name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)
    # The first hybridized step starts from the parameters the imperative outputs saw.
    np.testing.assert_allclose(hybrid_losses[0], imperative[0][0], rtol=1e-5)
    losses = imperative_losses + hybrid_losses
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.9 * losses[0]  # same batch each step


@pytest.mark.parametrize("encoder, decoder", [("lstm", "lstm"), ("lstm", "gru"), ("gru", "lstm"),
                                              ("bi-gru", "gru"), ("bi-lstm", "lstm")])
def test_decoder_starts_from_the_encoder_states_it_can_use(encoder, decoder):
    model, data = build({"encoder": ENCODERS[encoder], "decoder": DECODERS[decoder]})
    src = nd.array(data.src)
    outputs, *encoder_states = (a.asnumpy() for a in model.encoder(src, nd.clip(src, 0, 1)))
    states = [a.asnumpy() for a in model.encode(nd, src)[2]]
    assert model.decoder.copy_states and len(states) == (2 if decoder == "lstm" else 1)
    np.testing.assert_array_equal(states[0], encoder_states[0])
    if decoder == "lstm":  # the cell state: an LSTM encoder's, or zero after a GRU
        expected = encoder_states[1] if encoder.endswith("lstm") else np.zeros_like(states[0])
        np.testing.assert_array_equal(states[1], expected)
    if encoder.startswith("bi-"):
        # The forward direction ends at the last step, the backward one at the first.
        half = outputs.shape[2] // 2
        np.testing.assert_allclose(states[0][-1, :, :half], outputs[:, -1, :half], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(states[0][-1, :, half:], outputs[:, 0, half:], rtol=1e-5, atol=1e-6)


def test_dot_attention_of_unequal_sizes_is_a_config_error():
    config = parse_config(tiny(model={"decoder": {"hidden": 32}, "attention": {"type": "dot"}}),
                          "t.toml", Registry())
    task = config.task.build()
    with pytest.raises(ConfigError) as info:
        build_model(config, task, *task.build_vocabularies([]))
    message = str(info.value)
    assert message.startswith("t.toml: model.attention: dot attention needs the decoder's query (32) "
                              "as wide as the encoder's outputs (64)")
    assert "\n" not in message


@pytest.mark.parametrize("name, params", [("concat", {"context": "flatten"}), ("concat", {"context": "sum"}),
                                          ("general", {}), ("additive", {})])
def test_context_products_per_position_give_the_projected_context(name, params):
    """weights . project_outputs(outputs, W) == W . context: the seed's combine Dense over
    flatten(weights * outputs), and every built-in weighted sum, without a context per step."""
    cls = Registry().get("attention", name)
    attention = cls(cls.Params(**params), 12, 5, 7)
    attention.initialize()
    assert attention.context_is_linear
    rng = np.random.default_rng(0)
    query, outputs = nd.array(rng.normal(size=(3, 2, 12))), nd.array(rng.normal(size=(3, 7, 5)))
    mask = nd.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 6 + [0]])
    weight = nd.array(rng.normal(size=(9, attention.context_size)))
    context, weights = attention(query, attention.prepare(nd, outputs), mask)
    assert context.shape == (3, 2, 35 if params.get("context") == "flatten" else 5)
    expected = nd.dot(context, weight, transpose_b=True).asnumpy()
    projected = attention.project_outputs(nd, outputs, weight)
    assert projected.shape == (3, 7, 9)
    np.testing.assert_allclose(nd.batch_dot(weights, projected).asnumpy(), expected, rtol=1e-5, atol=1e-5)
