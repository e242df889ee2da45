"""Divergence stops a run naming the epoch and batch and keeps the last good checkpoint;
gradient clipping bounds the update."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from conftest import tiny, write_toml
from s2s_core import checkpoint
from s2s_core.config import parse_config
from s2s_core.data import Arrays
from s2s_core.errors import TrainingError
from s2s_core.hooks import Registry
from s2s_core.train import Console, prepare, resume, train, train_epoch

QUIET = Console(quiet=True)
#: Enough to overflow float32 at the first update: the loss of batch 2 is not finite.
HUGE = {"learning_rate": 1e38}


def small(**training) -> dict:
    return tiny(task={"questions": 500}, training=training)


def run_files(run_dir) -> dict[str, bytes]:
    """Every file of a run directory, by relative path."""
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}


def test_a_huge_learning_rate_stops_the_run_naming_epoch_and_batch(tmp_path, cli):
    path = write_toml(tmp_path / "t.toml", small(optimizer="sgd", optimizer_params=HUGE))
    result = cli("run", path, "--out", tmp_path / "runs")
    assert result.exit_code == 1
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert result.stderr == (f"error: epoch 1, batch 2 of 14: training loss is inf; no epoch finished, "
                             f"{run_dir} has nothing to resume from; set training.clip_gradient or "
                             f"lower the learning rate\n")
    assert sorted(run_files(run_dir)) == ["config.toml", "vocab.json"]  # nothing of the diverged epoch


def test_divergence_keeps_the_last_good_checkpoint_and_the_run_goes_on_from_it(tmp_path):
    registry = Registry()
    first = train(parse_config(small(epochs=1), "t.toml", registry), tmp_path, QUIET)
    before = run_files(first.run_dir)
    # Resume with a learning rate that breaks the parameters at the first update.
    reckless = parse_config(small(epochs=2, optimizer_params=HUGE), "reckless.toml", registry)
    with pytest.raises(TrainingError) as info:
        resume(first.run_dir, reckless, console=QUIET)
    message = str(info.value)
    assert message.startswith("epoch 2, batch 2 of 14: training loss is nan; ")
    assert f"{first.run_dir} keeps the checkpoint of epoch 1: continue with s2s run --resume" in message
    after = run_files(first.run_dir)
    after.pop("config.toml")  # the resumed config (learning rate, epochs) was written at the start
    before.pop("config.toml")
    assert after == before  # best, last, metrics, checkpoint: byte for byte
    assert checkpoint.load(first.run_dir).epoch == 1
    # With the learning rate back, the run continues from epoch 1.
    result = resume(first.run_dir, parse_config(small(epochs=2), "t.toml", registry), console=QUIET)
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert result.history[0] == first.history[0]
    assert np.isfinite(result.history[1]["train_loss"])


def _parameters(session) -> dict[str, np.ndarray]:
    return {name: p.data().asnumpy().copy() for name, p in session.model.collect_params().items()
            if p.grad_req != "null"}


def _one_sgd_step(clip: float | None) -> float:
    """Norm of the change of all parameters after one batch of plain SGD (lr 1)."""
    training = {"optimizer": "sgd", "optimizer_params": {"learning_rate": 1.0}, "batch_size": 32,
                "clip_gradient": clip}
    config = parse_config(small(**{k: v for k, v in training.items() if v is not None}), "t.toml", Registry())
    session = prepare(config)
    data = session.train_data
    session = attrs.evolve(session, train_data=Arrays(data.src[:32], data.tgt_in[:32], data.tgt_out[:32]))
    before = _parameters(session)
    train_epoch(session, np.random.default_rng(0), QUIET, "one batch")
    after = _parameters(session)
    return float(np.sqrt(sum(((after[k] - before[k]) ** 2).sum() for k in before)))


def test_clip_gradient_bounds_the_global_norm_of_the_update():
    """SGD with lr 1 moves the parameters by the mean token gradient: with clip_gradient
    its global norm is at most the clip, and without it this batch's is larger."""
    unclipped = _one_sgd_step(None)
    clip = unclipped / 4
    clipped = _one_sgd_step(clip)
    assert unclipped > clip
    assert clipped == pytest.approx(clip, rel=1e-3)  # clipped to the bound, not below it
