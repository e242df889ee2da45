"""Decoding: greedy and beam search, both driving the decoder's one step function."""

from __future__ import annotations

import mxnet as mx
import numpy as np
from mxnet import nd

from .model import Seq2Seq
from .vocab import BOS_ID, EOS_ID, PAD_ID

#: Rows decoded per call: constant, so a hybridized decoder keeps one static graph.
#: Beam search decodes DECODE_BATCH // width sentences per call, as many decoder rows.
DECODE_BATCH = 1000

#: Log-probability of what may never be chosen: finite, so that 0 * NEVER is 0, not nan.
NEVER = -1e9


def greedy(model: Seq2Seq, src: nd.NDArray) -> tuple[nd.NDArray, nd.NDArray]:
    """Greedy decoding of one batch.

    ``src`` (N, Ts) ids. Returns ``ids`` (N, Lt) and attention ``weights`` (N, Lt, Ts),
    both still on the device. After its end token a row holds padding and zero
    weights (as beam search's), and decoding stops once every row has ended: one
    host read of a single number per step buys skipping the steps nobody needs (a
    trained calculator ends "579" after 4 of its 9 steps).
    """
    n, steps = src.shape[0], model.target_steps
    memory, mask, states = model.encode(nd, src)
    token = nd.full((n, 1), BOS_ID, ctx=src.context)
    finished = nd.zeros((n, 1), ctx=src.context)
    ids, weights = [], []
    for step in range(steps):
        logits, step_weights, states = model.step(token, memory, mask, states)
        token = nd.where(finished, nd.zeros_like(finished) + PAD_ID, nd.argmax(logits, axis=2))
        ids.append(token)
        weights.append(nd.broadcast_mul(step_weights, finished.expand_dims(axis=2) == 0))
        finished = nd.maximum(finished, token == EOS_ID)
        if step + 1 < steps and nd.min(finished).asscalar() == 1:
            ids += [nd.zeros_like(token) + PAD_ID] * (steps - step - 1)
            weights += [nd.zeros_like(weights[-1])] * (steps - step - 1)
            break
    return nd.concat(*ids, dim=1), nd.concat(*weights, dim=1)


def length_penalty(lengths: nd.NDArray, alpha: float) -> nd.NDArray:
    """GNMT's length penalty ((5 + length) / 6) ** alpha (Wu et al., 2016, eq. 14).

    Beam search ranks hypotheses by log-probability / penalty: alpha = 0 ranks by the
    log-probability alone (short hypotheses favoured), alpha = 1 roughly by the
    log-probability per token; GNMT used 0.6 to 0.7 for translation.
    """
    return ((5.0 + lengths) / 6.0) ** alpha


def _top_tokens(logits: nd.NDArray, count: int) -> tuple[nd.NDArray, nd.NDArray]:
    """The ``count`` most likely next tokens per row of ``logits`` (..., V) and their
    log-probabilities, both (..., count).

    Chosen on the logits, as greedy's argmax chooses (and breaking ties the same way,
    lowest id first), so that width 1 follows greedy exactly.
    """
    top_logits, tokens = nd.topk(logits, axis=-1, k=count, ret_typ="both")
    peak = nd.max(logits, axis=-1, keepdims=True)
    log_total = peak + nd.log(nd.sum(nd.exp(nd.broadcast_sub(logits, peak)), axis=-1, keepdims=True))
    return tokens, nd.broadcast_sub(top_logits, log_total)


def beam_search(model: Seq2Seq, src: nd.NDArray, width: int,
                alpha: float = 0.0) -> tuple[nd.NDArray, nd.NDArray, nd.NDArray]:
    """Beam search of one batch: every hypothesis of every sentence in one decoder call per step.

    ``src`` (N, Ts) ids; ``width`` K hypotheses kept per sentence; ``alpha`` the
    :func:`length_penalty` they are ranked by. Returns, for the best hypothesis of each
    sentence, ``ids`` (N, Lt), attention ``weights`` (N, Lt, Ts) and ``scores`` (N,) its
    log-probability under the model (up to and including the end token); all still on
    the device, with no host synchronisation inside the loop.

    A hypothesis that has produced the end token is finished: it stays in the beam with
    its score, competing with the growing ones, and its only continuation is padding
    at no cost (so ``ids`` are padding after the end token and ``weights`` zero).
    Decoding stops once every hypothesis has finished (one host read per step, as in
    :func:`greedy`).
    """
    n, k = src.shape[0], width
    ctx = src.context
    memory, mask, states = model.encode(nd, src)  # once per sentence, then copied per hypothesis
    axis = model.decoder.state_batch_axis
    # Row n * K + j holds hypothesis j of sentence n.
    memory, mask = nd.repeat(memory, repeats=k, axis=0), nd.repeat(mask, repeats=k, axis=0)
    states = [nd.repeat(state, repeats=k, axis=axis) for state in states]
    tokens = nd.full((n * k, 1), BOS_ID, ctx=ctx)
    # All K rows start as the same empty hypothesis: only the first may grow, or the
    # beam would fill with K copies of the best first token.
    scores = nd.tile(nd.array([[0.0] + [NEVER] * (k - 1)], ctx=ctx), reps=(n, 1))  # (N, K)
    lengths = nd.zeros((n, k), ctx=ctx)  # tokens produced, the end token included
    finished = nd.zeros((n, k), ctx=ctx)
    sentence = nd.arange(n, ctx=ctx).reshape((n, 1))
    history = []  # per step: (tokens (N*K, 1), parent rows (N*K,), weights (N*K, 1, Ts))
    for _ in range(model.target_steps):
        logits, step_weights, states = model.step(tokens, memory, mask, states)
        step_weights = nd.broadcast_mul(step_weights, (1 - finished).reshape((-1, 1, 1)))
        # Each hypothesis proposes its best `per_row` tokens: the best K of a sentence's
        # K * V continuations are among these K * per_row.
        per_row = min(k, logits.shape[-1])
        proposed, log_probs = _top_tokens(logits.reshape((n, k, -1)), per_row)  # (N, K, per_row)
        # A finished hypothesis proposes padding at no cost, and nothing else.
        done = nd.broadcast_like(finished.expand_dims(axis=2), log_probs)
        padding_only = nd.array([0.0] + [NEVER] * (per_row - 1), ctx=ctx).reshape((1, 1, -1))
        proposed = nd.where(done, nd.zeros_like(proposed) + PAD_ID, proposed)
        log_probs = nd.where(done, nd.broadcast_like(padding_only, log_probs), log_probs)
        # Every proposal as (N, K * per_row): its score and length.
        totals = nd.broadcast_add(scores.expand_dims(axis=2), log_probs).reshape((n, -1))
        grown = nd.broadcast_like((lengths + 1 - finished).expand_dims(axis=2), log_probs).reshape((n, -1))
        ranking = totals if alpha == 0 else totals / length_penalty(grown, alpha)
        best = nd.topk(ranking, axis=1, k=k)  # (N, K) best first, in [0, K * per_row)
        chosen = (best + sentence * (k * per_row)).reshape((-1,))  # into the flat proposals
        parents = (nd.floor(best / per_row) + sentence * k).reshape((-1,))  # rows they extend
        tokens = nd.take(proposed.reshape((-1,)), chosen).reshape((-1, 1))
        scores = nd.take(totals.reshape((-1,)), chosen).reshape((n, k))
        lengths = nd.take(grown.reshape((-1,)), chosen).reshape((n, k))
        finished = nd.maximum(nd.take(finished.reshape((-1,)), parents),
                              tokens.reshape((-1,)) == EOS_ID).reshape((n, k))
        states = [nd.take(state, parents, axis=axis) for state in states]
        history.append((tokens, parents, step_weights))
        if len(history) < model.target_steps and nd.min(finished).asscalar() == 1:
            break
    # The best hypothesis of each sentence is first in its beam; follow its parents back.
    row = (sentence * k).reshape((-1,))
    ids, weights = [], []
    for step_tokens, parents, step_weights in reversed(history):
        ids.append(nd.take(step_tokens, row))
        row = nd.take(parents, row)
        weights.append(nd.take(step_weights, row))
    best_scores = nd.take(scores.reshape((-1,)), (sentence * k).reshape((-1,)))
    missing = model.target_steps - len(history)  # steps skipped once all had finished
    ids = ids[::-1] + [nd.zeros_like(ids[0]) + PAD_ID] * missing
    weights = weights[::-1] + [nd.zeros_like(weights[0])] * missing
    return nd.concat(*ids, dim=1), nd.concat(*weights, dim=1), best_scores


def decode_arrays(model: Seq2Seq, src: np.ndarray, ctx: mx.Context | None = None,
                  batch_size: int = DECODE_BATCH, beam: int = 1,
                  alpha: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Decode every row of ``src`` (N, Ts) -> (ids (N, Lt), weights (N, Lt, Ts)).

    ``beam`` 1 is greedy search; more is :func:`beam_search` of that width, ranking by
    :func:`length_penalty` ``alpha``.
    """
    ctx = ctx or mx.cpu()
    batch_size = max(1, batch_size // beam)  # the decoder sees batch_size * beam rows
    ids, weights = [], []
    for start in range(0, len(src), batch_size):
        rows = src[start:start + batch_size]
        # Filler rows (one batch shape for a static graph) repeat the first source, so that
        # they end when it does and do not keep decoding going on their own.
        filler = np.repeat(rows[:1], batch_size - len(rows), axis=0)
        chunk = nd.array(np.concatenate([rows, filler]), ctx=ctx)
        if beam == 1:
            out_ids, out_weights = greedy(model, chunk)
        else:
            out_ids, out_weights, _ = beam_search(model, chunk, beam, alpha)
        ids.append(out_ids.asnumpy()[:len(rows)])
        weights.append(out_weights.asnumpy()[:len(rows)])
    if not ids:
        steps = model.target_steps
        return np.zeros((0, steps)), np.zeros((0, steps, src.shape[1]))
    return np.concatenate(ids), np.concatenate(weights)
