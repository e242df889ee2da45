"""``dot`` and ``general`` (Luong et al., 2015) and ``additive`` (Bahdanau et al., 2014) attention.

Each scores every source position against the query, takes the masked softmax of the
scores as weights and returns the weighted sum of the encoder outputs as context.
They differ only in the score. Where a score needs the encoder outputs projected
("keys"), :meth:`prepare` projects them once per source sentence: the decoder step,
run once per target step (and per beam hypothesis in beam search), only projects the
query. The prepared memory then carries the keys and the outputs side by side.
"""

from __future__ import annotations

import attrs
from attrs import validators as v
from mxnet.gluon import nn

from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Attention, NoParams, concat_features, masked_softmax


class ScoredAttention(Attention):
    """weights = masked softmax over Ts of ``score(query, keys)``; context = weights . outputs.

    ``hybrid_forward(F, query (N, L, Q), memory (N, Ts, K + M) or (N, Ts, M), mask (N, Ts))``
    -> ``(context (N, L, M), weights (N, L, Ts))``. ``memory`` is :meth:`prepare`'s:
    the keys (N, Ts, K) then the encoder outputs (N, Ts, M) when the subclass sets
    :attr:`key_layer`, else the outputs alone (they are then the keys too).
    """

    #: Projects the encoder outputs (N, Ts, M) to keys (N, Ts, K) once per source; None
    #: when the outputs are the keys.
    key_layer = None

    def prepare(self, F, memory):
        if self.key_layer is None:
            return memory
        return concat_features(F, self.key_layer(memory), memory)

    def hybrid_forward(self, F, query, memory, mask):
        keys, outputs = memory, memory
        if self.key_layer is not None:
            keys = F.slice_axis(memory, axis=2, begin=0, end=self.key_size)
            outputs = F.slice_axis(memory, axis=2, begin=self.key_size, end=None)
        weights = masked_softmax(F, self.score(F, query, keys), mask)  # (N, L, Ts)
        return F.batch_dot(weights, outputs), weights

    context_is_linear = True

    def project_outputs(self, F, outputs, weight):
        return F.dot(outputs, weight, transpose_b=True)  # the context is weights . outputs

    def score(self, F, query, keys):
        """(N, L, Q), (N, Ts, K) -> scores (N, L, Ts); here query . key (K = Q)."""
        return F.batch_dot(query, keys, transpose_b=True)


class DotAttention(ScoredAttention):
    """score = query . output (Luong's "dot"); the query and the outputs must be as wide."""

    Params = NoParams

    def __init__(self, params, query_size, memory_size, source_length, **kwargs):
        super().__init__(params, query_size, memory_size, source_length, **kwargs)
        if query_size != memory_size:
            raise ValueError(f"dot attention needs the decoder's query ({query_size}) as wide as the "
                             f"encoder's outputs ({memory_size}); use 'general' or match the sizes")


class GeneralAttention(ScoredAttention):
    """score = query . (W output) (Luong's "general"); W output is computed once per source."""

    Params = NoParams

    def __init__(self, params, query_size, memory_size, source_length, **kwargs):
        super().__init__(params, query_size, memory_size, source_length, **kwargs)
        self.key_size = query_size  # keys in the query's space: any two sizes work
        with self.name_scope():
            self.key_layer = nn.Dense(query_size, use_bias=False, flatten=False, in_units=memory_size)


@attrs.define
class AdditiveAttentionParams:
    #: Width of the layer the query and the keys are added in; 0: the query's width.
    units: int = attrs.field(default=0, validator=[v.ge(0), v.le(8192)])


class AdditiveAttention(ScoredAttention):
    """score = v . tanh(W_q query + W_k output) (Bahdanau); W_k output once per source."""

    Params = AdditiveAttentionParams

    def __init__(self, params, query_size, memory_size, source_length, **kwargs):
        super().__init__(params, query_size, memory_size, source_length, **kwargs)
        self.key_size = units = params.units or query_size
        with self.name_scope():
            self.key_layer = nn.Dense(units, use_bias=False, flatten=False, in_units=memory_size)
            self.query_layer = nn.Dense(units, use_bias=False, flatten=False, in_units=query_size)
            self.energy = nn.Dense(1, use_bias=False, flatten=False, in_units=units)

    def score(self, F, query, keys):
        # (N, L, 1, A) + (N, 1, Ts, A) -> (N, L, Ts, A) -> (N, L, Ts)
        hidden = F.tanh(F.broadcast_add(F.expand_dims(self.query_layer(query), axis=2),
                                        F.expand_dims(keys, axis=1)))
        return F.squeeze(self.energy(hidden), axis=3)


@hookimpl
def s2s_attentions():
    return {"dot": DotAttention, "general": GeneralAttention, "additive": AdditiveAttention}
