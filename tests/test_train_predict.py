"""Training a real tiny model, its run directory, and predicting from it."""

from __future__ import annotations

import json

import numpy as np

from conftest import run_s2s, tiny, write_toml
from s2s_core import rundir
from s2s_core.predict import predict
from s2s_core.rundir import load_run


def test_tiny_model_learns_well_above_chance(trained_run):
    history = trained_run.history
    assert len(history) == 12
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 5
    # Chance on 2-digit sums is about 1 in 100 for the whole answer.
    assert trained_run.best["exact_match"] > 0.5
    assert trained_run.best["char_accuracy"] > 0.8


def test_run_directory_holds_everything(trained_run):
    files = {p.name for p in trained_run.run_dir.iterdir()}
    assert {"config.toml", "vocab.json", "metrics.jsonl", "best.params", "last.params"} <= files
    assert not [name for name in files if name.endswith(".tmp")]
    rows = [json.loads(line) for line in (trained_run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 13))
    best = max(rows, key=lambda r: r["exact_match"])
    assert best["epoch"] == trained_run.best["epoch"]


def test_reloaded_run_predicts_what_the_trained_model_did(trained_run):
    from s2s_core.search import decode_arrays
    from s2s_core.train import decode_texts

    run = load_run(trained_run.run_dir)
    questions = [q for q, _ in run.task.load_data(run.config.training.seed)[1]]
    answers = predict(run, questions)
    # Compare with the best epoch's recorded exact match on the same questions.
    truths = [t for _, t in run.task.load_data(run.config.training.seed)[1]]
    exact = np.mean([a.output == t for a, t in zip(answers, truths)])
    assert abs(exact - trained_run.best["exact_match"]) < 1e-9
    # And the last parameters reload into exactly the same outputs as a fresh decode.
    last = load_run(trained_run.run_dir, which=rundir.LAST)
    src = np.array([[1, 2, 3, 4, 5]], dtype=np.float32)
    a = decode_texts(last.task, last.target_vocab, decode_arrays(last.model, src)[0])
    b = decode_texts(last.task, last.target_vocab, decode_arrays(load_run(trained_run.run_dir, rundir.LAST).model, src)[0])
    assert a == b


def test_runs_never_share_a_directory(tmp_path):
    first = rundir.create_run_dir(tmp_path, "x")
    second = rundir.create_run_dir(tmp_path, "x")
    assert first != second and first.is_dir() and second.is_dir()


def test_predict_cli_answers_good_lines_and_reports_bad_ones(trained_run, cli):
    run = load_run(trained_run.run_dir)
    good = predict(run, ["12+34", "5+5"])
    result = cli("predict", trained_run.run_dir, "12+34", "1a+2", "5+5", "123+4")
    assert result.exit_code == 2
    lines = result.stdout.splitlines()
    assert lines == [good[0].output, "", good[1].output, ""]  # one line per input
    errors = result.stderr.splitlines()
    assert errors == ["error: input 2: '1a+2': not in the vocabulary: 'a'",
                      "error: input 4: '123+4': expected a+b with operands of 1 to 2 digits"]


def test_predict_reads_stdin_one_per_line(trained_run, cli):
    result = cli("predict", trained_run.run_dir, input="1+1\n22+33\r\n")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2


def test_predict_on_a_broken_run_is_one_line(tmp_path, trained_run, cli):
    result = cli("predict", tmp_path / "nothing", "1+1")
    assert result.exit_code == 2
    assert result.output.strip().endswith("not a run directory")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.toml", "vocab.json"):
        (broken / name).write_bytes((trained_run.run_dir / name).read_bytes())
    (broken / "best.params").write_bytes((trained_run.run_dir / "best.params").read_bytes()[:100])
    result = cli("predict", broken, "1+1")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "best.params: cannot load parameters" in result.output


def test_s2s_run_end_to_end_as_a_process(tmp_path):
    path = write_toml(tmp_path / "t.toml", tiny(training={"epochs": 1, "sample_every": 1, "samples": 3}))
    proc = run_s2s("run", path, "--out", tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("run directory: ")
    run_dir = lines[-1].split(": ", 1)[1]
    assert run_dir.startswith(str(tmp_path / "runs"))
    samples = [line for line in lines if line.startswith("  ")]
    assert len(samples) == 3
    assert all(line.endswith((" ok", " wrong")) for line in samples)  # plain text when piped
    assert "\033[" not in proc.stdout
    assert "Traceback" not in proc.stderr
