"""The lstm/gru plugins' packed fused layer is Gluon's rnn.LSTM / rnn.GRU, parameter for parameter."""

from __future__ import annotations

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, nd
from mxnet.gluon import rnn

from s2s_plugins.recurrent import FusedRecurrent


@pytest.mark.parametrize("mode, layers, bidirectional", [("lstm", 1, False), ("lstm", 2, True),
                                                         ("gru", 1, False), ("gru", 2, True)])
def test_same_initial_parameters_outputs_and_gradients_as_gluons_layer(mode, layers, bidirectional):
    gluon_class = {"lstm": rnn.LSTM, "gru": rnn.GRU}[mode]
    mx.random.seed(3)
    reference = gluon_class(7, num_layers=layers, layout="NTC", bidirectional=bidirectional, input_size=5)
    reference.initialize(mx.init.Xavier())
    mx.random.seed(3)
    fused = FusedRecurrent(mode, 7, 5, layers, bidirectional)
    fused.initialize(mx.init.Xavier())
    unpacked = fused.unpacked()
    for name, param in reference.collect_params().items():
        assert np.array_equal(param.data().asnumpy(), unpacked[name[len(reference.prefix):]].asnumpy()), name

    rng = np.random.default_rng(0)
    x = nd.array(rng.normal(size=(3, 4, 5)))
    states = [nd.array(rng.normal(size=(layers * (2 if bidirectional else 1), 3, 7)))
              for _ in range(2 if mode == "lstm" else 1)]
    results = []
    for layer in (reference, fused):
        with autograd.record():
            out, new_states = layer(x, states)
            total = (out ** 2).sum() + sum((s ** 3).sum() for s in new_states)
        total.backward()
        results.append([out, *new_states])
    for a, b in zip(*results):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6, atol=1e-6)
    grads = {name: fused.packed.grad()[offset:offset + int(np.prod(shape))].reshape(shape)
             for name, shape, offset in fused.pieces}
    for name, param in reference.collect_params().items():
        np.testing.assert_allclose(param.grad().asnumpy(), grads[name[len(reference.prefix):]].asnumpy(),
                                   rtol=1e-5, atol=1e-6)
