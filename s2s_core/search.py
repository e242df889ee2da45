"""Decoding: greedy search (and beam search) driving the decoder's one step function."""

from __future__ import annotations

import mxnet as mx
import numpy as np
from mxnet import nd

from .data import pad_batch
from .model import Seq2Seq
from .vocab import BOS_ID

#: Rows decoded per call: constant, so a hybridized decoder keeps one static graph.
DECODE_BATCH = 1000


def greedy(model: Seq2Seq, src: nd.NDArray) -> tuple[nd.NDArray, nd.NDArray]:
    """Greedy decoding of one batch.

    ``src`` (N, Ts) ids. Returns ``ids`` (N, Lt) and attention ``weights`` (N, Lt, Ts),
    both still on the device (no host synchronisation inside the loop).
    """
    memory, mask, states = model.encode(nd, src)
    token = nd.full((src.shape[0], 1), BOS_ID, ctx=src.context)
    ids, weights = [], []
    for _ in range(model.target_steps):
        out = model.decoder(token, memory, mask, *states)
        logits, step_weights, states = out[0], out[1], out[2:]
        token = nd.argmax(logits, axis=2)
        ids.append(token)
        weights.append(step_weights)
    return nd.concat(*ids, dim=1), nd.concat(*weights, dim=1)


def decode_arrays(model: Seq2Seq, src: np.ndarray, ctx: mx.Context | None = None,
                  batch_size: int = DECODE_BATCH) -> tuple[np.ndarray, np.ndarray]:
    """Greedy-decode every row of ``src`` (N, Ts) -> (ids (N, Lt), weights (N, Lt, Ts))."""
    ctx = ctx or mx.cpu()
    ids, weights = [], []
    for start in range(0, len(src), batch_size):
        chunk = src[start:start + batch_size]
        out_ids, out_weights = greedy(model, nd.array(pad_batch(chunk, batch_size), ctx=ctx))
        ids.append(out_ids.asnumpy()[:len(chunk)])
        weights.append(out_weights.asnumpy()[:len(chunk)])
    if not ids:
        steps = model.target_steps
        return np.zeros((0, steps)), np.zeros((0, steps, src.shape[1]))
    return np.concatenate(ids), np.concatenate(weights)
