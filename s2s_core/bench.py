"""Timing a configured model imperatively and hybridized: the seed's "76 s vs 47 s".

:func:`measure` times one mode: training steps (the same :func:`train_step` the
trainer runs) over a fixed number of batches after a warm-up, and greedy decoding of
a fixed number of questions. :func:`compare` runs both modes in one process, one
after the other, on the same data and initial parameters.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence

import attrs
import numpy as np

from .config import Config
from .engine import wait_for_all_work
from .search import DECODE_BATCH, decode_arrays
from .train import Session, prepare, train_batches, train_step

MODES = ("imperative", "hybridized")


@attrs.define
class Settings:
    #: Timed training batches per mode.
    train_batches: int = 20
    #: Untimed batches first: a hybridized model builds its graph in the first one.
    warmup_batches: int = 2
    #: Questions greedily decoded per mode (the validation questions, repeated if needed).
    decode_questions: int = 2000


@attrs.define
class Timing:
    mode: str
    batch_size: int
    train_batches: int
    train_seconds: float
    decode_questions: int
    decode_seconds: float

    @property
    def train_samples_per_second(self) -> float:
        return self.train_batches * self.batch_size / self.train_seconds

    @property
    def train_ms_per_batch(self) -> float:
        return 1000 * self.train_seconds / self.train_batches

    @property
    def decode_questions_per_second(self) -> float:
        return self.decode_questions / self.decode_seconds


def _endless_batches(session: Session, seed: int) -> Iterator[np.ndarray]:
    """Training batches as an epoch shuffles them, epoch after epoch."""
    rng = np.random.default_rng(seed)
    while True:
        yield from train_batches(session, rng)


def _time(work) -> float:
    started = time.perf_counter()
    work()
    wait_for_all_work()  # the threaded engine returns before the work is done
    return time.perf_counter() - started


def measure(config: Config, hybridize: bool, settings: Settings = Settings()) -> Timing:
    """Time training and greedy decoding of ``config``'s model in one mode."""
    config = attrs.evolve(config, training=attrs.evolve(config.training, hybridize=hybridize))
    session = prepare(config)
    batches = _endless_batches(session, config.training.seed)

    def train(count: int) -> None:
        for index in itertools.islice(batches, count):
            train_step(session, index)

    _time(lambda: train(settings.warmup_batches))
    train_seconds = _time(lambda: train(settings.train_batches))

    valid = session.valid_data.src
    questions = np.resize(valid, (settings.decode_questions, valid.shape[1]))
    decode_batch = min(DECODE_BATCH, settings.decode_questions)

    def decode(src: np.ndarray) -> None:
        decode_arrays(session.model, src, session.ctx, decode_batch)

    _time(lambda: decode(questions[:decode_batch]))  # warm-up: builds the decoder's graph
    decode_seconds = _time(lambda: decode(questions))
    batch_size = min(config.training.batch_size, len(session.train_data))
    return Timing("hybridized" if hybridize else "imperative", batch_size, settings.train_batches,
                  train_seconds, settings.decode_questions, decode_seconds)


def compare(config: Config, settings: Settings = Settings()) -> list[Timing]:
    """[imperative, hybridized] timings of ``config``'s model, in this process."""
    return [measure(config, mode == "hybridized", settings) for mode in MODES]


def format_table(config: Config, settings: Settings, timings: Sequence[Timing]) -> str:
    """A header and one row per measure, a column per mode and the speed-up."""
    imperative, hybridized = timings
    rows = [
        ("training samples/s", lambda t: t.train_samples_per_second, True),
        ("training ms/batch", lambda t: t.train_ms_per_batch, False),
        ("decoding questions/s", lambda t: t.decode_questions_per_second, True),
    ]
    lines = [f"{config.path}: batch {imperative.batch_size}, {settings.train_batches} timed training "
             f"batches after {settings.warmup_batches} warm-up; greedy decoding of "
             f"{settings.decode_questions:,} questions; engine {config.training.engine}",
             f"{'':<22}{'imperative':>12}{'hybridized':>12}{'speed-up':>10}"]
    for label, value, higher_is_faster in rows:
        a, b = value(imperative), value(hybridized)
        speedup = b / a if higher_is_faster else a / b
        lines.append(f"{label:<22}{a:>12,.1f}{b:>12,.1f}{speedup:>9.2f}x")
    return "\n".join(lines)
