"""``concat`` attention: the seed's concat-dense attention.

Scores come from one Dense layer over the query (for the seed: the decoder's input
concatenated with its previous hidden state) with one output per source position;
they do not look at the encoder outputs at all. The source length is therefore
fixed when the model is built.
"""

from __future__ import annotations

import attrs
from attrs import validators as v
from mxnet.gluon import nn

from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Attention, masked_softmax


@attrs.define
class ConcatAttentionParams:
    #: "sum": context = sum over steps of weight * output (N, L, M).
    #: "flatten": the seed's exact form, every weighted output side by side (N, L, Ts*M).
    context: str = attrs.field(default="sum", validator=v.in_(("sum", "flatten")))


class ConcatAttention(Attention):
    """weights = softmax(Dense(Ts)(query)) over the source positions.

    ``hybrid_forward(F, query (N, L, Q), memory (N, Ts, M), mask (N, Ts))`` ->
    ``(context (N, L, M) or (N, L, Ts*M), weights (N, L, Ts))``.
    """

    Params = ConcatAttentionParams

    def __init__(self, params, query_size, memory_size, source_length, **kwargs):
        super().__init__(params, query_size, memory_size, source_length, **kwargs)
        self.source_length = source_length
        if params.context == "flatten":
            self.context_size = source_length * memory_size
        with self.name_scope():
            self.score = nn.Dense(source_length, flatten=False, in_units=query_size)

    def hybrid_forward(self, F, query, memory, mask):
        weights = masked_softmax(F, self.score(query), mask)  # (N, L, Ts)
        if self.options.context == "sum":
            return F.batch_dot(weights, memory), weights
        # (N, L, Ts, 1) * (N, 1, Ts, M) -> (N, L, Ts*M)
        weighted = F.broadcast_mul(F.expand_dims(weights, axis=3), F.expand_dims(memory, axis=1))
        return F.reshape(weighted, (0, 0, -3)), weights

    context_is_linear = True

    def project_outputs(self, F, outputs, weight):
        if self.options.context == "sum":
            return F.dot(outputs, weight, transpose_b=True)
        # W . flatten(w * outputs) = sum over t of w_t (W_t . outputs_t), W_t the columns
        # of position t: P_t = W_t . outputs_t, once per source.
        per_position = F.transpose(F.reshape(weight, (0, self.source_length, -1)), axes=(1, 2, 0))
        projected = F.batch_dot(F.transpose(outputs, axes=(1, 0, 2)), per_position)  # (Ts, N, C)
        return F.transpose(projected, axes=(1, 0, 2))


@hookimpl
def s2s_attentions():
    return {"concat": ConcatAttention}
