"""Stopped and resumed runs end where an uninterrupted one does (NaiveEngine, CPU).

Every run here is a real ``s2s`` process with ``MXNET_ENGINE_TYPE=NaiveEngine``: stopped
cleanly after k epochs, by Ctrl-C (SIGINT) or by ``kill -9`` mid-epoch, then resumed
with ``s2s run --resume``; its parameters and metrics history must equal those of a run
that was never stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest

from conftest import run_s2s, tiny, write_toml
from s2s_core import checkpoint

NAIVE = {"MXNET_ENGINE_TYPE": "NaiveEngine"}
EPOCHS = 4
#: Samples every 2 epochs: the sampling generator's state must survive the stop too.
CONFIG = tiny(task={"questions": 1500}, training={"epochs": EPOCHS, "sample_every": 2, "samples": 3})


@pytest.fixture(scope="module")
def task_file(tmp_path_factory) -> Path:
    return write_toml(tmp_path_factory.mktemp("task") / "tiny.toml", CONFIG)


def train_process(task_file: Path, out: Path, *args) -> tuple[Path, subprocess.CompletedProcess]:
    proc = run_s2s("run", task_file, "--out", out, *args, env=NAIVE)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = out.iterdir()
    return run_dir, proc


@pytest.fixture(scope="module")
def uninterrupted(task_file, tmp_path_factory):
    """The reference: all epochs in one process."""
    return train_process(task_file, tmp_path_factory.mktemp("uninterrupted"))


def history(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        del row["seconds"]
    return rows


def assert_same_run(run_dir: Path, reference: Path) -> None:
    ours, theirs = history(run_dir), history(reference)
    assert [r["epoch"] for r in ours] == [r["epoch"] for r in theirs] == list(range(1, EPOCHS + 1))
    for row, expected in zip(ours, theirs):
        assert row == pytest.approx(expected, rel=1e-6, abs=1e-9)
    for name in ("last.params", "best.params"):
        ours, theirs = mx.nd.load(str(run_dir / name)), mx.nd.load(str(reference / name))
        assert ours.keys() == theirs.keys()
        for key in ours:
            np.testing.assert_allclose(ours[key].asnumpy(), theirs[key].asnumpy(), rtol=1e-5, atol=1e-7)
    assert checkpoint.load(run_dir).epoch == EPOCHS
    assert not [p for p in run_dir.rglob("*.tmp")]


def sample_lines(proc) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("  ")]


def resume_process(run_dir: Path, *args) -> subprocess.CompletedProcess:
    proc = run_s2s("run", "--resume", run_dir, *args, env=NAIVE)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def test_same_config_and_seed_give_the_same_loss_history(task_file, uninterrupted, tmp_path):
    """Determinism: a second process with the same config and seed repeats the first exactly."""
    again, _ = train_process(task_file, tmp_path)
    assert history(again) == history(uninterrupted[0])  # exact, not approximate
    assert (again / "vocab.json").read_bytes() == (uninterrupted[0] / "vocab.json").read_bytes()


def test_stopped_after_two_epochs_and_resumed(task_file, uninterrupted, tmp_path):
    run_dir, first = train_process(task_file, tmp_path, "--epochs", "2")
    assert checkpoint.load(run_dir).epoch == 2
    second = resume_process(run_dir, "--epochs", str(EPOCHS))
    assert "resuming" in second.stdout and f"after epoch 2 of {EPOCHS}" in second.stdout
    assert_same_run(run_dir, uninterrupted[0])
    # The validation samples printed after epochs 2 and 4 are the uninterrupted run's.
    assert sample_lines(first) + sample_lines(second) == sample_lines(uninterrupted[1])


def start(task_file: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "s2s_core", "run", str(task_file), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **NAIVE))


def wait_for_epoch(proc: subprocess.Popen, epoch: int) -> None:
    """Read the process's output until it reports ``epoch`` finished (checkpoint committed)."""
    for line in proc.stdout:
        if line.startswith(f"epoch {epoch:>3}/"):
            return
    raise AssertionError(f"the run ended before epoch {epoch}: {proc.stderr.read()}")


def test_ctrl_c_keeps_the_last_finished_epoch_and_says_how_to_resume(task_file, uninterrupted, tmp_path):
    proc = start(task_file, tmp_path)
    wait_for_epoch(proc, 1)
    proc.send_signal(signal.SIGINT)  # during epoch 2 (or, at worst, while saving it)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130
    (run_dir,) = tmp_path.iterdir()
    kept = checkpoint.load(run_dir).epoch
    assert kept in (1, 2)
    ours = [line for line in stderr.splitlines() if "MXNet start using engine" not in line]
    assert ours == [f"error: interrupted; {run_dir} keeps the checkpoint of epoch {kept}: "
                    f"continue with s2s run --resume {run_dir}"]
    assert len(history(run_dir)) == kept
    assert not [p for p in run_dir.rglob("*.tmp")]
    resume_process(run_dir)
    assert_same_run(run_dir, uninterrupted[0])


@pytest.mark.slow
def test_kill_9_mid_epoch_loses_only_that_epoch(task_file, uninterrupted, tmp_path):
    proc = start(task_file, tmp_path)
    wait_for_epoch(proc, 2)
    time.sleep(0.2)  # into epoch 3
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    (run_dir,) = tmp_path.iterdir()
    assert checkpoint.load(run_dir).epoch in (2, 3)  # complete and loadable, whatever the instant
    resume_process(run_dir)
    assert_same_run(run_dir, uninterrupted[0])
