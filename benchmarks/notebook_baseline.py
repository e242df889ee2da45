"""The seed notebook's way of doing things, rebuilt from the seed brief as a baseline.

Deliberately *not* s2s code: an ``LSTMCell`` unrolled step by step for the encoder
and the decoder, the seed's concat attention with the flattened weighted encoder
outputs, one-hot inputs, BatchNorm(axis=2) over the decoder outputs, a per-step
Dense, RMSProp, a host read of the loss after every batch, ``hybridize()`` on the
model only, and inference one question at a time reading every character back to
the host. As in the notebook, the decoder step is written twice (training and
inference): that is part of what is being measured against.
"""

from __future__ import annotations

import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd
from mxnet.gluon import nn, rnn

VOCAB = "0123456789+SE "  # the seed's 14 symbols
LENGTH = 9  # input and output length (post 2)
CHAR = {c: i for i, c in enumerate(VOCAB)}


def encode_text(text: str) -> list[int]:
    return [CHAR[c] for c in text.ljust(LENGTH)]


def seed_arrays(pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Question ``S{a}+{b}E``, decoder input ``S{sum}E`` and target ``{sum}E``, padded to 9."""
    src = np.array([encode_text(f"S{q}E") for q, _ in pairs], dtype=np.float32)
    dec_in = np.array([encode_text(f"S{a}E") for _, a in pairs], dtype=np.float32)
    target = np.array([encode_text(f"{a}E") for _, a in pairs], dtype=np.float32)
    return src, dec_in, target


class NotebookModel(gluon.HybridBlock):
    """The seed's post-2 model, unrolled by hand."""

    def __init__(self, hidden=300, vocab=len(VOCAB), length=LENGTH, **kwargs):
        super().__init__(**kwargs)
        self.hidden, self.vocab, self.length = hidden, vocab, length
        with self.name_scope():
            self.encoder = rnn.LSTMCell(hidden, input_size=vocab)
            self.decoder = rnn.LSTMCell(hidden, input_size=vocab)
            self.attn_weight = nn.Dense(length, in_units=vocab + hidden)
            self.attn_combine = nn.Dense(vocab, in_units=vocab + length * hidden)
            self.batchnorm = nn.BatchNorm(axis=2, in_channels=hidden)
            self.dense = nn.Dense(vocab, flatten=False, in_units=hidden)

    def encode(self, F, inputs):
        """inputs (N, 9, V) one-hot -> encoder outputs (N, 9, H), final [h, c]."""
        h = F.zeros_like(F.slice_axis(F.slice_axis(inputs, axis=1, begin=0, end=1), axis=2, begin=0, end=1))
        h = F.tile(F.reshape(h, (-1, 1)), reps=(1, self.hidden))
        states = [h, F.zeros_like(h)]
        outputs = []
        for t in range(self.length):
            x = F.reshape(F.slice_axis(inputs, axis=1, begin=t, end=t + 1), (-1, self.vocab))
            out, states = self.encoder(x, states)
            outputs.append(F.expand_dims(out, axis=1))
        return F.concat(*outputs, dim=1), states

    def hybrid_forward(self, F, inputs, outputs):
        enc_out, states = self.encode(F, inputs)
        decoded = []
        for t in range(self.length):
            x = F.reshape(F.slice_axis(outputs, axis=1, begin=t, end=t + 1), (-1, self.vocab))
            weights = F.softmax(self.attn_weight(F.concat(x, states[0], dim=1)))  # (N, 9)
            weighted = F.broadcast_mul(enc_out, F.expand_dims(weights, axis=2))
            x = self.attn_combine(F.concat(x, F.flatten(weighted), dim=1))
            out, states = self.decoder(x, states)
            decoded.append(F.expand_dims(out, axis=1))
        return self.dense(self.batchnorm(F.concat(*decoded, dim=1)))

    def predict_one(self, question: str) -> str:
        """One question, one character at a time, each read back to the host (the seed's
        loop); the attention weights are kept for plotting, as the seed keeps them."""
        inputs = nd.one_hot(nd.array([encode_text(f"S{question}E")]), self.vocab)
        enc_out, states = self.encode(nd, inputs)
        x = nd.one_hot(nd.array([CHAR["S"]]), self.vocab)
        answer, kept = "", None
        for _ in range(self.length):
            weights = nd.softmax(self.attn_weight(nd.concat(x, states[0], dim=1)))
            kept = weights if kept is None else nd.concat(kept, weights, dim=0)
            weighted = nd.broadcast_mul(enc_out, nd.expand_dims(weights, axis=2))
            x = self.attn_combine(nd.concat(x, nd.flatten(weighted), dim=1))
            out, states = self.decoder(x, states)
            logits = self.dense(self.batchnorm(nd.expand_dims(out, axis=1)))
            char = VOCAB[int(logits.argmax(axis=2).asscalar())]
            if char in "E ":
                break
            answer += char
            x = nd.one_hot(nd.array([CHAR[char]]), self.vocab)
        return answer


def make_trainer(model: NotebookModel) -> gluon.Trainer:
    return gluon.Trainer(model.collect_params(), "rmsprop")


def train_batches(model, trainer, arrays, batch_size: int, batches: int, start: int = 0) -> list[float]:
    """``batches`` training steps as the notebook does them; returns the loss of each."""
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss(axis=2, sparse_label=False)
    src, dec_in, target = arrays
    losses = []
    for b in range(start, start + batches):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        x = nd.one_hot(nd.array(src[sl]), len(VOCAB))
        y_in = nd.one_hot(nd.array(dec_in[sl]), len(VOCAB))
        y = nd.one_hot(nd.array(target[sl]), len(VOCAB))
        with autograd.record():
            loss = loss_fn(model(x, y_in), y)
        loss.backward()
        trainer.step(batch_size)
        losses.append(float(loss.mean().asscalar()))  # the notebook's per-batch host read
    return losses


def build(seed: int = 0, hidden: int = 300) -> NotebookModel:
    mx.random.seed(seed)
    model = NotebookModel(hidden)
    model.initialize(mx.init.Xavier())
    model.hybridize()
    return model


def time_predict_one(model: NotebookModel, questions) -> tuple[float, list[str]]:
    """Questions per second answering one at a time, and the answers."""
    model.predict_one(questions[0])
    tick = time.perf_counter()
    answers = [model.predict_one(q) for q in questions]
    return len(questions) / (time.perf_counter() - tick), answers
