"""Checkpoints in-process: what they hold, what may change on resume, failed writes,
broken run directories, and MXNet's reseeding per epoch."""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
import random
import shutil
import signal
import tempfile
import types
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mxnet.gluon import nn

from conftest import tiny, write_toml
from s2s_core import checkpoint, rundir
from s2s_core.config import parse_config
from s2s_core.errors import Interrupted, RunDirError, S2SError
from s2s_core.hooks import Registry, hookimpl, make_plugin_manager
from s2s_core.rundir import load_run
from s2s_core.train import Console, prepare, resume, train
from s2s_plugins.lstm import LSTMEncoder

QUIET = Console(quiet=True)


def small(epochs: int = 2, **model) -> dict:
    return tiny(task={"questions": 500}, model=model, training={"epochs": epochs})


@pytest.fixture(scope="module")
def registry():
    return Registry()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, registry) -> Path:
    """A small run of 2 epochs, finished; tests work on copies of it."""
    return train(parse_config(small(), "small.toml", registry), tmp_path_factory.mktemp("runs"), QUIET).run_dir


def copy_run(run_dir: Path, parent: Path) -> Path:
    return Path(shutil.copytree(run_dir, parent / "copy"))


def test_the_record_names_complete_files_of_the_last_epoch_and_the_best(trained_run):
    run_dir = trained_run.run_dir
    saved = checkpoint.load(run_dir)
    body = saved.body
    assert body["epoch"] == 12 and body["best_epoch"] == trained_run.best["epoch"]
    assert body["step"] == 12 * (2700 // 32)
    assert body["history"] == [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    on_disk = {p.relative_to(run_dir).as_posix() for p in (run_dir / "checkpoint").iterdir()}
    assert on_disk == {name for name in body["files"] if name.startswith("checkpoint/")}  # nothing stale
    assert {"checkpoint/epoch-0012.params", "checkpoint/epoch-0012.states",
            f"checkpoint/epoch-{trained_run.best['epoch']:04d}.params", "vocab.json"} == set(body["files"])
    # best.params and last.params are copies of the checkpoint's files, recorded as such.
    assert (run_dir / "best.params").read_bytes() == saved.path("best").read_bytes()
    assert (run_dir / "last.params").read_bytes() == saved.path("params").read_bytes()
    assert set(body["views"]) == {"best.params", "last.params"}
    assert body["learning_rate"] == pytest.approx(0.01 * 0.9 ** 11)


def test_config_differences_name_every_refused_key(registry, finished):
    trained = checkpoint.load(finished).config
    allowed = tiny(task={"questions": 500}, training={
        "epochs": 7, "optimizer_params": {"learning_rate": 0.001}, "lr_decay": 0.5, "clip_gradient": 1.0,
        "hybridize": False, "engine": "naive", "sample_every": 3, "samples": 1})
    checkpoint.check_resumable(trained, parse_config(allowed, "ok.toml", registry))
    changed = tiny(task={"questions": 600}, model={"encoder": {"hidden": 32}},
                   training={"seed": 4, "epochs": 7, "optimizer_params": {"learning_rate": 0.01, "wd": 0.1}})
    with pytest.raises(RunDirError) as info:
        checkpoint.check_resumable(trained, parse_config(changed, "new.toml", registry))
    assert str(info.value).startswith(
        "new.toml: cannot resume with a changed model, data or optimizer: model.encoder.hidden 64 -> 32, "
        "task.questions 500 -> 600, training.optimizer_params.wd unset -> 0.1, training.seed 3 -> 4 "
        "(a resumed run may change only training.epochs, ")


def test_resume_refuses_a_changed_model_from_a_task_file_or_the_run_config(finished, tmp_path, cli):
    run_dir = copy_run(finished, tmp_path)
    changed = write_toml(tmp_path / "bigger.toml", small(encoder={"hidden": 32}))
    result = cli("run", changed, "--resume", run_dir)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {changed}: cannot resume with a changed model, data or optimizer: "
                                    f"model.encoder.hidden 64 -> 32 (a resumed run may change only ")
    assert result.stderr.count("\n") == 1
    (run_dir / "config.toml").write_text((run_dir / "config.toml").read_text().replace("hidden = 64", "hidden = 16"))
    result = cli("run", "--resume", run_dir)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {run_dir / 'config.toml'}: cannot resume with a changed model")
    assert "optimizer: model.decoder.hidden 64 -> 16, model.encoder.hidden 64 -> 16 (" in result.stderr


def test_resume_command_line_mistakes(finished, tmp_path, cli):
    result = cli("run")
    assert result.exit_code == 2 and "missing TASK_FILE (or --resume RUN_DIR)" in result.output
    result = cli("run", "--resume", finished, "--out", tmp_path)
    assert result.exit_code == 2 and "--out and --resume exclude each other" in result.output
    result = cli("run", "--resume", tmp_path / "nothing")
    assert result.exit_code == 2 and result.stderr == f"error: {tmp_path / 'nothing'}: not a run directory\n"
    result = cli("run", "--resume", finished)  # all epochs done: nothing to train, nothing changed
    assert result.exit_code == 0 and "after epoch 2 of 2" in result.stdout


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(finished, tmp_path):
    run_dir = tmp_path / "early"
    run_dir.mkdir()
    for name in ("config.toml", "vocab.json"):  # what a run has before its first epoch ends
        shutil.copy(finished / name, run_dir / name)
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "epoch-0001.params").write_bytes(b"half")  # the epoch being saved
    (run_dir / ".last.params.x1y2.tmp").write_bytes(b"half")
    result = resume(run_dir, console=QUIET)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert checkpoint.load(run_dir).epoch == 2
    assert not list(run_dir.rglob("*.tmp"))
    # Without checkpoint.json but with results, there is nothing to resume from: refused.
    (run_dir / "checkpoint.json").unlink()
    with pytest.raises(RunDirError, match=r"checkpoint\.json: missing, but the run has finished epochs"):
        resume(run_dir, console=QUIET)


def test_ctrl_c_while_an_epoch_is_saved_finishes_the_save_first(tmp_path, registry):
    real_commit = checkpoint._commit

    def commit_during_ctrl_c(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives while epoch 1 is being committed
        return real_commit(*args, **kwargs)

    with mock.patch.object(checkpoint, "_commit", commit_during_ctrl_c), pytest.raises(Interrupted) as info:
        train(parse_config(small(2), "small.toml", registry), tmp_path, QUIET)
    (run_dir,) = tmp_path.iterdir()
    assert str(info.value) == (f"interrupted; {run_dir} keeps the checkpoint of epoch 1: "
                               f"continue with s2s run --resume {run_dir}")
    assert checkpoint.load(run_dir).epoch == 1  # committed, copies refreshed, nothing half-way
    for name in ("best.params", "last.params"):
        checkpoint.check_file(run_dir, name)
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1
    assert not list(run_dir.rglob("*.tmp"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back


# -- MXNet's generator: reseeded per epoch ------------------------------------------------

class DroppingEncoder(LSTMEncoder):
    """The lstm encoder with dropout on its outputs: training draws from MXNet's generator
    (the fused LSTM's own dropout draws nothing on the CPU)."""

    def __init__(self, params, vocab_size, source_length, **kwargs):
        super().__init__(params, vocab_size, source_length, **kwargs)
        with self.name_scope():
            self.drop = nn.Dropout(0.5)

    def hybrid_forward(self, F, src, mask):
        outputs, h, c = super().hybrid_forward(F, src, mask)
        return self.drop(outputs), h, c


def test_resuming_a_model_with_dropout_repeats_the_uninterrupted_run(tmp_path):
    """MXNet's generator state cannot be saved; reseeding it from (seed, epoch) every epoch
    makes epoch 2 draw the same dropout masks after a resume. (Threaded engine, in-process:
    deterministic on the CPU as measured; the NaiveEngine tests are test_resume.py.)"""
    plugin = types.SimpleNamespace(s2s_encoders=hookimpl(lambda: {"dropping": DroppingEncoder}))
    registry = Registry(make_plugin_manager([plugin]))
    config = lambda epochs: parse_config(small(epochs, encoder={"type": "dropping"}), "drop.toml", registry)  # noqa: E731
    whole = train(config(2), tmp_path / "whole", QUIET)
    part = train(config(1), tmp_path / "part", QUIET)
    resumed = resume(part.run_dir, config(2), console=QUIET)
    for row, expected in zip(resumed.history, whole.history):
        assert {k: v for k, v in row.items() if k != "seconds"} == pytest.approx(
            {k: v for k, v in expected.items() if k != "seconds"}, rel=1e-6)
    ours = load_run(resumed.run_dir, rundir.LAST, registry).model
    theirs = load_run(whole.run_dir, rundir.LAST, registry).model
    for (name, p), q in zip(ours.collect_params().items(), theirs.collect_params().values()):
        np.testing.assert_allclose(p.data().asnumpy(), q.data().asnumpy(), rtol=1e-5, atol=1e-7, err_msg=name)


# -- a write that fails (disk full, read-only directory) -------------------------------

@contextlib.contextmanager
def failing_os_call(number: int, error: int):
    """Call ``number`` (0-based) among tempfile.mkstemp, os.fsync and os.replace raises
    OSError(error): creating, flushing or renaming any file s2s writes. The one place an
    OS call is faked: a full disk or a read-only directory cannot be made without root."""
    calls = itertools.count()
    real = {"mkstemp": tempfile.mkstemp, "fsync": os.fsync, "replace": os.replace}

    def failing(name):
        def call(*args, **kwargs):
            if next(calls) == number:
                raise OSError(error, os.strerror(error))
            return real[name](*args, **kwargs)
        return call

    with mock.patch.object(tempfile, "mkstemp", failing("mkstemp")), \
            mock.patch.object(os, "fsync", failing("fsync")), mock.patch.object(os, "replace", failing("replace")):
        yield


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, registry):
    """A run after epoch 1 and its session, to save an epoch 2 into copies of it."""
    config = parse_config(small(1), "small.toml", registry)
    run_dir = train(config, tmp_path_factory.mktemp("one"), QUIET).run_dir
    return run_dir, prepare(config)


def _draws(progress: checkpoint.Progress) -> tuple:
    return (random.random(), np.random.rand(), progress.shuffle_rng.permutation(10).tolist(),
            progress.sample_rng.random())


def test_every_generator_continues_after_a_restore(one_epoch, tmp_path):
    """Python's and numpy's global generators, the shuffling and the sampling one."""
    base, session = one_epoch
    run_dir = copy_run(base, tmp_path)
    progress = checkpoint.restore(checkpoint.load(run_dir), session)
    _draws(progress)  # move each on from where epoch 1 left it
    progress.record({**progress.history[0], "epoch": 2}, "exact_match", progress.step * 2)
    checkpoint.save(run_dir, session, progress, 0.01)
    expected = _draws(progress)
    assert _draws(checkpoint.restore(checkpoint.load(run_dir), session)) == expected


def test_predict_while_the_run_saves_an_epoch_is_not_mistaken_for_corruption(one_epoch, tmp_path):
    """s2s predict reads checkpoint.json, then hashes best.params: a training process may
    replace both in between (here: saves a better epoch 2 at that very moment)."""
    base, session = one_epoch
    run_dir = copy_run(base, tmp_path)
    progress = checkpoint.restore(checkpoint.load(run_dir), session)
    first = progress.history[0]
    progress.record({**first, "epoch": 2, "exact_match": first["exact_match"] + 0.1}, "exact_match", 2)
    weight = next(iter(session.model.collect_params().values()))
    weight.set_data(weight.data() + 1)  # epoch 2 "trained"
    old_best = (run_dir / "best.params").read_bytes()
    real_sha256, saved = checkpoint._sha256, []

    def sha256_while_an_epoch_is_saved(path):
        if not saved:
            saved.append(path)
            checkpoint.save(run_dir, session, progress, 0.01)  # its own hashes come here too
        return real_sha256(path)

    with mock.patch.object(checkpoint, "_sha256", sha256_while_an_epoch_is_saved):
        checkpoint.check_file(run_dir, "best.params")
    assert saved == [run_dir / "best.params"] and (run_dir / "best.params").read_bytes() != old_best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.integers(0, 30), error=st.sampled_from([errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO]),
       better=st.booleans())
def test_a_failed_write_leaves_a_complete_loadable_checkpoint(one_epoch, tmp_path, number, error, better):
    base, session = one_epoch
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        run_dir = copy_run(base, Path(scratch))
        before = {name: (run_dir / name).read_bytes() for name in ("best.params", "last.params", "metrics.jsonl")}
        progress = checkpoint.restore(checkpoint.load(run_dir), session)
        first = progress.history[0]
        progress.record({**first, "epoch": 2, "exact_match": first["exact_match"] + (0.1 if better else -0.1)},
                        "exact_match", progress.step * 2)
        try:
            with failing_os_call(number, error):
                checkpoint.save(run_dir, session, progress, 0.01)
        except OSError as exc:
            assert exc.errno == error
            assert not Path(exc.filename).name.startswith(".")  # names the file, not a temporary one
        saved = checkpoint.load(run_dir)  # complete and checked, whatever failed
        assert saved.epoch in (1, 2)
        assert not list(run_dir.rglob("*.tmp"))
        if saved.epoch == 1:  # failed before the commit: everything as it was
            assert {name: (run_dir / name).read_bytes() for name in before} == before
        for name in ("best.params", "last.params"):  # a copy is never mistaken for corruption
            checkpoint.check_file(run_dir, name)
        # Resuming refreshes the copies from the checkpoint.
        checkpoint.publish(saved)
        assert (run_dir / "last.params").read_bytes() == saved.path("params").read_bytes()
        assert (run_dir / "best.params").read_bytes() == saved.path("best").read_bytes()


@pytest.mark.parametrize("error, target, words", [
    (errno.ENOSPC, "checkpoint.json", "No space left on device"),
    (errno.EROFS, "epoch-0002.params", "Read-only file system"),
])
def test_disk_full_or_read_only_while_saving_is_one_line_and_keeps_the_last_epoch(tmp_path, cli, error, target, words):
    real_replace = os.replace

    def replace(source, destination):
        destination = Path(destination)  # fail only in epoch 2's save
        saving_epoch_2 = "0002" in destination.name or (destination.parent / "checkpoint/epoch-0002.states").exists()
        if destination.name == target and saving_epoch_2:
            raise OSError(error, os.strerror(error))
        return real_replace(source, destination)

    path = write_toml(tmp_path / "t.toml", small(3))
    with mock.patch.object(os, "replace", replace):
        # --worker train: the training itself, in this process, where the patch is.
        result = cli("run", path, "--out", tmp_path / "runs", "--worker", "train")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert result.exit_code == 1
    file = run_dir / ("checkpoint.json" if target == "checkpoint.json" else f"checkpoint/{target}")
    assert result.stderr == (f"error: cannot save epoch 2: {file}: {words}; {run_dir} keeps the checkpoint of "
                             f"epoch 1: continue with s2s run --resume {run_dir}\n")
    assert checkpoint.load(run_dir).epoch == 1
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs a POSIX file-size limit")
def test_a_real_write_failure_in_mxnets_own_writer(tmp_path):
    """A file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) makes every write past 100 kB fail
    for real, inside MXNet's C++ writer too: no root and nothing faked."""
    import resource
    import signal
    import subprocess
    import sys

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    path = write_toml(tmp_path / "t.toml", small(2))  # its parameters take ~200 kB
    proc = subprocess.run([sys.executable, "-m", "s2s_core", "run", str(path), "--out", str(tmp_path / "runs")],
                          preexec_fn=limit, capture_output=True, text=True, timeout=300)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: cannot save epoch 1: {run_dir / 'checkpoint/epoch-0001.params'}: ")
    assert proc.stderr.endswith(f"; no epoch finished, {run_dir} has nothing to resume from\n")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in run_dir.rglob("*")) == ["checkpoint", "config.toml", "vocab.json"]


# -- broken run directories: predict and resume name the broken file -----------------

@st.composite
def damage(draw, run_dir: Path):
    """(relative path, new bytes or None for deleted) for one file of ``run_dir``."""
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    name = draw(st.sampled_from(files))
    raw = (run_dir / name).read_bytes()
    kind = draw(st.sampled_from(["delete", "truncate", "flip", "garbage", "empty"]))
    if kind == "delete":
        return name, None
    if kind == "truncate":
        return name, raw[:draw(st.integers(0, len(raw) - 1))]
    if kind == "flip":
        data = bytearray(raw)
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] ^= draw(st.integers(1, 255))
        return name, bytes(data)
    if kind == "garbage":
        return name, draw(st.binary(min_size=1, max_size=300))
    return name, b""


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_run_directories_give_one_line_naming_the_file(data, finished, tmp_path):
    base = finished
    name, new = data.draw(damage(base))
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        run_dir = copy_run(base, Path(scratch))
        if new is None:
            (run_dir / name).unlink()
        else:
            (run_dir / name).write_bytes(new)
        for command, attempt in (("predict", lambda: load_run(run_dir)),
                                 ("resume", lambda: resume(run_dir, epochs=2, console=QUIET))):
            try:
                attempt()
                event(f"{command}: works")  # the damage did not matter to it (or was repaired)
            except S2SError as exc:
                message = str(exc)
                assert "\n" not in message
                assert str(run_dir / name) in message, (name, message)
                event(f"{command}: names the file")


@pytest.mark.parametrize("damage_kind", ["truncated", "one byte changed", "vocab missing", "another model"])
def test_predict_on_damaged_runs_names_the_file(finished, tmp_path, cli, damage_kind, registry):
    run_dir = copy_run(finished, tmp_path)
    best = run_dir / "best.params"
    if damage_kind == "truncated":
        best.write_bytes(best.read_bytes()[:1000])
        expected = f"{best}: corrupted"
    elif damage_kind == "one byte changed":  # in the middle of the numbers: MXNet loads it happily
        data = bytearray(best.read_bytes())
        data[len(data) // 2] ^= 1
        best.write_bytes(bytes(data))
        expected = f"{best}: corrupted (its SHA-256 differs from the one in {run_dir / 'checkpoint.json'})"
    elif damage_kind == "vocab missing":
        (run_dir / "vocab.json").unlink()
        expected = f"{run_dir / 'vocab.json'}: missing"
    else:
        other = parse_config(small(encoder={"hidden": 32}, decoder={"hidden": 32}), "other.toml", registry)
        rundir.write_config(run_dir, other)
        expected = (f"{run_dir / 'config.toml'}: describes another model than the one trained here "
                    f"(model.decoder.hidden 64 -> 32, model.encoder.hidden 64 -> 32)")
    result = cli("predict", run_dir, "1+1")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {expected}") and result.stderr.count("\n") == 1, result.stderr


def test_resume_names_a_corrupted_optimizer_state(finished, tmp_path, cli):
    run_dir = copy_run(finished, tmp_path)
    states = run_dir / "checkpoint" / "epoch-0002.states"
    states.write_bytes(states.read_bytes()[:-10])
    result = cli("run", "--resume", run_dir, "--epochs", "3")
    assert result.exit_code == 2
    assert result.stderr == (f"error: {states}: corrupted (its SHA-256 differs from the one in "
                             f"{run_dir / 'checkpoint.json'})\n")
