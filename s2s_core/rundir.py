"""Run directories: creating them, writing into them atomically, loading them back.

A run directory holds::

    config.toml      the resolved configuration (every default filled in)
    vocab.json       source and target vocabularies
    metrics.jsonl    one JSON object per finished epoch
    best.params      parameters of the best epoch (by the task's primary metric)
    last.params      parameters after the last finished epoch
    checkpoint.json  the commit record of the last finished epoch, and checkpoint/ its
                     files: what ``s2s run --resume`` continues from (see checkpoint.py)

Every file is written to a temporary name in the same directory, flushed to disk and
renamed over the old one, so a crash leaves either the old or the new file, never half.
docs/run-directories.md says what is guaranteed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import tomli_w

from .config import Config, parse_config, read_toml
from .errors import ConfigError, RunDirError, S2SError, one_line
from .hooks import Registry
from .interfaces import Task
from .vocab import Vocabulary

CONFIG, VOCAB, METRICS, BEST, LAST = "config.toml", "vocab.json", "metrics.jsonl", "best.params", "last.params"


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, fsync the result and rename it to ``path``.

    An OSError (disk full, read-only directory) is raised naming ``path`` itself.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    _fsync_directory(path.parent)


def _fsync_directory(path: Path) -> None:
    """Make a rename durable across power loss; best effort (not every file system can)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def create_run_dir(root: Path, name: str) -> Path:
    """A new directory ``root/name-YYYYmmdd-HHMMSS[-k]``; never an existing one."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1, 10_000):
        path = root / (f"{name}-{stamp}" + (f"-{k}" if k > 1 else ""))
        try:
            path.mkdir()  # fails if it exists: two runs never share a directory
            return path
        except FileExistsError:
            continue
    raise S2SError(f"{root}: cannot find a free run directory name")


def write_vocabularies(run_dir: Path, source: Vocabulary, target: Vocabulary) -> None:
    atomic_write_text(run_dir / VOCAB, json.dumps(
        {"source": source.to_dict(), "target": target.to_dict()}, ensure_ascii=False, indent=1))


def write_config(run_dir: Path, config: Config) -> None:
    atomic_write_text(run_dir / CONFIG, tomli_w.dumps(config.to_dict()))


def write_metrics(run_dir: Path, history: list[dict]) -> None:
    atomic_write_text(run_dir / METRICS, "".join(json.dumps(row) + "\n" for row in history))


def save_parameters(block, path: Path) -> None:
    atomic_write(path, block.save_parameters)


@attrs.define
class LoadedRun:
    path: Path
    config: Config
    task: Task
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    model: object  # Seq2Seq, built and with parameters loaded


def read_vocabularies(run_dir: Path) -> tuple[Vocabulary, Vocabulary]:
    path = run_dir / VOCAB
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Vocabulary.from_dict(data["source"]), Vocabulary.from_dict(data["target"])
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{path}: not a vocabulary file written by s2s ({type(exc).__name__})") from None


def read_run_config(run_dir: Path, registry: Registry | None = None) -> Config:
    path = run_dir / CONFIG
    try:
        return parse_config(read_run_config_table(run_dir), str(path), registry or Registry())
    except ConfigError as exc:
        raise RunDirError(str(exc)) from None


def read_run_config_table(run_dir: Path) -> dict:
    """``config.toml`` as TOML, unchecked (it was written resolved: every default in it)."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunDirError(f"{path}: missing")
    try:
        return read_toml(path)
    except ConfigError as exc:
        raise RunDirError(str(exc)) from None


def load_parameters(model, path: Path) -> None:
    if not path.is_file():
        raise RunDirError(f"{path}: missing")
    try:
        model.load_parameters(str(path))
    except Exception as exc:  # noqa: BLE001 - MXNet raises MXNetError, AssertionError, ...
        raise RunDirError(f"{path}: cannot load parameters into the model {CONFIG} describes: "
                          f"{one_line(exc)}") from None


def finished_epochs(run_dir: Path) -> bool:
    """Whether the run wrote the results of any epoch (parameters or metrics)."""
    metrics = run_dir / METRICS
    return ((run_dir / BEST).exists() or (run_dir / LAST).exists()
            or (metrics.is_file() and metrics.stat().st_size > 0))


def load_run(run_dir: str | Path, which: str = BEST, registry: Registry | None = None) -> LoadedRun:
    """Rebuild a run's task, vocabularies and model and load its parameters."""
    from . import checkpoint  # it imports this module
    from .build import build_model  # build imports MXNet blocks; keep this module light

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a run directory")
    config = read_run_config(run_dir, registry)
    checkpoint.check_model_config(run_dir, config)
    checkpoint.check_file(run_dir, VOCAB)
    source_vocab, target_vocab = read_vocabularies(run_dir)
    task = config.task.build()
    model = build_model(config, task, source_vocab, target_vocab)
    checkpoint.check_file(run_dir, which)
    load_parameters(model, run_dir / which)
    return LoadedRun(run_dir, config, task, source_vocab, target_vocab, model)
