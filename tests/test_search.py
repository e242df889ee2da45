"""Beam search: width 1 is greedy, wider finds hypotheses the model rates at least as high."""

from __future__ import annotations

import numpy as np
import pytest
from mxnet import nd

from s2s_core.data import encode_pairs
from s2s_core.predict import predict
from s2s_core.rundir import load_run
from s2s_core.search import beam_search, decode_arrays, greedy
from s2s_core.vocab import BOS_ID, EOS_ID, PAD_ID
from test_model import ATTENTION_SETUPS, build, through_the_end


def scored_by_the_model(model, src: nd.NDArray, ids: np.ndarray, alpha: float = 0.0):
    """Teacher-forced log-probability of each row of ``ids`` through its end token, divided
    by GNMT's length penalty; and the lengths."""
    tgt_in = nd.concat(nd.full((len(ids), 1), BOS_ID), nd.array(ids[:, :-1]), dim=1)
    log_probs = nd.pick(nd.log_softmax(model(src, tgt_in), axis=-1), nd.array(ids), axis=-1).asnumpy()
    kept = through_the_end(ids)
    lengths = kept.sum(axis=1)
    return (log_probs * kept).sum(axis=1) / ((5.0 + lengths) / 6.0) ** alpha, lengths


def weights_when_fed(model, src: nd.NDArray, ids: np.ndarray) -> np.ndarray:
    """The decoder step's attention weights (N, Lt, Ts) when fed ``ids`` one step at a time."""
    memory, mask, states = model.encode(nd, src)
    token, weights = nd.full((len(ids), 1), BOS_ID), []
    for t in range(ids.shape[1]):
        _, step_weights, states = model.step(token, memory, mask, states)
        weights.append(step_weights.asnumpy())
        token = nd.array(ids[:, t:t + 1])
    return np.concatenate(weights, axis=1)


@pytest.mark.parametrize("name", ATTENTION_SETUPS)
def test_beam_of_width_one_is_greedy(name):
    model, data = build(ATTENTION_SETUPS[name])
    src = nd.array(data.src)
    greedy_ids, greedy_weights = (a.asnumpy() for a in greedy(model, src))
    ids, weights, _ = (a.asnumpy() for a in beam_search(model, src, 1))
    kept = through_the_end(greedy_ids)
    assert np.array_equal(ids, greedy_ids)  # both pad after the end token
    assert np.array_equal(weights[kept], greedy_weights[kept])
    assert not weights[~kept].any()


@pytest.mark.parametrize("name", ["concat-input", "gru-input-additive", "bi-lstm-2-layers-bridge-gru-general"])
def test_beam_search_beats_or_ties_greedy_under_the_model_untrained(name):
    """Untrained models are unsure, so beam search has much to find. These three end
    early at alpha 0; a strong length penalty makes them go on."""
    model, data = build(ATTENTION_SETUPS[name])
    src = nd.array(data.src)
    mean_length = {}
    for alpha in (0.0, 5.0):
        ids, weights, scores = (a.asnumpy() for a in beam_search(model, src, 4, alpha))
        beam, mean_length[alpha] = scored_by_the_model(model, src, ids, alpha)
        greedy_score = scored_by_the_model(model, src, greedy(model, src)[0].asnumpy(), alpha)[0]
        # Beam search is not guaranteed to keep greedy's path (it can be pruned by K
        # prefixes that later fall behind), but under the model it must win on average
        # and lose rarely.
        assert beam.mean() > greedy_score.mean()
        assert np.mean(beam >= greedy_score - 1e-5) >= 0.9
        assert np.any(beam > greedy_score + 1e-3)
        # What the search reports is what the model says of its hypothesis.
        np.testing.assert_allclose(scored_by_the_model(model, src, ids)[0], scores, atol=1e-4)
        kept = through_the_end(ids)
        np.testing.assert_allclose(weights[kept], weights_when_fed(model, src, ids)[kept], atol=1e-5)
    # A strong length penalty never shortens the hypotheses, and lengthens them where
    # there is room (the models are untrained: some setups already use every step).
    assert mean_length[5.0].mean() >= mean_length[0.0].mean()
    if mean_length[0.0].mean() < model.target_steps:
        assert mean_length[5.0].mean() > mean_length[0.0].mean()


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_on_a_trained_model(trained_run, alpha):
    run = load_run(trained_run.run_dir)
    valid = run.task.load_data(run.config.training.seed)[1]
    data = encode_pairs(run.task, run.source_vocab, run.target_vocab, valid)
    src = nd.array(data.src)
    ids, weights, _ = (a.asnumpy() for a in beam_search(run.model, src, 3, alpha))
    beam = scored_by_the_model(run.model, src, ids, alpha)[0]
    greedy_score = scored_by_the_model(run.model, src, greedy(run.model, src)[0].asnumpy(), alpha)[0]
    assert np.all(beam >= greedy_score - 1e-5)
    # Finished hypotheses stopped growing: padding and no attention after the end token.
    kept = through_the_end(ids)
    assert np.all((ids == EOS_ID).any(axis=1))
    assert np.all(ids[~kept] == PAD_ID) and not weights[~kept].any()
    np.testing.assert_allclose(weights[kept].sum(axis=-1), 1.0, atol=1e-5)


def test_decoding_in_chunks_gives_the_whole_batch_result():
    model, data = build(ATTENTION_SETUPS["gru-input-additive"])
    whole = beam_search(model, nd.array(data.src), 3, 0.6)
    # 7 // 3 = 2 sentences (6 decoder rows) per call, the last call padded.
    ids, weights = decode_arrays(model, data.src[:15], batch_size=7, beam=3, alpha=0.6)
    assert np.array_equal(ids, whole[0].asnumpy()[:15])
    np.testing.assert_allclose(weights, whole[1].asnumpy()[:15], rtol=1e-5, atol=1e-6)


def test_predict_cli_with_a_beam(trained_run, cli):
    run = load_run(trained_run.run_dir)
    questions = ["12+34", "5+5", "99+99", "0+7"]
    expected = [a.output for a in predict(run, questions, beam=3, alpha=0.6)]
    result = cli("predict", trained_run.run_dir, "--beam", 3, "--length-penalty", 0.6, *questions)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected
    assert sum(a == str(eval(q)) for a, q in zip(expected, questions)) >= 2
    result = cli("predict", trained_run.run_dir, "--beam", 0, "1+1")
    assert result.exit_code == 2 and "--beam" in result.stderr


@pytest.mark.parametrize("end_at", [2, 3])
@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_decoding_stops_once_every_row_has_ended(search, end_at):
    """The end token's output bias raised from step ``end_at`` on: every row (and every
    hypothesis of a beam) ends there, the later steps are never run, and the result is
    padded as if they had been. (From step 2: at step 1 a beam holds one hypothesis.)"""
    model, data = build(ATTENTION_SETUPS["concat-input"])
    src = nd.array(data.src)
    bias = model.decoder.output_layer.dense.bias
    calls = []
    step = model.step

    def counted_step(*args):
        calls.append(1)
        if len(calls) == end_at:
            bias.set_data(bias.data() + nd.one_hot(nd.array([EOS_ID]), bias.shape[0])[0] * 1e4)
        return step(*args)

    model.step = counted_step
    if search == "greedy":
        ids, weights = (a.asnumpy() for a in greedy(model, src))
    else:
        ids, weights, _ = (a.asnumpy() for a in beam_search(model, src, 3))
    assert len(calls) == end_at < model.target_steps
    assert ((ids[:, :end_at] == EOS_ID).sum(axis=1) == 1).all()  # every row ended by then
    assert not ids[:, end_at:].any() and not weights[:, end_at:].any()
    assert ids.shape == (len(data), model.target_steps)
    assert weights.shape == (len(data), model.target_steps, data.src.shape[1])
