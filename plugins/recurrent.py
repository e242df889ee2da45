"""What the ``lstm`` and ``gru`` plugins share: a fused recurrent encoder and decoder step.

Not a plugin itself (no hooks): ``lstm.py`` and ``gru.py`` subclass these two classes
naming the fused operator's mode and how many state arrays it carries. The two kinds mix: a
decoder copies the states an encoder's final states provide that it has (the hidden
state, and an LSTM's cell state when both sides are LSTMs), starts the rest at zero,
and goes through a bridge layer when the sizes differ.
"""

from __future__ import annotations

import attrs
import mxnet as mx
import numpy as np
from attrs import validators as v
from mxnet.gluon import HybridBlock, nn

from s2s_core.interfaces import Decoder, Encoder, concat_features, no_attention_weights


def embed_inputs(F, block, tokens, vocab_size: int):
    """One-hot (N, L, V) when the block has no embedding (the seed), else (N, L, E)."""
    if block.embed is None:
        return F.one_hot(tokens, vocab_size)
    return block.embed(tokens)


def zero_states(F, like, layers: int, hidden: int, count: int) -> list:
    """``count`` zero arrays (layers, N, hidden); N is taken from ``like`` (N, ...).

    Built from an input because ``begin_state(batch_size=0)`` fails imperatively.
    """
    first = F.slice_axis(F.reshape(like, (0, -1)), axis=1, begin=0, end=1)  # (N, 1)
    zeros = F.expand_dims(F.zeros_like(first), axis=0)  # (1, N, 1)
    return [F.tile(zeros, reps=(layers, 1, hidden)) for _ in range(count)]


def join_directions(F, state):
    """(layers * 2, N, H), directions interleaved per layer -> (layers, N, 2H)."""
    state = F.reshape(state, (-4, -1, 2, 0, 0))  # (layers, 2, N, H)
    return F.reshape(F.transpose(state, axes=(0, 2, 1, 3)), (0, 0, -3))


@mx.init.register
class PackedRecurrentInit(mx.init.Initializer):
    """Initialises :class:`FusedRecurrent`'s packed parameter piece by piece, exactly as
    Gluon's ``rnn.LSTM``/``rnn.GRU`` initialise their separate parameters: in the same
    order, the weights with the model's initializer, the biases at zero. The same seed
    therefore gives the same initial model as the Gluon layers would."""

    def __init__(self, pieces):
        super().__init__(pieces=pieces)
        #: [name, shape, offset into the packed array], in Gluon's registration order.
        self.pieces = pieces

    def _init_weight(self, desc, arr):
        for name, shape, offset in self.pieces:
            if name.endswith("_bias"):
                continue  # the array starts at zero
            piece = mx.nd.zeros(shape, ctx=arr.context, dtype=arr.dtype)
            desc.global_init._init_weight(mx.init.InitDesc(f"{desc}_{name}"), piece)
            arr[offset:offset + piece.size] = piece.reshape((-1,))


class FusedRecurrent(HybridBlock):
    """MXNet's fused recurrent operator (oneDNN on CPU) with its parameters packed in one.

    ``hybrid_forward(F, inputs (N, T, C), states)`` -> ``(outputs (N, T, D*hidden), states)``,
    ``states`` a list of (layers*D, N, hidden) arrays (LSTM: h and c; GRU: h), D = 2 when
    bidirectional. Gluon's ``rnn.LSTM`` computes the same function but keeps a parameter
    per matrix and concatenates them at every call: about 4 ms at hidden 300 on this CPU,
    a fifth of a seed decoder step at 1,000 rows. :meth:`unpacked` gives those matrices.
    """

    GATES = {"lstm": 4, "gru": 3}

    def __init__(self, mode: str, hidden: int, input_size: int, layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mode, self.hidden, self.layers, self.dropout = mode, hidden, layers, dropout
        self.directions = 2 if bidirectional else 1
        rows = self.GATES[mode] * hidden
        shapes, width = {}, input_size  # Gluon's names and registration order
        for layer in range(layers):
            for direction in "lr"[:self.directions]:
                name = f"{direction}{layer}"
                shapes.update({f"{name}_i2h_weight": (rows, width), f"{name}_h2h_weight": (rows, hidden),
                               f"{name}_i2h_bias": (rows,), f"{name}_h2h_bias": (rows,)})
            width = hidden * self.directions
        # The operator's layout: every weight, then every bias, by layer, direction, i2h/h2h.
        offsets, total = {}, 0
        for kind in ("_weight", "_bias"):
            for name, shape in shapes.items():
                if name.endswith(kind):
                    offsets[name] = total
                    total += int(np.prod(shape))
        self.pieces = [[name, list(shape), offsets[name]] for name, shape in shapes.items()]
        self.packed = self.params.get("packed", shape=(total,), init=PackedRecurrentInit(self.pieces))

    def hybrid_forward(self, F, inputs, states, packed):
        out = F.RNN(F.swapaxes(inputs, 0, 1), packed, *states, state_size=self.hidden,
                    num_layers=self.layers, bidirectional=self.directions == 2, p=self.dropout,
                    state_outputs=True, mode=self.mode)
        return F.swapaxes(out[0], 0, 1), list(out[1:])

    def unpacked(self) -> dict:
        """Gluon's parameter names (``l0_i2h_weight``, ...) -> their values, as NDArrays."""
        data = self.packed.data()
        return {name: data[offset:offset + int(np.prod(shape))].reshape(shape)
                for name, shape, offset in self.pieces}


@attrs.define
class RecurrentParams:
    """What encoders and decoders both take."""

    hidden: int = attrs.field(default=128, validator=[v.ge(1), v.le(8192)])
    layers: int = attrs.field(default=1, validator=[v.ge(1), v.le(16)])
    #: 0: one-hot inputs (the seed); n > 0: a learned embedding of size n.
    embedding: int = attrs.field(default=0, validator=[v.ge(0), v.le(8192)])
    #: Dropout between stacked layers.
    dropout: float = attrs.field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])


@attrs.define
class RecurrentEncoderParams(RecurrentParams):
    #: Read the source both ways; outputs and states are then 2 * hidden wide.
    #: The backward direction starts at the end of the padded source (the fused layer's
    #: sequence lengths are GPU-only for LSTM and missing for GRU in MXNet 1.9.1).
    bidirectional: bool = False


class RecurrentEncoder(Encoder):
    """A fused recurrent layer over the whole source.

    ``hybrid_forward(F, src (N, Ts), mask (N, Ts))`` -> ``(outputs (N, Ts, D*hidden),
    *states)``, each state (layers, N, D*hidden), D = 2 when bidirectional (the two
    directions' final states side by side) else 1.
    """

    Params = RecurrentEncoderParams
    #: The fused operator's mode ("lstm", "gru") and how many state arrays it carries.
    mode: str
    num_states: int

    def __init__(self, params: RecurrentEncoderParams, vocab_size: int, source_length: int, **kwargs):
        super().__init__(**kwargs)
        self.options = params
        self.vocab_size = vocab_size
        self.directions = 2 if params.bidirectional else 1
        self.output_size = self.state_size = params.hidden * self.directions
        self.num_layers = params.layers
        with self.name_scope():
            self.embed = nn.Embedding(vocab_size, params.embedding) if params.embedding else None
            self.rnn = FusedRecurrent(self.mode, params.hidden, params.embedding or vocab_size,
                                      params.layers, params.bidirectional, params.dropout)

    def hybrid_forward(self, F, src, mask):
        x = embed_inputs(F, self, src, self.vocab_size)
        begin = zero_states(F, src, self.options.layers * self.directions, self.options.hidden,
                            self.num_states)
        outputs, states = self.rnn(x, begin)
        if self.directions == 2:
            states = [join_directions(F, state) for state in states]
        return (outputs, *states)


@attrs.define
class RecurrentDecoderParams(RecurrentParams):
    #: Where attention reads and writes. "input" (the seed): from the step's input and
    #: the previous hidden state, into the recurrent layer's input; steps run one at a
    #: time. "output" (Luong): from the layer's output into the prediction; teacher
    #: forcing runs all steps in one fused call.
    attention_at: str = attrs.field(default="output", validator=v.in_(("input", "output")))
    #: BatchNorm over the decoder outputs before the output layer (the seed).
    batch_norm: bool = False


class OutputLayer(HybridBlock):
    """Optional BatchNorm (the seed's), then a Dense layer applied at every step.

    ``hybrid_forward(F, outputs (N, L, hidden))`` -> logits (N, L, V).
    """

    def __init__(self, hidden: int, vocab_size: int, batch_norm: bool, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            # On (N*L, hidden) with axis=1: the statistics of axis=2 on (N, L, hidden),
            # about twice as fast on CPU (docs/performance.md).
            self.norm = nn.BatchNorm(axis=1, in_channels=hidden) if batch_norm else None
            self.dense = nn.Dense(vocab_size, flatten=False, in_units=hidden)

    def hybrid_forward(self, F, outputs):
        if self.norm is not None:
            outputs = F.reshape_like(self.norm(F.reshape(outputs, (-3, 0))), outputs)
        return self.dense(outputs)


class RecurrentDecoder(Decoder):
    """Recurrent decoder step, with optional attention; BatchNorm in its output layer.

    ``hybrid_forward(F, tokens (N, L), memory (N, Ts, M), mask (N, Ts), *states)`` ->
    ``(outputs (N, L, hidden), weights (N, L, Ts), *states)``; each state (layers, N,
    hidden), the hidden state first. ``output_layer``: outputs -> logits (N, L, V).
    ``memory`` is :meth:`prepare_memory`'s: the attention's prepared memory, behind the
    context products (N, Ts, input) when the attention feeds the input (L = 1 there).
    """

    Params = RecurrentDecoderParams
    mode: str
    num_states: int

    def __init__(self, params: RecurrentDecoderParams, vocab_size: int, encoder: Encoder,
                 source_length: int, make_attention=None, **kwargs):
        super().__init__(**kwargs)
        self.options = params
        self.vocab_size = vocab_size
        p = params
        input_size = p.embedding or vocab_size
        self.attention_at = p.attention_at if make_attention is not None else None
        self.parallel = self.attention_at != "input"
        # The encoder's final states start the decoder when they fit; else a bridge.
        self.copy_states = (getattr(encoder, "state_size", None) == p.hidden
                            and getattr(encoder, "num_layers", None) == p.layers)
        with self.name_scope():
            self.embed = nn.Embedding(vocab_size, p.embedding) if p.embedding else None
            self.attention = None
            if self.attention_at == "input":
                self.attention = make_attention(input_size + p.hidden, encoder.output_size)
                # A Dense over concat(input, context), as the seed's; kept as one matrix
                # (initialised as that Dense). When the attention's context is linear in its
                # weights, the context columns are applied to the encoder outputs once per
                # source (prepare_memory) and a step only weighs those products: the seed's
                # flattened context (N, Ts * M) is never built.
                self.input_size = input_size
                self.precompute_context = self.attention.context_is_linear
                self.combine_weight = self.params.get(
                    "combine_weight", shape=(input_size, input_size + self.attention.context_size))
                self.combine_bias = self.params.get("combine_bias", shape=(input_size,), init="zeros")
            elif self.attention_at == "output":
                self.attention = make_attention(p.hidden, encoder.output_size)
                self.combine = nn.Dense(p.hidden, flatten=False, activation="tanh",
                                        in_units=p.hidden + self.attention.context_size)
            self.rnn = FusedRecurrent(self.mode, p.hidden, input_size, p.layers, dropout=p.dropout)
            self.bridge = None if self.copy_states else nn.Dense(
                p.hidden * p.layers, activation="tanh", in_units=encoder.state_size)
            self.output_layer = OutputLayer(p.hidden, vocab_size, p.batch_norm)

    def init_state(self, F, memory, mask, encoder_states):
        p = self.options
        if self.copy_states:
            h = encoder_states[0]
            # An LSTM encoder's cell state goes on to an LSTM decoder; a GRU has none.
            copied = list(encoder_states[1:self.num_states])
        else:
            last = F.squeeze(F.slice_axis(encoder_states[0], axis=0, begin=-1, end=None), axis=0)
            h = F.reshape(self.bridge(last), (0, p.layers, p.hidden))  # (N, layers, hidden)
            h = F.transpose(h, axes=(1, 0, 2))
            copied = []
        return [h, *copied] + [F.zeros_like(h) for _ in range(self.num_states - 1 - len(copied))]

    def prepare_memory(self, F, memory):
        """The attention's memory; with attention at the input and a linear context, the
        products of the combine matrix's context columns with every encoder output
        (N, Ts, input) go in front of it (see :meth:`Attention.project_outputs`)."""
        prepared = super().prepare_memory(F, memory)
        if self.attention_at != "input" or not self.precompute_context:
            return prepared
        # Called from Seq2Seq.encode, outside this block's own forward: the parameter is
        # read as Gluon would pass it, a symbol while a graph is being built.
        weight = (self.combine_weight.var() if isinstance(memory, mx.sym.Symbol)
                  else self.combine_weight.data(memory.context))
        context_columns = F.slice_axis(weight, axis=1, begin=self.input_size, end=None)
        projected = self.attention.project_outputs(F, memory, context_columns)
        return concat_features(F, projected, prepared)

    def hybrid_forward(self, F, tokens, memory, mask, *states, combine_weight=None, combine_bias=None):
        x = embed_inputs(F, self, tokens, self.vocab_size)  # (N, L, input)
        weights = None
        if self.attention_at == "input":
            top = F.slice_axis(states[0], axis=0, begin=-1, end=None)  # last layer's hidden
            previous = F.expand_dims(F.squeeze(top, axis=0), axis=1)  # (N, 1, hidden)
            if self.precompute_context:
                projected = F.slice_axis(memory, axis=2, begin=0, end=self.input_size)
                memory = F.slice_axis(memory, axis=2, begin=self.input_size, end=None)
            context, weights = self.attention(concat_features(F, x, previous), memory, mask)
            if self.precompute_context:
                from_context = F.batch_dot(weights, projected)  # (N, L, input)
            else:
                context_columns = F.slice_axis(combine_weight, axis=1, begin=self.input_size, end=None)
                from_context = F.dot(context, context_columns, transpose_b=True)
            x_columns = F.slice_axis(combine_weight, axis=1, begin=0, end=self.input_size)
            x = F.FullyConnected(x, x_columns, combine_bias, num_hidden=self.input_size,
                                 flatten=False) + from_context
        outputs, states = self.rnn(x, list(states))  # (N, L, hidden)
        if self.attention_at == "output":
            context, weights = self.attention(outputs, memory, mask)
            outputs = self.combine(concat_features(F, outputs, context))
        if weights is None:
            weights = no_attention_weights(F, outputs, mask)
        return (outputs, weights, *states)
