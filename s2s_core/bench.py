"""Timing a configured model imperatively and hybridized: the seed's "76 s vs 47 s".

:func:`compare` builds the model twice (same seed, same initial parameters), once per
mode, and times training steps (the same :func:`train_step` the trainer runs) over a
fixed number of batches after a warm-up, and greedy decoding of a fixed number of
questions. The timed work is cut into rounds that alternate between the two modes, so
that a change in the machine's load in the middle of a measurement weighs on both
alike instead of on whichever mode happened to run then.
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
    #: Rounds the timed work is cut into, alternating the modes (the first mode to run
    #: alternates too).
    rounds: int = 5


@attrs.define
class Timing:
    mode: str
    batch_size: int
    train_batches: int
    decode_questions: int
    #: The seconds of each round, in order (rounds of the two modes alternate).
    train_round_seconds: list[float]
    decode_round_seconds: list[float]

    @property
    def train_seconds(self) -> float:
        return sum(self.train_round_seconds)

    @property
    def decode_seconds(self) -> float:
        return sum(self.decode_round_seconds)

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


def _shares(total: int, parts: int, unit: int = 1) -> list[int]:
    """``total`` cut into ``parts`` nearly equal shares, in whole ``unit``s where possible."""
    units, rest = divmod(total, unit)
    shares = [unit * (units // parts + (i < units % parts)) for i in range(parts)]
    shares[-1] += rest
    return [share for share in shares if share]


def compare(config: Config, settings: Settings = Settings()) -> list[Timing]:
    """[imperative, hybridized] timings of ``config``'s model, in this process, in
    alternating rounds."""
    sessions, batches = {}, {}
    for mode in MODES:
        mode_config = attrs.evolve(config, training=attrs.evolve(config.training,
                                                                 hybridize=mode == "hybridized"))
        sessions[mode] = prepare(mode_config)
        batches[mode] = _endless_batches(sessions[mode], config.training.seed)

    def train(mode: str, count: int) -> None:
        for index in itertools.islice(batches[mode], count):
            train_step(sessions[mode], index)

    valid = sessions[MODES[0]].valid_data.src
    questions = np.resize(valid, (settings.decode_questions, valid.shape[1]))
    decode_batch = min(DECODE_BATCH, settings.decode_questions)

    def decode(mode: str, src: np.ndarray) -> None:
        decode_arrays(sessions[mode].model, src, sessions[mode].ctx, decode_batch)

    for mode in MODES:  # warm-up: graphs are built here
        _time(lambda: train(mode, settings.warmup_batches))
        _time(lambda: decode(mode, questions[:decode_batch]))
    train_seconds = {mode: [] for mode in MODES}
    decode_seconds = {mode: [] for mode in MODES}
    train_rounds = _shares(settings.train_batches, settings.rounds)
    decode_rounds = _shares(settings.decode_questions, settings.rounds, decode_batch)
    starts = np.cumsum([0] + decode_rounds)
    for number in range(max(len(train_rounds), len(decode_rounds))):
        order = MODES if number % 2 == 0 else MODES[::-1]
        for mode in order:
            if number < len(train_rounds):
                train_seconds[mode].append(_time(lambda: train(mode, train_rounds[number])))
            if number < len(decode_rounds):
                chunk = questions[starts[number]:starts[number + 1]]
                decode_seconds[mode].append(_time(lambda: decode(mode, chunk)))
    batch_size = min(config.training.batch_size, len(sessions[MODES[0]].train_data))
    return [Timing(mode, batch_size, settings.train_batches, settings.decode_questions,
                   train_seconds[mode], decode_seconds[mode]) for mode in MODES]


def paired_speedup(slow: Sequence[float], fast: Sequence[float]) -> float:
    """Median over rounds of ``slow`` seconds / ``fast`` seconds, round by round: each pair
    ran back to back on the same work, so a load change shifts both, and a round hit by
    a hiccup is outvoted instead of weighing on the total."""
    return float(np.median([a / b for a, b in zip(slow, fast)]))


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
             f"{settings.decode_questions:,} questions; engine {config.training.engine}; "
             f"{settings.rounds} rounds alternating the modes",
             f"{'':<22}{'imperative':>12}{'hybridized':>12}{'speed-up':>10}"]
    for label, value, higher_is_faster in rows:
        a, b = value(imperative), value(hybridized)
        speedup = b / a if higher_is_faster else a / b
        lines.append(f"{label:<22}{a:>12,.1f}{b:>12,.1f}{speedup:>9.2f}x")
    return "\n".join(lines)
