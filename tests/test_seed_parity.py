"""s2s's fused LSTM encoder computes the same function as the notebook's unrolled cell."""

from __future__ import annotations

import re
import sys

import mxnet as mx
import numpy as np
from mxnet import nd

from conftest import ROOT
from s2s_plugins.lstm import LSTMEncoder

sys.path.insert(0, str(ROOT / "benchmarks"))
import notebook_baseline as nb  # noqa: E402


def test_fused_encoder_equals_unrolled_cell_at_the_same_parameters():
    hidden, vocab = 24, len(nb.VOCAB)
    baseline = nb.NotebookModel(hidden)
    baseline.initialize(mx.init.Xavier())
    encoder = LSTMEncoder(LSTMEncoder.Params(hidden=hidden), vocab, nb.LENGTH)
    encoder.initialize()
    def role(name):  # "...lstm0_i2h_weight" -> "i2h_weight"
        return re.search(r"(i2h|h2h)_(weight|bias)$", name).group(0)

    cell = {role(k): v.data() for k, v in baseline.encoder.collect_params().items()}
    fused = encoder.rnn
    assert sorted(role(name) for name, _, _ in fused.pieces) == sorted(cell)
    packed = fused.packed.data().copy()
    for name, shape, offset in fused.pieces:
        packed[offset:offset + int(np.prod(shape))] = cell[role(name)].reshape((-1,))
    fused.packed.set_data(packed)
    rng = np.random.default_rng(0)
    src = nd.array(rng.integers(1, vocab, size=(5, nb.LENGTH)))
    expected_out, (expected_h, expected_c) = baseline.encode(nd, nd.one_hot(src, vocab))
    out, h, c = encoder(src, nd.ones_like(src))
    np.testing.assert_allclose(out.asnumpy(), expected_out.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h[0].asnumpy(), expected_h.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c[0].asnumpy(), expected_c.asnumpy(), rtol=1e-5, atol=1e-6)
