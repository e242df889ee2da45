"""Training: teacher forcing, per-epoch validation by greedy decoding, run directory."""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import attrs
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon, nd

from . import plots, rundir
from .build import build_model
from .config import Config
from .data import Arrays, batches, encode_pairs, pad_batch
from .errors import TrainingError
from .interfaces import Pair, Task
from .model import Seq2Seq, TeacherForcedLoss
from .search import decode_arrays
from .vocab import Vocabulary


def seed_everything(seed: int) -> None:
    """Python's, numpy's and MXNet's generators; MXNet's repeats itself unseeded."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    mx.random.seed(seed)


class Console:
    """Where training talks: colours and a progress bar only on a terminal."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False):
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def print(self, text: str = "") -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def mark(self, ok: bool) -> str:
        if self.tty:
            return "\033[32m\u2714\033[0m" if ok else "\033[31m\u2718\033[0m"
        return "ok" if ok else "wrong"

    def progress(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, leave=False, unit="batch", file=sys.stderr,
                    disable=self.quiet or not (self.tty and sys.stderr.isatty()))


@attrs.define
class Result:
    run_dir: Path
    history: list[dict]
    best: dict


@attrs.define
class Session:
    """Everything a training run works with, built from a config."""

    config: Config
    task: Task
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    train_pairs: list[Pair]
    valid_pairs: list[Pair]
    train_data: Arrays
    valid_data: Arrays
    model: Seq2Seq
    loss: TeacherForcedLoss
    trainer: gluon.Trainer
    ctx: mx.Context


def prepare(config: Config, ctx: mx.Context | None = None) -> Session:
    """Data, vocabularies, model and optimizer for ``config``, seeded."""
    ctx = ctx or mx.cpu()
    tc = config.training
    seed_everything(tc.seed)
    task = config.task.build()
    train_pairs, valid_pairs = task.load_data(tc.seed)
    source_vocab, target_vocab = task.build_vocabularies(train_pairs)
    train_data = encode_pairs(task, source_vocab, target_vocab, train_pairs)
    valid_data = encode_pairs(task, source_vocab, target_vocab, valid_pairs)
    model = build_model(config, task, source_vocab, target_vocab)
    model.initialize(mx.init.create(tc.initializer, **tc.initializer_params), ctx=ctx)
    loss = TeacherForcedLoss(model)
    if tc.hybridize:
        loss.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(model.collect_params(), tc.optimizer, dict(tc.optimizer_params))
    return Session(config, task, source_vocab, target_vocab, train_pairs, valid_pairs,
                   train_data, valid_data, model, loss, trainer, ctx)


def _batch(session: Session, data: Arrays, index: np.ndarray, size: int):
    ctx = session.ctx
    return (nd.array(pad_batch(data.src[index], size), ctx=ctx),
            nd.array(pad_batch(data.tgt_in[index], size), ctx=ctx),
            nd.array(pad_batch(data.tgt_out[index], size), ctx=ctx))


def train_step(session: Session, index: np.ndarray) -> tuple[nd.NDArray, int]:
    """One optimizer step on the training rows ``index``.

    Returns the summed token loss, still on the device (reading it would wait for the
    step), and the number of target tokens it covers.
    """
    data = session.train_data
    src, tgt_in, tgt_out = _batch(session, data, index, len(index))
    count = int(np.count_nonzero(data.tgt_out[index]))  # host-side: no sync
    with autograd.record():
        loss = session.loss(src, tgt_in, tgt_out)
    loss.backward()
    clip = session.config.training.clip_gradient
    if clip is not None:
        params = [p for p in session.model.collect_params().values() if p.grad_req != "null"]
        gluon.utils.clip_global_norm([p.grad(session.ctx) for p in params], clip * count)
    session.trainer.step(count)
    return loss, count


def train_batches(session: Session, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's shuffled row indices, in batches of one size (the ragged tail dropped)."""
    size = min(session.config.training.batch_size, len(session.train_data))
    return list(batches(len(session.train_data), size, rng, drop_last=True))


def train_epoch(session: Session, rng: np.random.Generator, console: Console, desc: str) -> float:
    """One pass over the training data; returns the mean token loss."""
    total, tokens = nd.zeros((1,), ctx=session.ctx), 0
    index_batches = train_batches(session, rng)
    with console.progress(len(index_batches), desc) as bar:
        for index in index_batches:
            loss, count = train_step(session, index)
            total = total + loss  # stays on the device; read once per epoch
            tokens += count
            bar.update(1)
    value = total.asscalar() / max(tokens, 1)
    return value


def validation_loss(session: Session) -> float:
    data, size = session.valid_data, session.config.training.batch_size
    size = min(size, max(len(session.train_data), 1))
    total, tokens = nd.zeros((1,), ctx=session.ctx), 0
    for index in batches(len(data), size):
        src, tgt_in, tgt_out = _batch(session, data, index, size)
        total = total + session.loss(src, tgt_in, tgt_out)
        tokens += int(np.count_nonzero(data.tgt_out[index]))
    return total.asscalar() / max(tokens, 1)


def decode_texts(task: Task, target_vocab: Vocabulary, ids: np.ndarray) -> list[str]:
    return [task.target_text(target_vocab.decode(row)) for row in ids]


def evaluate(session: Session) -> tuple[dict[str, float], list[str]]:
    """Validation loss and the task's metrics on greedy decodes; and the decodes."""
    ids, _ = decode_arrays(session.model, session.valid_data.src, session.ctx)
    hypotheses = decode_texts(session.task, session.target_vocab, ids)
    references = [target for _, target in session.valid_pairs]
    metrics = {"valid_loss": validation_loss(session)}
    metrics.update(session.task.metrics(hypotheses, references))
    return metrics, hypotheses


def _format_metrics(row: dict) -> str:
    parts = [f"train loss {row['train_loss']:.4f}", f"valid loss {row['valid_loss']:.4f}"]
    for key, value in row.items():
        if key in ("epoch", "train_loss", "valid_loss", "seconds"):
            continue
        label = key.replace("_", "-")
        parts.append(f"{label} {value:.2%}" if key in ("exact_match", "char_accuracy") else f"{label} {value:.4g}")
    return "  ".join(parts)


def print_samples(session: Session, hypotheses: Sequence[str], rng: random.Random, console: Console) -> None:
    count = min(session.config.training.samples, len(session.valid_pairs))
    for i in rng.sample(range(len(session.valid_pairs)), count):
        source, truth = session.valid_pairs[i]
        line = session.task.format_sample(source, hypotheses[i], truth)
        console.print(f"  {line} {console.mark(hypotheses[i] == truth)}")


def train(config: Config, out: str | Path = "runs", console: Console | None = None,
          ctx: mx.Context | None = None) -> Result:
    """Train ``config`` into a new run directory under ``out``; returns its history."""
    console = console or Console()
    tc = config.training
    session = prepare(config, ctx)
    run_dir = rundir.create_run_dir(Path(out), config.task.name)
    rundir.write_config(run_dir, config)
    rundir.write_vocabularies(run_dir, session.source_vocab, session.target_vocab)
    console.print(f"task {config.task.name}: {len(session.train_data):,} training and "
                  f"{len(session.valid_data):,} validation examples; run directory {run_dir}")
    primary = session.task.primary_metric
    shuffle_rng = np.random.default_rng(tc.seed)
    sample_rng = random.Random(tc.seed + 1)
    history: list[dict] = []
    best: dict | None = None
    started = time.perf_counter()
    for epoch in range(1, tc.epochs + 1):
        tick = time.perf_counter()
        train_loss = train_epoch(session, shuffle_rng, console, f"epoch {epoch}/{tc.epochs}")
        if not math.isfinite(train_loss):
            raise TrainingError(f"epoch {epoch}: training loss is {train_loss}; lower the learning "
                                f"rate or set training.clip_gradient")
        if tc.lr_decay != 1.0:
            session.trainer.set_learning_rate(session.trainer.learning_rate * tc.lr_decay)
        metrics, hypotheses = evaluate(session)
        # Every queued operator has run: under the threaded engine a failed one raises
        # here, in its own epoch, instead of at exit (or never).
        nd.waitall()
        row = {"epoch": epoch, "train_loss": train_loss, **metrics,
               "seconds": round(time.perf_counter() - tick, 3)}
        history.append(row)
        rundir.save_parameters(session.model, run_dir / rundir.LAST)
        if best is None or row[primary] > best[primary]:
            best = row
            rundir.save_parameters(session.model, run_dir / rundir.BEST)
        rundir.write_metrics(run_dir, history)
        plots.write_history_plot(run_dir, history, primary)
        console.print(f"epoch {epoch:>3}/{tc.epochs}  {_format_metrics(row)}  {row['seconds']:.1f}s")
        if tc.sample_every and (epoch % tc.sample_every == 0 or epoch == tc.epochs):
            print_samples(session, hypotheses, sample_rng, console)
    elapsed = time.perf_counter() - started
    console.print(f"best {primary.replace('_', '-')} {best[primary]:.2%} at epoch {best['epoch']} "
                  f"on {len(session.valid_data):,} held-out examples; trained in {elapsed:.0f}s")
    console.print(f"run directory: {run_dir}")
    return Result(run_dir, history, best)
