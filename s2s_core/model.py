"""The sequence-to-sequence model assembled from an encoder and a decoder."""

from __future__ import annotations

import warnings

from mxnet import gluon

from .interfaces import Decoder, Encoder

# Encoders get the source mask whether or not they use it, and a decoder's bridge
# layer runs in init_state, outside its step graph: Gluon warns about both.
for _message in (r"The \d+-th input to HybridBlock is not used", r"Parameter .* is not used by any"):
    warnings.filterwarnings("ignore", message=_message, category=UserWarning)


class Seq2Seq(gluon.HybridBlock):
    """Encoder + decoder; ``hybrid_forward`` is teacher forcing.

    ``hybrid_forward(F, src, tgt_in)``: ``src`` (N, Ts) source ids, ``tgt_in`` (N, Lt)
    start token followed by the target ids. Returns logits (N, Lt, V).
    ``target_steps`` = Lt is fixed when the model is built, so the graph is static.
    """

    def __init__(self, encoder: Encoder, decoder: Decoder, target_steps: int, **kwargs):
        super().__init__(**kwargs)
        self.target_steps = target_steps
        with self.name_scope():
            self.encoder = encoder
            self.decoder = decoder

    def encode(self, F, src):
        """-> (memory, mask, states): what every decoder step needs, once per source."""
        mask = F.clip(src, 0, 1)  # padding id is 0; every other id is >= 1
        encoded = self.encoder(src, mask)
        outputs, encoder_states = encoded[0], list(encoded[1:])
        states = self.decoder.init_state(F, outputs, mask, encoder_states)
        return self.decoder.prepare_memory(F, outputs), mask, list(states)

    def step(self, tokens, memory, mask, states):
        """One decoding step: -> (logits (N, L, V), weights (N, L, Ts), new states)."""
        out = self.decoder(tokens, memory, mask, *states)
        return self.decoder.output_layer(out[0]), out[1], list(out[2:])

    def hybrid_forward(self, F, src, tgt_in):
        memory, mask, states = self.encode(F, src)
        if self.decoder.parallel:
            outputs = self.decoder(tgt_in, memory, mask, *states)[0]
        else:
            steps = []
            for t in range(self.target_steps):
                step_in = F.slice_axis(tgt_in, axis=1, begin=t, end=t + 1)
                out = self.decoder(step_in, memory, mask, *states)
                steps.append(out[0])
                states = out[2:]
            # (N, 1, H) each -> (N, L * H) -> (N, L, H): a 2-d concat (see concat_features).
            outputs = F.reshape(F.concat(*[F.reshape(step, (0, -1)) for step in steps], dim=1),
                                (0, self.target_steps, -1))
        return self.decoder.output_layer(outputs)


class TeacherForcedLoss(gluon.HybridBlock):
    """Summed cross-entropy of a :class:`Seq2Seq` over the real (non-padding) targets.

    ``hybrid_forward(F, src, tgt_in, tgt_out)`` -> (1,) sum of the token losses;
    ``tgt_out`` (N, Lt) is the target ids followed by the end token, 0-padded.
    Wrapping model and loss in one block lets the whole step hybridize as one graph.
    """

    def __init__(self, model: Seq2Seq, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.model = model

    def hybrid_forward(self, F, src, tgt_in, tgt_out):
        logits = self.model(src, tgt_in)
        nll = -F.pick(F.log_softmax(logits, axis=-1), tgt_out, axis=-1)
        return F.sum(nll * F.clip(tgt_out, 0, 1))
