"""An s2s plugin from outside the project: the ``sort`` task and ``scaled_dot`` attention.

``sort``: the letters of a word in alphabetical order, "dbca" -> "abcd".
``scaled_dot``: Transformer-style attention, softmax(q . k / sqrt(size)) over the source,
with learned projections of the decoder's query and of the encoder's outputs (keys).
"""

from __future__ import annotations

import math
import random

import attrs
from attrs import validators as v
from mxnet.gluon import nn

from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Attention, Task, masked_softmax
from s2s_core.vocab import Vocabulary


@attrs.define
class SortParams:
    #: The alphabet words are made of.
    letters: str = attrs.field(default="abcdefghij", validator=v.min_len(2))
    #: Words have 1..length letters.
    length: int = attrs.field(default=6, validator=[v.ge(1), v.le(100)])
    #: Words generated (repeats allowed).
    examples: int = attrs.field(default=10_000, validator=[v.ge(2), v.le(10_000_000)])
    validation_fraction: float = attrs.field(default=0.1, validator=[v.gt(0.0), v.lt(1.0)])


class SortTask(Task):
    """A word -> its letters sorted. Tokens are characters (Task's default)."""

    Params = SortParams

    @property
    def max_source_length(self) -> int:
        return self.options.length

    @property
    def max_target_length(self) -> int:
        return self.options.length

    def load_data(self, seed: int):
        o, rng = self.options, random.Random(seed)
        words = ["".join(rng.choice(o.letters) for _ in range(rng.randint(1, o.length)))
                 for _ in range(o.examples)]
        pairs = [(word, "".join(sorted(word))) for word in words]
        n_valid = max(1, round(len(pairs) * o.validation_fraction))
        return pairs[:-n_valid], pairs[-n_valid:]

    def build_vocabularies(self, train):
        # The whole alphabet, seen in training or not; any other letter is an input error.
        letters = sorted(set(self.options.letters))
        return Vocabulary(letters), Vocabulary(letters)


@attrs.define
class ScaledDotParams:
    #: Width of the projected queries and keys.
    size: int = attrs.field(default=64, validator=[v.ge(1), v.le(8192)])


class ScaledDotAttention(Attention):
    """weights = softmax((W_q query) . (W_k memory) / sqrt(size)); context = weights . memory.

    :meth:`prepare` projects the keys once per source sentence and passes them to every
    decoder step next to the encoder outputs (the values): memory (N, Ts, size + M).
    """

    Params = ScaledDotParams

    def __init__(self, params, query_size, memory_size, source_length, **kwargs):
        super().__init__(params, query_size, memory_size, source_length, **kwargs)
        with self.name_scope():
            self.query_projection = nn.Dense(params.size, flatten=False, use_bias=False,
                                             in_units=query_size)
            self.key_projection = nn.Dense(params.size, flatten=False, use_bias=False,
                                           in_units=memory_size)

    def prepare(self, F, memory):
        return F.concat(self.key_projection(memory), memory, dim=2)

    def hybrid_forward(self, F, query, memory, mask):
        size = self.options.size
        keys = F.slice_axis(memory, axis=2, begin=0, end=size)  # (N, Ts, size)
        values = F.slice_axis(memory, axis=2, begin=size, end=None)  # (N, Ts, M)
        scores = F.batch_dot(self.query_projection(query), keys, transpose_b=True)  # (N, L, Ts)
        weights = masked_softmax(F, scores / math.sqrt(size), mask)
        return F.batch_dot(weights, values), weights


@hookimpl
def s2s_tasks():
    return {"sort": SortTask}


@hookimpl
def s2s_attentions():
    return {"scaled_dot": ScaledDotAttention}
