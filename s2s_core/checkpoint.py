"""Checkpoints: everything a run needs to continue exactly where it stopped.

After every finished epoch the trainer commits a checkpoint into the run directory::

    checkpoint/epoch-0004.params   the model's parameters after epoch 4
    checkpoint/epoch-0004.states   the Trainer's state (``trainer.save_states``: the
                                   optimizer with its update counts and moments)
    checkpoint/epoch-0002.params   the best epoch's parameters, kept while it is the best
    checkpoint.json                the commit record (also of vocab.json's checksum)

``checkpoint.json`` holds the epoch and step counters, the learning rate, the resolved
configuration, the metrics of every epoch, the states of the random generators (Python's,
numpy's global one, the shuffling and the sampling generators) and the SHA-256 of each file
above; its own body is checksummed too. The files of epoch k are written first under
names no earlier epoch used, then ``checkpoint.json`` is replaced in one rename: that
rename is the commit. A reader follows ``checkpoint.json`` only, so whatever instant a
process dies at, it finds the files of one epoch, complete.

``best.params``, ``last.params`` and ``metrics.jsonl`` are then refreshed from the
committed checkpoint (for ``s2s predict`` and people) and recorded in ``checkpoint.json``
once more, with their checksums, so a reader can tell a corrupted copy from a current one.
A death between the commit and that second record leaves them one epoch behind;
``s2s run --resume`` refreshes them.

MXNet has no API to read its generator's state, so it is not saved: instead every epoch
reseeds MXNet from (seed, epoch), in fresh and resumed runs alike, so epoch k draws the
same numbers (dropout) whether or not the process stopped before it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import random
import re
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from . import rundir
from .config import Config
from .errors import RunDirError, one_line

RECORD = "checkpoint.json"
STORE = "checkpoint"
FORMAT = 1
_GENERATION_FILE = re.compile(r"epoch-\d+\.(params|states)")

#: Keys a resumed run may change. None of them changes the model, the data or the layout
#: of the optimizer's state; the learning rate (and its decay) may change so that a run
#: that diverged can go on from its last good epoch more carefully.
RESUMABLE = ("training.epochs", "training.optimizer_params.learning_rate", "training.lr_decay",
             "training.clip_gradient", "training.hybridize", "training.engine",
             "training.sample_every", "training.samples")


def epoch_seed(seed: int, epoch: int) -> int:
    """MXNet's seed for ``epoch``: a function of (seed, epoch) only, so resuming repeats it."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


@attrs.define
class Progress:
    """How far a run is: what ``checkpoint.json`` records, in memory."""

    epoch: int  # epochs finished
    step: int  # optimizer updates (batches) taken
    history: list[dict]  # one metrics row per finished epoch
    best_epoch: int | None
    shuffle_rng: np.random.Generator  # orders the training batches
    sample_rng: random.Random  # picks the validation samples shown
    #: {path relative to the run directory: SHA-256} of the last committed files.
    files: dict[str, str] = attrs.field(factory=dict)

    @classmethod
    def start(cls, seed: int) -> "Progress":
        return cls(0, 0, [], None, np.random.default_rng(seed), random.Random(seed + 1))

    @property
    def best(self) -> dict | None:
        return self.history[self.best_epoch - 1] if self.best_epoch else None

    def record(self, row: dict, primary: str, step: int) -> None:
        """Add the metrics of the epoch just finished."""
        self.history.append(row)
        self.epoch, self.step = row["epoch"], step
        if self.best is None or row[primary] > self.best[primary]:
            self.best_epoch = self.epoch


@attrs.frozen
class Saved:
    """A committed checkpoint as read back: its record, checked."""

    run_dir: Path
    body: dict

    @property
    def epoch(self) -> int:
        return self.body["epoch"]

    @property
    def config(self) -> dict:
        return self.body["config"]

    def path(self, role: str) -> Path:
        return self.run_dir / self.body["roles"][role]


# -- writing ---------------------------------------------------------------------------

def save(run_dir: Path, session, progress: Progress, learning_rate: float) -> None:
    """Commit the checkpoint of ``progress.epoch``, then refresh the copies others read."""
    store = run_dir / STORE
    store.mkdir(exist_ok=True)
    stem = f"{STORE}/epoch-{progress.epoch:04d}"
    roles = {"params": f"{stem}.params", "trainer": f"{stem}.states",
             "best": f"{STORE}/epoch-{progress.best_epoch:04d}.params"}
    files = {rundir.VOCAB: progress.files.get(rundir.VOCAB) or _sha256(run_dir / rundir.VOCAB),
             roles["best"]: progress.files.get(roles["best"])}  # None: written just now
    files[roles["params"]] = _write(run_dir / roles["params"], session.model.save_parameters)
    files[roles["trainer"]] = _write(run_dir / roles["trainer"], session.trainer.save_states)
    progress.files = files
    body = {
        "epoch": progress.epoch,
        "step": progress.step,
        "learning_rate": learning_rate,
        "config": session.config.to_dict(),
        "history": progress.history,
        "best_epoch": progress.best_epoch,
        "roles": roles,
        "files": files,
        "rng": _rng_states(progress),
    }
    _commit(run_dir, body, views=_unchanged_views(run_dir, body))
    publish(Saved(run_dir, body))


def publish(saved: Saved) -> None:
    """Make ``best.params``, ``last.params`` and ``metrics.jsonl`` those of ``saved``,
    record them in ``checkpoint.json``, and delete files no checkpoint needs any more."""
    run_dir, body = saved.run_dir, saved.body
    views = _unchanged_views(run_dir, body)
    for name, role in ((rundir.LAST, "params"), (rundir.BEST, "best")):
        if name not in views:
            source = saved.path(role)
            rundir.atomic_write(run_dir / name, lambda tmp, source=source: shutil.copyfile(source, tmp))
            views[name] = body["files"][body["roles"][role]]
    rundir.write_metrics(run_dir, body["history"])
    _commit(run_dir, body, views)
    _remove_leftovers(run_dir, set(body["files"]))


def _unchanged_views(run_dir: Path, body: dict) -> dict[str, str]:
    """The copies on disk that already hold what ``body`` names (no need to rewrite them)."""
    views = {}
    for name, role in ((rundir.LAST, "params"), (rundir.BEST, "best")):
        wanted = body["files"][body["roles"][role]]
        path = run_dir / name
        if path.is_file() and _sha256(path) == wanted:
            views[name] = wanted
    return views


def _write(path: Path, write) -> str:
    """``rundir.atomic_write`` with an MXNet writer; returns the file's SHA-256."""
    try:
        rundir.atomic_write(path, write)
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001 - MXNet's C++ writer raises MXNetError (disk full...)
        lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise OSError(errno.EIO, lines[-1].strip()[:200], str(path)) from exc
    return _sha256(path)


def _commit(run_dir: Path, body: dict, views: dict[str, str]) -> None:
    body = dict(body, views=views)
    record = {"format": FORMAT, "sha256": _body_sha256(body), "checkpoint": body}
    rundir.atomic_write_text(run_dir / RECORD, json.dumps(record, indent=1) + "\n")


def _remove_leftovers(run_dir: Path, keep: set[str]) -> None:
    """Earlier epochs' files and temporary files of writes that never finished."""
    for folder in (run_dir, run_dir / STORE):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            relative = path.relative_to(run_dir).as_posix()
            stale = (path.name.startswith(".") and path.name.endswith(".tmp")) or (
                folder.name == STORE and _GENERATION_FILE.fullmatch(path.name) and relative not in keep)
            if stale:
                path.unlink(missing_ok=True)


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C while this block runs (writing a checkpoint) takes effect when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


# -- reading ---------------------------------------------------------------------------

def load(run_dir: Path) -> Saved | None:
    """The run's committed checkpoint, every file checked; None when it has none."""
    path = run_dir / RECORD
    if not path.exists():
        return None
    body = _read_record(path)
    for name, sha in body["files"].items():
        file = run_dir / name
        if not file.is_file():
            raise RunDirError(f"{file}: missing (named by {path})")
        if _sha256(file) != sha:
            raise RunDirError(f"{file}: corrupted (its SHA-256 differs from the one in {path})")
    return Saved(run_dir, body)


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        body = record["checkpoint"]
        ok = record["format"] == FORMAT and record["sha256"] == _body_sha256(body)
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: not a checkpoint record written by s2s ({type(exc).__name__})") from None
    if not ok:
        raise RunDirError(f"{path}: corrupted (its checksum does not match its contents)")
    return body


def check_file(run_dir: Path, name: str) -> None:
    """Refuse ``vocab.json``, ``best.params`` or ``last.params`` if its checksum differs
    from the one ``checkpoint.json`` recorded; without a readable record nothing is checked."""
    path = run_dir / name
    for _ in range(3):  # a run still training may replace the file and the record meanwhile
        expected = _recorded(run_dir).get(name)
        if expected is None or not path.is_file() or _sha256(path) == expected:
            return
        if _recorded(run_dir).get(name) == expected:
            break  # the record stood still: the file itself is wrong
    raise RunDirError(f"{path}: corrupted (its SHA-256 differs from the one in {run_dir / RECORD})")


def _recorded(run_dir: Path) -> dict[str, str]:
    """{file: SHA-256} of every file the record vouches for; {} without a readable record."""
    try:
        body = _read_record(run_dir / RECORD)
        return {**body["files"], **body["views"]}
    except (RunDirError, KeyError, TypeError):
        return {}


def check_model_config(run_dir: Path, config: Config) -> None:
    """Refuse a ``config.toml`` that describes another model than the checkpoint's."""
    try:
        trained = _read_record(run_dir / RECORD)["config"]
    except (RunDirError, KeyError, TypeError):
        return
    changed = [key for key in differences(trained, config.to_dict()) if key.split(".")[0] != "training"]
    if changed:
        raise RunDirError(f"{run_dir / rundir.CONFIG}: describes another model than the one "
                          f"trained here ({_describe_changes(trained, config.to_dict(), changed)})")


def restore(saved: Saved, session) -> Progress:
    """Put the checkpoint's parameters, optimizer state and generator states into place."""
    rundir.load_parameters(session.model, saved.path("params"))
    states = saved.path("trainer")
    try:
        session.trainer.load_states(str(states))
    except Exception as exc:  # noqa: BLE001 - unpickling and MXNet raise many kinds
        raise RunDirError(f"{states}: cannot load the optimizer state: {one_line(exc)}") from None
    body = saved.body
    rng = body["rng"]
    random.setstate(_python_state(rng["python"]))
    np.random.set_state(_numpy_state(rng["numpy"]))
    progress = Progress(body["epoch"], body["step"], list(body["history"]), body["best_epoch"],
                        np.random.default_rng(), random.Random(), dict(body["files"]))
    progress.shuffle_rng.bit_generator.state = rng["shuffle"]
    progress.sample_rng.setstate(_python_state(rng["samples"]))
    return progress


# -- what may change between stop and resume -------------------------------------------

def differences(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between two resolved configurations."""
    old, new = dict(_flatten(old)), dict(_flatten(new))
    return sorted(key for key in old.keys() | new.keys() if old.get(key, _MISSING) != new.get(key, _MISSING))


def check_resumable(trained: dict, config: Config) -> None:
    """Refuse ``config`` for resuming a run trained with ``trained`` if it changes more
    than :data:`RESUMABLE` allows; one line naming every key that differs."""
    new = config.to_dict()
    refused = [key for key in differences(trained, new) if key not in RESUMABLE]
    if refused:
        raise RunDirError(f"{config.path}: cannot resume with a changed model, data or optimizer: "
                          f"{_describe_changes(trained, new, refused)} (a resumed run may change only "
                          f"{', '.join(RESUMABLE)})")


_MISSING = object()


def _flatten(table: dict, prefix: str = ""):
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _describe_changes(old: dict, new: dict, keys: list[str]) -> str:
    old, new = dict(_flatten(old)), dict(_flatten(new))

    def show(value: Any) -> str:
        text = "unset" if value is _MISSING else repr(value)
        return text if len(text) <= 30 else text[:27] + "..."

    return ", ".join(f"{key} {show(old.get(key, _MISSING))} -> {show(new.get(key, _MISSING))}" for key in keys)


# -- checksums and generator states as JSON ---------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _body_sha256(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _rng_states(progress: Progress) -> dict:
    """The generators' states as JSON; Mersenne Twister words as one hex string each."""
    version, words, gauss = random.getstate()
    name, keys, position, has_gauss, cached = np.random.get_state()
    sample_version, sample_words, sample_gauss = progress.sample_rng.getstate()
    return {"python": [version, _hex(words), gauss],
            "numpy": [name, _hex(keys), position, has_gauss, cached],
            "shuffle": progress.shuffle_rng.bit_generator.state,  # PCG64: two integers
            "samples": [sample_version, _hex(sample_words), sample_gauss]}


def _python_state(saved: list) -> tuple:
    version, words, gauss = saved
    return version, tuple(int(w) for w in _words(words)), gauss


def _numpy_state(saved: list) -> tuple:
    name, keys, position, has_gauss, cached = saved
    return name, _words(keys), position, has_gauss, cached


def _hex(words) -> str:
    return np.asarray(words, dtype=np.uint32).astype("<u4").tobytes().hex()


def _words(text: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(text), dtype="<u4").astype(np.uint32)
