"""Texts -> padded id arrays, and batches of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import attrs
import numpy as np

from .interfaces import Pair, Task
from .vocab import BOS_ID, EOS_ID, PAD_ID, Vocabulary


@attrs.frozen
class Arrays:
    """A data set as arrays: ``src`` (N, Ts), ``tgt_in`` and ``tgt_out`` (N, Lt), float32.

    ``tgt_in`` is the start token then the target; ``tgt_out`` the target then the end
    token; both padded with 0 to Lt = task.max_target_length + 1.
    """

    src: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray

    def __len__(self) -> int:
        return len(self.src)


def pad_rows(rows: Sequence[Sequence[int]], width: int) -> np.ndarray:
    out = np.full((len(rows), width), PAD_ID, dtype=np.float32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def encode_pairs(task: Task, src_vocab: Vocabulary, tgt_vocab: Vocabulary,
                 pairs: Sequence[Pair]) -> Arrays:
    """Arrays for training or validation; pairs the task produced itself must encode."""
    steps = task.max_target_length + 1
    src_rows, tgt_rows = [], []
    for source, target in pairs:
        src_rows.append(task.encode_source(source, src_vocab)[0])
        tgt = tgt_vocab.encode(task.target_tokens(target))[:task.max_target_length]
        tgt_rows.append(tgt)
    return Arrays(pad_rows(src_rows, task.max_source_length),
                  pad_rows([[BOS_ID] + t for t in tgt_rows], steps),
                  pad_rows([t + [EOS_ID] for t in tgt_rows], steps))


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None,
            drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index arrays of ``batch_size`` (shuffled when ``rng`` is given).

    With ``drop_last`` the ragged tail is skipped (training: every batch has one
    shape, which static hybridized graphs want; a shuffle puts those rows in
    another batch next epoch).
    """
    order = rng.permutation(n) if rng is not None else np.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def pad_batch(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with padding rows appended up to ``size`` rows (keeps one batch shape)."""
    if len(array) == size:
        return array
    pad = np.zeros((size - len(array),) + array.shape[1:], dtype=array.dtype)
    return np.concatenate([array, pad])
