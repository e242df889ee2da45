"""The four things a plugin can contribute: Task, Encoder, Decoder, Attention.

Every class carries a ``Params`` attrs class: the keys its TOML table accepts. The
network parts are Gluon HybridBlocks so that a whole model hybridizes.

Shapes use N = batch, Ts = source length, L = decoder steps in one call, V = vocabulary.
Token ids travel as float32 arrays (MXNet's default dtype), padding id 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import attrs
from mxnet import gluon

from .errors import InputError
from .vocab import Vocabulary

Pair = tuple[str, str]  # (source text, target text)


@attrs.define
class NoParams:
    """For a plugin without options."""


class Task:
    """Data, tokenisation, detokenisation and metrics of one kind of problem.

    Subclasses set ``Params`` and implement :meth:`load_data`, :attr:`max_source_length`
    and :attr:`max_target_length`. The defaults tokenise by character and report
    exact match and per-character accuracy.
    """

    Params: type = NoParams
    #: The validation metric that picks the best epoch.
    primary_metric = "exact_match"

    def __init__(self, params):
        self.options = params

    # -- data -------------------------------------------------------------------------
    def load_data(self, seed: int) -> tuple[list[Pair], list[Pair]]:
        """(train, validation) pairs; the same ``seed`` must give the same pairs."""
        raise NotImplementedError

    @property
    def max_source_length(self) -> int:
        """Most source tokens a model of this task accepts."""
        raise NotImplementedError

    @property
    def max_target_length(self) -> int:
        """Most target tokens (before the end token) the model produces."""
        raise NotImplementedError

    # -- tokens -----------------------------------------------------------------------
    def source_tokens(self, text: str) -> list[str]:
        return list(text)

    def target_tokens(self, text: str) -> list[str]:
        return list(text)

    def target_text(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def source_text(self, tokens: Sequence[str]) -> str:
        """Only for display (attention plots): how a source token reads."""
        return "".join(tokens)

    def build_vocabularies(self, train: Sequence[Pair]) -> tuple[Vocabulary, Vocabulary]:
        """(source, target) vocabularies from the training pairs."""
        src = sorted({t for s, _ in train for t in self.source_tokens(s)})
        tgt = sorted({t for _, t in train for t in self.target_tokens(t)})
        return Vocabulary(src), Vocabulary(tgt)

    def encode_source(self, text: str, vocab: Vocabulary) -> tuple[list[int], list[str]]:
        """Ids of one source text and the tokens that were unknown (mapped to ``<unk>``).

        Raises :class:`InputError` for text this task cannot take.
        """
        undecodable = re.search("[\ud800-\udfff]", text)  # bytes that were not UTF-8 (surrogateescape)
        if undecodable:
            byte = ord(undecodable.group()) - 0xDC00
            raise InputError(f"{_show(text)}: not UTF-8 text"
                             + (f" (byte 0x{byte:02x})" if 0x80 <= byte <= 0xFF else ""))
        tokens = self.source_tokens(text)
        if not tokens:
            raise InputError(f"{_show(text)}: empty input")
        if len(tokens) > self.max_source_length:
            raise InputError(f"{_show(text)}: {len(tokens)} tokens, longer than the "
                             f"{self.max_source_length} this model accepts")
        unknown = vocab.unknown(tokens)
        if unknown and vocab.unk_id is None:
            shown = ", ".join(repr(t) for t in unknown[:5])
            raise InputError(f"{_show(text)}: not in the vocabulary: {shown}")
        return vocab.encode(tokens), unknown

    # -- results ----------------------------------------------------------------------
    def metrics(self, hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """Validation metrics of decoded texts against references."""
        return {"exact_match": exact_match(hypotheses, references),
                "char_accuracy": char_accuracy(hypotheses, references,
                                               self.max_target_length + 1)}

    def format_sample(self, source: str, prediction: str, truth: str) -> str:
        return f"{source} = {prediction} ({truth})"


def _show(text: str) -> str:
    text = repr(text)
    return text if len(text) <= 50 else text[:47] + "...'"


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Fraction of hypotheses equal to their reference."""
    if not references:
        return 0.0
    return sum(h == r for h, r in zip(hypotheses, references)) / len(references)


def char_accuracy(hypotheses: Sequence[str], references: Sequence[str], width: int) -> float:
    """Per-position accuracy over fixed-width, padded strings (Keras' addition example).

    Both strings are padded with an end marker to ``width`` characters and compared
    position by position, padding included, as Keras' categorical accuracy over its
    space-padded answers does.
    """
    if not references:
        return 0.0
    hits = 0
    for h, r in zip(hypotheses, references):
        h = (h + "\0" * width)[:width]
        r = (r + "\0" * width)[:width]
        hits += sum(a == b for a, b in zip(h, r))
    return hits / (width * len(references))


class Encoder(gluon.HybridBlock):
    """Source ids -> memory for attention and the state the decoder starts from.

    ``__init__(params, vocab_size, source_length)``.
    ``hybrid_forward(F, src, mask)``: ``src`` (N, Ts) ids, ``mask`` (N, Ts) 1 for real
    tokens. Returns ``(outputs, *states)``: ``outputs`` (N, Ts, output_size) and the
    final recurrent states, ``states[0]`` being the hidden state (layers, N, state_size)
    and, for an LSTM, ``states[1]`` the cell state of the same shape. A bidirectional
    encoder puts its two directions' states side by side (state_size = 2 * hidden), so
    a decoder can copy them as they are or bridge them like any other.
    """

    Params: type = NoParams
    output_size: int
    state_size: int
    num_layers: int


#: ``make_attention(query_size, memory_size) -> Attention``, passed to decoders.
AttentionFactory = Callable[[int, int], "Attention"]


class Decoder(gluon.HybridBlock):
    """The decoder step: the one place decoder logic lives.

    ``__init__(params, vocab_size, encoder, source_length, make_attention)``, where
    ``make_attention`` is None when no attention is configured.

    ``hybrid_forward(F, tokens, memory, mask, *states)``: ``tokens`` (N, L) the previous
    output ids, ``memory`` (N, Ts, M) from :meth:`prepare_memory`, ``mask`` (N, Ts). Returns
    ``(outputs, weights, *new_states)``: ``outputs`` (N, L, H) for :attr:`output_layer`,
    ``weights`` (N, L, Ts) the attention weights (zeros without attention).

    ``output_layer``: a child HybridBlock, ``outputs`` (N, L, H) -> logits (N, L, V). It is
    kept out of the step so that teacher forcing applies it once to all steps: a layer
    with batch statistics (the seed's BatchNorm) then sees every step together, as it
    does in the seed, even when the steps themselves run one at a time.

    Teacher forcing, greedy and beam search all call these two (decoding through
    :meth:`s2s_core.model.Seq2Seq.step`). When :attr:`parallel` is true, step t does not
    depend on step t-1's outputs except through the given tokens, so teacher forcing
    may pass all L target steps in one call; otherwise it is called once per step.
    """

    Params: type = NoParams
    parallel: bool = False
    #: Axis of the batch in every state array (beam search reorders along it).
    state_batch_axis: int = 1

    def init_state(self, F, memory, mask, encoder_states: Sequence) -> list:
        """The decoder's first states from the encoder's outputs and final states."""
        raise NotImplementedError

    def prepare_memory(self, F, memory):
        """Once per source: what each step receives as ``memory`` (the attention's
        :meth:`Attention.prepare` of the encoder outputs when there is an attention)."""
        attention = getattr(self, "attention", None)
        return memory if attention is None else attention.prepare(F, memory)


class Attention(gluon.HybridBlock):
    """Weights over the encoder's steps and the weighted sum of its outputs.

    ``__init__(params, query_size, memory_size, source_length)``.
    ``hybrid_forward(F, query, memory, mask)``: ``query`` (N, L, query_size), ``memory``
    (N, Ts, M) what :meth:`prepare` made of the encoder outputs, ``mask`` (N, Ts).
    Returns ``(context, weights)``: ``context`` (N, L, context_size) and ``weights`` (N, L, Ts), each row summing to 1 over the real
    (unmasked) source positions.
    """

    Params: type = NoParams

    def __init__(self, params, query_size: int, memory_size: int, source_length: int, **kwargs):
        super().__init__(**kwargs)
        self.options = params
        #: Width of the context this attention returns.
        self.context_size = memory_size

    def prepare(self, F, memory):
        """Work done once per source sentence (e.g. projecting keys); the step then
        receives this instead of the encoder's outputs. Default: the outputs as they are."""
        return memory

    #: True when the context is linear in the weights and :meth:`project_outputs` is
    #: implemented; a decoder then never multiplies a context by a matrix step by step.
    context_is_linear = False

    def project_outputs(self, F, outputs, weight):
        """Per-position products ``P`` (N, Ts, C) with ``weight . context == weights . P``.

        ``outputs`` (N, Ts, M) are the encoder's outputs, ``weight`` (C, context_size) a
        matrix a decoder multiplies the context by. When the context is a weighted sum of
        the outputs (or the seed's flattened weighted outputs), ``P`` depends on the
        source alone: the decoder computes it once per source (:meth:`Decoder.prepare_memory`)
        and each step only takes a weighted sum of Ts rows, ``batch_dot(weights, P)``.
        Only called when :attr:`context_is_linear` is true.
        """
        raise NotImplementedError


def concat_features(F, *arrays):
    """(N, L, D1), (N, L, D2), ... -> (N, L, D1 + D2 + ...), along the last axis.

    Through (N * L, D) arrays joined along axis 1: MXNet 1.9's concat along the last
    axis of 3-d arrays is about ten times slower on CPU (it takes oneDNN's path only for
    2-d and 4-d arrays), which made it a tenth of the seed model's decoding time.
    """
    joined = F.concat(*[F.reshape(a, (-3, 0)) for a in arrays], dim=1)
    return F.reshape_like(joined, arrays[0], lhs_begin=0, lhs_end=1, rhs_begin=0, rhs_end=2)


def masked_softmax(F, scores, mask):
    """Softmax of ``scores`` (N, L, Ts) over Ts, with padded positions (mask 0) at 0."""
    penalty = F.expand_dims((1 - mask) * -1e9, axis=1)
    return F.softmax(F.broadcast_add(scores, penalty), axis=-1)


def no_attention_weights(F, outputs, mask):
    """All-zero weights (N, L, Ts) for decoders without attention; ``outputs`` (N, L, ...)."""
    return F.broadcast_mul(F.expand_dims(mask * 0, axis=1),
                           F.zeros_like(F.slice_axis(outputs, axis=2, begin=0, end=1)))
