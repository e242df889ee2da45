"""Shared helpers: tiny task files and running the CLI."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner

from s2s_core.cli import main

ROOT = Path(__file__).resolve().parent.parent

#: A model small enough to train in seconds: 2-digit sums.
TINY = {
    "task": {"type": "addition", "digits": 2, "questions": 3000, "validation_fraction": 0.1,
             "reverse": True},
    "model": {
        "encoder": {"type": "lstm", "hidden": 64},
        "decoder": {"type": "lstm", "hidden": 64},
        "attention": {"type": "concat"},
    },
    "training": {"epochs": 2, "batch_size": 32, "optimizer": "adam",
                 "optimizer_params": {"learning_rate": 0.01}, "lr_decay": 0.9, "seed": 3,
                 "sample_every": 0},
}


def tiny(**sections) -> dict:
    """TINY with some tables updated: ``tiny(training={"epochs": 3})``."""
    config = copy.deepcopy(TINY)
    for section, values in sections.items():
        if section == "model":
            for part, table in values.items():
                if table is None:
                    config["model"].pop(part, None)
                else:
                    config["model"].setdefault(part, {}).update(table)
        else:
            config[section].update(values)
    return config


def write_toml(path: Path, data: dict) -> Path:
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def config_file(tmp_path):
    """``config_file(dict) -> Path`` of a TOML file holding it."""
    counter = iter(range(1000))

    def make(data: dict) -> Path:
        return write_toml(tmp_path / f"task{next(counter)}.toml", data)

    return make


@pytest.fixture
def cli():
    """Run ``s2s`` in-process: ``cli("run", path) -> click Result``."""
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=True)

    return invoke


def run_s2s(*args, input=None, env=None, timeout=600, cwd=None) -> subprocess.CompletedProcess:
    """Run ``s2s`` as a real process (engine settings, exit codes, signals)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "s2s_core", *map(str, args)], input=input,
                          capture_output=True, text=True, env=full_env, timeout=timeout,
                          cwd=cwd)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny model trained for a few epochs, shared by read-only tests."""
    from s2s_core.config import parse_config
    from s2s_core.hooks import Registry
    from s2s_core.train import Console, train

    out = tmp_path_factory.mktemp("runs")
    config = parse_config(tiny(training={"epochs": 12}), "tiny.toml", Registry())
    return train(config, out, Console(quiet=True))
