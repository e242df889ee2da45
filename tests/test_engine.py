"""Engines, the preflight and the supervising `s2s run`, with plugins built to fail.

The broken encoders live in ``broken_plugins.py``; each `s2s run` here is a real
process tree (the CLI and its preflight and training children), which loads them
through ``S2S_PLUGINS``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from mxnet import nd
from mxnet.base import MXNetError

from conftest import ROOT, run_s2s, tiny
from s2s_core.engine import describe_error

TESTS = Path(__file__).resolve().parent
BROKEN = {"S2S_PLUGINS": "broken_plugins", "PYTHONPATH": str(TESTS)}


def line_of(code: str) -> int:
    """The line number of ``code`` in broken_plugins.py."""
    lines = (TESTS / "broken_plugins.py").read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if code in line)


def broken(config_file, encoder: str, **training):
    """A tiny task file whose encoder is one of broken_plugins'; imperative, one epoch."""
    return config_file(tiny(model={"encoder": {"type": encoder}},
                            training={"epochs": 1, "hybridize": False, **training}))


def error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert lines, proc.stdout
    return lines[-1]


def test_loading_a_config_runs_no_mxnet_operation():
    # The engine is created at the first operation; an unknown engine name set after
    # loading the configs must still be read then, so no operation ran before.
    probe = (
        "import os\n"
        "from s2s_core.config import load_config\n"
        "for name in ('addition.toml', 'addition_seed.toml'):\n"
        f"    load_config(os.path.join({str(ROOT / 'tasks')!r}, name))\n"
        "os.environ['MXNET_ENGINE_TYPE'] = 'NoSuchEngine'\n"
        "import mxnet as mx\n"
        "try:\n"
        "    mx.nd.zeros((1,)).asnumpy()\n"
        "except mx.base.MXNetError as exc:\n"
        "    print('engine created only now:', str(exc).strip().splitlines()[-1])\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "engine created only now: MXNetError: Cannot find Engine NoSuchEngine" in proc.stdout, proc.stderr


def test_describe_error_names_the_line_the_operator_and_its_shapes():
    with pytest.raises(MXNetError) as info:
        nd.FullyConnected(nd.ones((2, 3)), nd.ones((4, 5)), nd.ones((4,)), num_hidden=4)
    text = describe_error(info.value)
    assert "\n" not in text
    assert re.match(r"\S*tests/test_engine\.py:\d+ in test_describe_error_names_the_line_the_operator_"
                    r"and_its_shapes `nd\.FullyConnected\(", text)
    assert "operator FullyConnected(data=(2, 3), weight=(4, 5), bias=(4,))" in text
    assert text.endswith("Shape inconsistent, Provided = [4,5], inferred shape=(4,3)")


@pytest.mark.parametrize("configured, flag, expected", [
    ("naive", None, "naive"),
    ("naive", "threaded", "threaded"),
])
def test_the_engine_really_changes(config_file, tmp_path, configured, flag, expected):
    """An operator that fails while it runs, and whose result nobody reads: NaiveEngine
    raises at the plugin line that issued it; the threaded engine only at a later read.
    Either way the run ends with one error line and exit code 1, never 0."""
    path = broken(config_file, "unread_failure", engine=configured)
    args = ["--engine", flag] if flag else []
    proc = run_s2s("run", path, "--out", tmp_path / "runs", "--no-preflight", *args, env=BROKEN)
    assert proc.returncode == 1, proc.stderr
    line = error_line(proc)
    assert line.startswith("error: MXNet error: ")
    assert "Check failed: is_valid: take operator contains indices out of bound" in line
    assert "Traceback" not in proc.stderr
    if expected == "naive":
        assert proc.stdout.startswith("training under NaiveEngine (no preflight)\n")
        assert "MXNet start using engine: NaiveEngine" in proc.stderr
        assert f"broken_plugins.py:{line_of('F.take(table')} in hybrid_forward" in line
        assert "operator take(a=(13, 14), indices=(32, 5))" in line
    else:
        assert proc.stdout.startswith("training under ThreadedEnginePerDevice (no preflight)\n")
        assert "MXNet start using engine" not in proc.stderr
        assert "broken_plugins.py" not in line  # raised where a result was read
        assert "s2s_core/train.py:" in line and "rerun with --engine naive" in line


@pytest.mark.parametrize("engine", ["naive", "threaded"])
def test_a_shape_mismatch_is_one_line_under_either_engine(config_file, tmp_path, engine):
    path = broken(config_file, "shape_bug")
    proc = run_s2s("run", path, "--out", tmp_path / "runs", "--no-preflight", "--engine", engine, env=BROKEN)
    assert proc.returncode == 1
    line = error_line(proc)
    # The decoder's combine layer expects hidden + context = 128 inputs, gets 127.
    assert "plugins/recurrent.py:" in line and "self.combine(" in line
    assert "operator FullyConnected(data=(32, 4, 127), weight=(64, 128), bias=(64,))" in line
    assert "Shape inconsistent" in line
    assert "Traceback" not in proc.stderr


def test_the_preflight_stops_a_broken_model_before_training(config_file, tmp_path):
    path = broken(config_file, "shape_bug", hybridize=True)
    proc = run_s2s("run", path, "--out", tmp_path / "runs", env=BROKEN)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "preflight: 2 training batches, validation and greedy decoding under NaiveEngine, "
        "imperatively and hybridized (--no-preflight skips it)"]
    assert proc.stderr.strip().splitlines() == [error_line(proc)]  # nothing but the error
    line = error_line(proc)
    assert line.startswith("error: preflight failed in training batch 1 (imperative) under NaiveEngine: ")
    assert "operator FullyConnected(data=(32, 4, 127), weight=(64, 128), bias=(64,))" in line
    assert not (tmp_path / "runs").exists()  # the real run never started


@pytest.mark.parametrize("preflight", [True, False])
def test_a_process_killed_by_abort_is_reported_in_one_line(config_file, tmp_path, preflight):
    path = broken(config_file, "abort")
    args = [] if preflight else ["--no-preflight"]
    proc = run_s2s("run", path, "--out", tmp_path / "runs", *args, env=BROKEN)
    assert proc.returncode == 128 + signal.SIGABRT
    stage = "preflight" if preflight else "training"
    assert error_line(proc) == (f"error: the {stage} process was killed by SIGABRT; "
                                f"rerun with --engine naive to stop at the operator that failed")
    # Where the process died, from Python's fault handler.
    assert f'broken_plugins.py", line {line_of("os.abort()")} in hybrid_forward' in proc.stderr


def test_the_preflight_passes_then_the_threaded_engine_trains(cli, config_file, tmp_path):
    # In-process: click's test runner has no real stdout, so the child's output is relayed.
    result = cli("run", config_file(tiny(training={"epochs": 1})), "--out", tmp_path)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("preflight: ")
    assert lines[1].startswith("preflight passed in ")
    assert lines[1].endswith("s; training under ThreadedEnginePerDevice")
    assert lines[2].startswith("task addition: ")
    assert lines[-1].startswith(f"run directory: {tmp_path}")
    assert "MXNet start using engine" not in result.stderr  # the default engine trained


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="looks for leftover processes in /proc")
def test_sigint_to_the_cli_reaches_the_training_process(config_file, tmp_path):
    path = config_file(tiny(training={"epochs": 50, "sample_every": 0}))
    proc = subprocess.Popen([sys.executable, "-m", "s2s_core", "run", path, "--out", tmp_path / "runs",
                             "--no-preflight"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    epochs_seen = 0
    for line in proc.stdout:
        if line.startswith("epoch "):
            epochs_seen += 1
            proc.send_signal(signal.SIGINT)  # to the CLI only, as `kill -INT` would
            break
    out, err = proc.communicate(timeout=120)
    epochs_seen += out.count("\nepoch ") + out.startswith("epoch ")
    assert proc.returncode != 0, err
    assert epochs_seen < 50  # stopped, not trained to the end
    assert _processes_mentioning(str(path)) == []  # the training child is gone too
