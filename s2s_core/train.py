"""Training: teacher forcing, per-epoch validation by greedy decoding, run directory.

Every finished epoch is committed as a checkpoint (:mod:`s2s_core.checkpoint`), so a run
stopped by Ctrl-C, ``kill -9`` or a full disk goes on with :func:`resume`.
"""

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

from . import checkpoint, plots, rundir
from .build import build_model
from .checkpoint import Progress
from .config import Config, TrainingConfig
from .data import Arrays, batches, encode_pairs, pad_batch
from .errors import ConfigError, Interrupted, RunDirError, TrainingError, one_line
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
    if not train_pairs or not valid_pairs:
        raise ConfigError(f"{config.path}: task: {len(train_pairs)} training and {len(valid_pairs)} "
                          f"validation examples; each needs at least one")
    source_vocab, target_vocab = task.build_vocabularies(train_pairs)
    train_data = encode_pairs(task, source_vocab, target_vocab, train_pairs)
    valid_data = encode_pairs(task, source_vocab, target_vocab, valid_pairs)
    model = build_model(config, task, source_vocab, target_vocab)
    initialize(model, config, ctx)
    loss = TeacherForcedLoss(model)
    if tc.hybridize:
        loss.hybridize(static_alloc=True, static_shape=True)
    trainer = make_trainer(model, config)
    return Session(config, task, source_vocab, target_vocab, train_pairs, valid_pairs,
                   train_data, valid_data, model, loss, trainer, ctx)


def initialize(model: Seq2Seq, config: Config, ctx: mx.Context) -> None:
    """The configured initializer; a failure is one line (a ConfigError if parameters were given)."""
    tc = config.training
    try:
        model.initialize(mx.init.create(tc.initializer, **tc.initializer_params), ctx=ctx)
        nd.waitall()  # the threaded engine reports a failed op only when something waits for it
    except Exception as exc:  # noqa: BLE001 - MXNetError, ValueError, AssertionError, ...
        if tc.initializer_params:
            raise ConfigError(f"{config.path}: training.initializer_params: initializer '{tc.initializer}' "
                              f"fails with them: {one_line(exc)}") from None
        raise TrainingError(f"cannot initialize the model: {one_line(exc)}") from None


def make_trainer(model: Seq2Seq, config: Config) -> gluon.Trainer:
    """The configured optimizer, first tried on a scratch weight: a parameter it cannot
    use (a string for a number, an impossible value) is a ConfigError now, not mid-epoch."""
    tc = config.training
    try:
        update = mx.optimizer.get_updater(mx.optimizer.create(tc.optimizer, **tc.optimizer_params))
        weight = nd.ones((2,))
        update(0, nd.ones((2,)), weight)
        weight.wait_to_read()
        return gluon.Trainer(model.collect_params(), tc.optimizer, dict(tc.optimizer_params))
    except Exception as exc:  # noqa: BLE001 - TypeError, ValueError, MXNetError, ...
        raise ConfigError(f"{config.path}: training.optimizer_params: optimizer '{tc.optimizer}' "
                          f"cannot update with them: {one_line(exc)}") from None


def _batch(session: Session, data: Arrays, index: np.ndarray, size: int):
    ctx = session.ctx
    return (nd.array(pad_batch(data.src[index], size), ctx=ctx),
            nd.array(pad_batch(data.tgt_in[index], size), ctx=ctx),
            nd.array(pad_batch(data.tgt_out[index], size), ctx=ctx))


class Diverged(Exception):
    """The training loss of batch ``batch`` (1-based, of ``batches``) was ``value``: NaN or inf."""

    def __init__(self, batch: int, batches: int, value: float):
        super().__init__(batch, batches, value)
        self.batch, self.batches, self.value = batch, batches, value


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
        # The Trainer divides the gradients by ``count``: clip their mean's norm.
        params = [p for p in session.model.collect_params().values() if p.grad_req != "null"]
        gluon.utils.clip_global_norm([p.grad(session.ctx) for p in params], clip * count,
                                     check_isfinite=False)
    session.trainer.step(count)
    return loss, count


def train_batches(session: Session, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's shuffled row indices, in batches of one size (the ragged tail dropped)."""
    size = min(session.config.training.batch_size, len(session.train_data))
    return list(batches(len(session.train_data), size, rng, drop_last=True))


def train_epoch(session: Session, rng: np.random.Generator, console: Console, desc: str) -> float:
    """One pass over the training data; returns the mean token loss.

    Raises :class:`Diverged` naming the first batch whose loss was not finite.
    """
    total, tokens = nd.zeros((1,), ctx=session.ctx), 0
    running = []  # the sum after each batch, kept on the device: no host sync per batch
    index_batches = train_batches(session, rng)
    with console.progress(len(index_batches), desc) as bar:
        for index in index_batches:
            loss, count = train_step(session, index)
            total = total + loss  # stays on the device; read once per epoch
            running.append(total)
            tokens += count
            bar.update(1)
    value = float(total.asscalar()) / max(tokens, 1)
    if not math.isfinite(value):
        # A sum that is not finite stays so: the first such one names the batch.
        sums = nd.concat(*running, dim=0).asnumpy()
        first = int(np.argmin(np.isfinite(sums)))
        raise Diverged(first + 1, len(index_batches), float(sums[first]))
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
    metrics = {"valid_loss": float(validation_loss(session))}
    metrics.update(session.task.metrics(hypotheses, references))
    return metrics, hypotheses


def _format_metric(key: str, value: float) -> str:
    """``exact-match 99.50%``; metrics other than fractions as they are (BLEU: 0-100)."""
    label = key.replace("_", "-")
    return f"{label} {value:.2%}" if key in ("exact_match", "char_accuracy") else f"{label} {value:.4g}"


def _format_metrics(row: dict) -> str:
    parts = [f"train loss {row['train_loss']:.4f}", f"valid loss {row['valid_loss']:.4f}"]
    for key, value in row.items():
        if key in ("epoch", "train_loss", "valid_loss", "seconds"):
            continue
        parts.append(_format_metric(key, value))
    return "  ".join(parts)


def sample_lines(session: Session, hypotheses: Sequence[str], rng: random.Random, console: Console) -> list[str]:
    """Some random validation questions, answers and truths, marked right or wrong."""
    count = min(session.config.training.samples, len(session.valid_pairs))
    lines = []
    for i in rng.sample(range(len(session.valid_pairs)), count):
        source, truth = session.valid_pairs[i]
        line = session.task.format_sample(source, hypotheses[i], truth)
        lines.append(f"  {line} {console.mark(hypotheses[i] == truth)}")
    return lines


def learning_rate(training: TrainingConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (1-based): the configured one, decayed once per epoch.

    A function of the epoch, not a running product, so a resumed run (even one given a
    new learning rate) needs nothing but the epoch to know it.
    """
    base = mx.optimizer.create(training.optimizer, **training.optimizer_params).learning_rate
    return base * training.lr_decay ** (epoch - 1)


def train(config: Config, out: str | Path = "runs", console: Console | None = None,
          ctx: mx.Context | None = None) -> Result:
    """Train ``config`` into a new run directory under ``out``; returns its history."""
    console = console or Console()
    session = prepare(config, ctx)
    run_dir = rundir.create_run_dir(Path(out), config.task.name)
    rundir.write_config(run_dir, config)
    rundir.write_vocabularies(run_dir, session.source_vocab, session.target_vocab)
    console.print(f"task {config.task.name}: {len(session.train_data):,} training and "
                  f"{len(session.valid_data):,} validation examples; run directory {run_dir}")
    return run_epochs(session, run_dir, Progress.start(config.training.seed), console)


def resume(run_dir: str | Path, config: Config | None = None, epochs: int | None = None,
           console: Console | None = None, ctx: mx.Context | None = None) -> Result:
    """Continue the run in ``run_dir`` after its last checkpoint, in the same directory.

    ``config`` defaults to the run's own ``config.toml``; either may differ from the
    configuration the run was trained with only in :data:`checkpoint.RESUMABLE` keys;
    ``epochs`` overrides its ``training.epochs``. Run under NaiveEngine, the result
    equals that of a run never stopped.
    """
    console = console or Console()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a run directory")
    saved = checkpoint.load(run_dir)
    if saved is None and rundir.finished_epochs(run_dir):
        raise RunDirError(f"{run_dir / checkpoint.RECORD}: missing, but the run has finished epochs: "
                          f"nothing to resume them from")
    config = config or rundir.read_run_config(run_dir)
    if epochs is not None:
        config.training.epochs = epochs
    # What the run was trained with: the checkpoint's record, else the resolved config.toml.
    trained = saved.config if saved else rundir.read_run_config_table(run_dir)
    checkpoint.check_resumable(trained, config)
    vocabularies = rundir.read_vocabularies(run_dir)
    session = prepare(config, ctx)
    if vocabularies != (session.source_vocab, session.target_vocab):
        raise RunDirError(f"{run_dir / rundir.VOCAB}: differs from the vocabularies of the run's data")
    if saved is not None:
        progress = checkpoint.restore(saved, session)
        checkpoint.publish(saved)  # a run killed just after its last commit left old copies
    else:
        progress = Progress.start(config.training.seed)
    rundir.write_config(run_dir, config)
    console.print(f"task {config.task.name}: resuming {run_dir} after epoch {progress.epoch} "
                  f"of {config.training.epochs}")
    return run_epochs(session, run_dir, progress, console)


def run_epochs(session: Session, run_dir: Path, progress: Progress, console: Console) -> Result:
    """Train the epochs after ``progress.epoch``, committing a checkpoint after each.

    Ctrl-C abandons the epoch under way (a checkpoint being written is finished first)
    and raises :class:`Interrupted`; a loss that is not finite raises :class:`TrainingError`.
    Neither touches the checkpoint of the last finished epoch.
    """
    tc = session.config.training
    primary = session.task.primary_metric
    started = time.perf_counter()
    epoch = progress.epoch
    try:
        for epoch in range(progress.epoch + 1, tc.epochs + 1):
            tick = time.perf_counter()
            mx.random.seed(checkpoint.epoch_seed(tc.seed, epoch))  # see checkpoint.py
            rate = learning_rate(tc, epoch)
            session.trainer.set_learning_rate(rate)
            try:
                train_loss = train_epoch(session, progress.shuffle_rng, console, f"epoch {epoch}/{tc.epochs}")
            except Diverged as exc:
                raise TrainingError(f"epoch {epoch}, batch {exc.batch} of {exc.batches}: training loss is "
                                    f"{exc.value}; {_kept(run_dir, progress)}; set training.clip_gradient "
                                    f"or lower the learning rate") from None
            metrics, hypotheses = evaluate(session)
            # Every queued operator has run: under the threaded engine a failed one raises
            # here, in its own epoch, instead of at exit (or never).
            nd.waitall()
            if not math.isfinite(metrics["valid_loss"]):
                raise TrainingError(f"epoch {epoch}: validation loss is {metrics['valid_loss']} (the "
                                    f"epoch's last updates broke the parameters); {_kept(run_dir, progress)}; "
                                    f"set training.clip_gradient or lower the learning rate")
            row = {"epoch": epoch, "train_loss": train_loss, **metrics,
                   "seconds": round(time.perf_counter() - tick, 3)}
            progress.record(row, primary, session.trainer.optimizer.num_update)
            due = tc.sample_every and (epoch % tc.sample_every == 0 or epoch == tc.epochs)
            samples = sample_lines(session, hypotheses, progress.sample_rng, console) if due else []
            with checkpoint.interrupts_deferred():
                _save(run_dir, session, progress, rate)
            plots.write_history_plot(run_dir, progress.history, primary)
            console.print(f"epoch {epoch:>3}/{tc.epochs}  {_format_metrics(row)}  {row['seconds']:.1f}s")
            for line in samples:
                console.print(line)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; {_kept(run_dir, progress)}") from None
    best = progress.best
    elapsed = time.perf_counter() - started
    console.print(f"best {_format_metric(primary, best[primary])} at epoch {best['epoch']} "
                  f"on {len(session.valid_data):,} held-out examples; trained in {elapsed:.0f}s")
    console.print(f"run directory: {run_dir}")
    return Result(run_dir, progress.history, best)


def _save(run_dir: Path, session: Session, progress: Progress, rate: float) -> None:
    """:func:`checkpoint.save`, with a write that fails (disk full, read-only) as one line."""
    try:
        checkpoint.save(run_dir, session, progress, rate)
    except Exception as exc:  # noqa: BLE001 - OSError, or MXNet failing to write a file
        where = getattr(exc, "filename", None)
        reason = getattr(exc, "strerror", None) or one_line(exc)
        try:
            saved = checkpoint.load(run_dir)
            kept = _kept(run_dir, saved.epoch if saved else 0)
        except RunDirError as broken:
            kept = f"and its checkpoint cannot be read: {broken}"
        raise TrainingError(f"cannot save epoch {progress.epoch}: {f'{where}: ' if where else ''}{reason}; "
                            f"{kept}") from None


def _kept(run_dir: Path, progress: Progress | int) -> str:
    """What the run directory still holds, and how to go on from it."""
    epochs = progress if isinstance(progress, int) else progress.epoch
    if epochs == 0:
        return f"no epoch finished, {run_dir} has nothing to resume from"
    return f"{run_dir} keeps the checkpoint of epoch {epochs}: continue with s2s run --resume {run_dir}"
