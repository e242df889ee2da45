"""``lstm`` encoder and decoder, on MXNet's fused (oneDNN) ``rnn.LSTM`` layer."""

from __future__ import annotations

import attrs
from attrs import validators as v
from mxnet.gluon import nn, rnn

from s2s_core.hooks import hookimpl
from s2s_core.interfaces import Decoder, Encoder, masked_softmax, no_attention_weights  # noqa: F401


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


@attrs.define
class LSTMEncoderParams:
    hidden: int = attrs.field(default=128, validator=[v.ge(1), v.le(8192)])
    layers: int = attrs.field(default=1, validator=[v.ge(1), v.le(16)])
    #: 0: one-hot inputs (the seed); n > 0: a learned embedding of size n.
    embedding: int = attrs.field(default=0, validator=[v.ge(0), v.le(8192)])
    #: Dropout between stacked layers.
    dropout: float = attrs.field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])


class LSTMEncoder(Encoder):
    """Fused LSTM over the whole source.

    ``hybrid_forward(F, src (N, Ts), mask (N, Ts))`` -> ``(outputs (N, Ts, hidden),
    h (layers, N, hidden), c (layers, N, hidden))``.
    """

    Params = LSTMEncoderParams

    def __init__(self, params: LSTMEncoderParams, vocab_size: int, source_length: int, **kwargs):
        super().__init__(**kwargs)
        self.options = params
        self.vocab_size = vocab_size
        self.output_size = self.state_size = params.hidden
        self.num_layers = params.layers
        with self.name_scope():
            self.embed = nn.Embedding(vocab_size, params.embedding) if params.embedding else None
            self.rnn = rnn.LSTM(params.hidden, num_layers=params.layers, layout="NTC",
                                dropout=params.dropout, input_size=params.embedding or vocab_size)

    def hybrid_forward(self, F, src, mask):
        x = embed_inputs(F, self, src, self.vocab_size)
        begin = zero_states(F, src, self.options.layers, self.options.hidden, 2)
        outputs, states = self.rnn(x, begin)
        return (outputs, *states)


@attrs.define
class LSTMDecoderParams:
    hidden: int = attrs.field(default=128, validator=[v.ge(1), v.le(8192)])
    layers: int = attrs.field(default=1, validator=[v.ge(1), v.le(16)])
    #: 0: one-hot inputs (the seed); n > 0: a learned embedding of size n.
    embedding: int = attrs.field(default=0, validator=[v.ge(0), v.le(8192)])
    dropout: float = attrs.field(default=0.0, validator=[v.ge(0.0), v.lt(1.0)])
    #: Where attention reads and writes. "input" (the seed): from the step's input and
    #: the previous hidden state, into the LSTM's input; steps run one at a time.
    #: "output" (Luong): from the LSTM's output into the prediction; teacher forcing
    #: runs all steps in one fused call.
    attention_at: str = attrs.field(default="output", validator=v.in_(("input", "output")))
    #: BatchNorm over the decoder outputs before the output layer (the seed).
    batch_norm: bool = False


class LSTMDecoder(Decoder):
    """LSTM decoder step, with optional attention and BatchNorm.

    ``hybrid_forward(F, tokens (N, L), memory (N, Ts, M), mask (N, Ts), h, c)`` ->
    ``(logits (N, L, V), weights (N, L, Ts), h, c)``; h and c (layers, N, hidden).
    """

    Params = LSTMDecoderParams

    def __init__(self, params: LSTMDecoderParams, vocab_size: int, encoder: Encoder,
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
                self.combine = nn.Dense(input_size, flatten=False,
                                        in_units=input_size + self.attention.context_size)
            elif self.attention_at == "output":
                self.attention = make_attention(p.hidden, encoder.output_size)
                self.combine = nn.Dense(p.hidden, flatten=False, activation="tanh",
                                        in_units=p.hidden + self.attention.context_size)
            self.rnn = rnn.LSTM(p.hidden, num_layers=p.layers, layout="NTC",
                                dropout=p.dropout, input_size=input_size)
            self.bridge = None if self.copy_states else nn.Dense(
                p.hidden * p.layers, activation="tanh", in_units=encoder.state_size)
            self.norm = nn.BatchNorm(axis=2, in_channels=p.hidden) if p.batch_norm else None
            self.out = nn.Dense(vocab_size, flatten=False, in_units=p.hidden)

    def init_state(self, F, memory, mask, encoder_states):
        if self.copy_states and len(encoder_states) == 2:
            return list(encoder_states)
        p = self.options
        last = F.squeeze(F.slice_axis(encoder_states[0], axis=0, begin=-1, end=None), axis=0)
        h = F.reshape(self.bridge(last), (0, p.layers, p.hidden))  # (N, layers, hidden)
        h = F.transpose(h, axes=(1, 0, 2))
        return [h, F.zeros_like(h)]

    def hybrid_forward(self, F, tokens, memory, mask, h, c):
        x = embed_inputs(F, self, tokens, self.vocab_size)  # (N, L, input)
        weights = None
        if self.attention_at == "input":
            previous = F.expand_dims(F.squeeze(F.slice_axis(h, axis=0, begin=-1, end=None), axis=0), axis=1)
            context, weights = self.attention(F.concat(x, previous, dim=2), memory, mask)
            x = self.combine(F.concat(x, context, dim=2))
        outputs, (h, c) = self.rnn(x, [h, c])  # (N, L, hidden)
        if self.attention_at == "output":
            context, weights = self.attention(outputs, memory, mask)
            outputs = self.combine(F.concat(outputs, context, dim=2))
        if self.norm is not None:
            outputs = self.norm(outputs)
        logits = self.out(outputs)
        if weights is None:
            weights = no_attention_weights(F, logits, mask)
        return logits, weights, h, c


@hookimpl
def s2s_encoders():
    return {"lstm": LSTMEncoder}


@hookimpl
def s2s_decoders():
    return {"lstm": LSTMDecoder}
