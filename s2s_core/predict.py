"""Answering inputs with a trained run: one answer or one error per input."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import mxnet as mx
import numpy as np

from .data import pad_rows
from .errors import InputError
from .rundir import LoadedRun
from .search import decode_arrays
from .train import decode_texts


@attrs.define
class Answer:
    text: str  # the input as given
    output: str | None = None  # None when the input could not be encoded
    error: str | None = None
    unknown: list[str] = attrs.field(factory=list)  # tokens mapped to <unk>
    source_tokens: list[str] = attrs.field(factory=list)
    output_tokens: list[str] = attrs.field(factory=list)
    weights: np.ndarray | None = None  # (len(output_tokens) + 1, Ts) incl. the end step


def predict(run: LoadedRun, texts: Sequence[str], ctx: mx.Context | None = None, *,
            beam: int = 1, alpha: float = 0.0) -> list[Answer]:
    """Decode every text that encodes; the others get their error. Order is kept.

    ``beam`` 1 is greedy search; more is beam search of that width, ranking hypotheses
    by GNMT's length penalty ``alpha`` (0: by log-probability alone).
    """
    answers = [Answer(text) for text in texts]
    rows, good = [], []
    for i, answer in enumerate(answers):
        try:
            ids, answer.unknown = run.task.encode_source(answer.text, run.source_vocab)
        except InputError as exc:
            answer.error = str(exc)
            continue
        answer.source_tokens = run.task.source_tokens(answer.text)
        rows.append(ids)
        good.append(answer)
    if rows:
        src = pad_rows(rows, run.task.max_source_length)
        ids, weights = decode_arrays(run.model, src, ctx, beam=beam, alpha=alpha)
        outputs = decode_texts(run.task, run.target_vocab, ids)
        for answer, output, row, w in zip(good, outputs, ids, weights):
            answer.output = output
            answer.output_tokens = run.target_vocab.decode(row)
            steps = min(len(answer.output_tokens) + 1, len(row))
            answer.weights = w[:steps, :len(answer.source_tokens)]
    return answers
