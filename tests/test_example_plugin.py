"""The third-party plugin in examples/: tested from its source, then installed for real."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from mxnet import nd

from conftest import ROOT, run_s2s, tiny
from s2s_core.config import parse_config
from s2s_core.hooks import Registry, make_plugin_manager
from s2s_core.train import Console, train

EXAMPLE = ROOT / "examples" / "s2s-example-plugin"
DISTRIBUTION = "s2s-example-plugin"


def load_example_module():
    """The plugin module from its source folder, without installing it."""
    spec = importlib.util.spec_from_file_location("s2s_example_plugin_source",
                                                  EXAMPLE / "s2s_example_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scaled_dot_attention_weights_real_positions_only_and_hybridizes():
    module = load_example_module()
    attention = module.ScaledDotAttention(module.ScaledDotParams(size=8), query_size=6,
                                          memory_size=5, source_length=4)
    attention.initialize(mx.init.Xavier())
    rng = np.random.default_rng(0)
    query, outputs = nd.array(rng.normal(size=(3, 2, 6))), nd.array(rng.normal(size=(3, 4, 5)))
    mask = nd.array([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    memory = attention.prepare(nd, outputs)
    context, weights = attention(query, memory, mask)
    assert context.shape == (3, 2, 5) and weights.shape == (3, 2, 4)
    w = weights.asnumpy()
    np.testing.assert_allclose(w.sum(axis=2), 1.0, atol=1e-6)
    assert np.all(w[1, :, 2:] < 1e-6) and np.all(w[2, :, 1:] < 1e-6)
    # The context is the weighted sum of the encoder outputs themselves.
    np.testing.assert_allclose(context.asnumpy()[2], np.repeat(outputs.asnumpy()[2, :1], 2, 0), atol=1e-6)
    attention.hybridize()
    np.testing.assert_allclose(attention(query, memory, mask)[1].asnumpy(), w, atol=1e-6)


def test_example_plugin_from_its_source_tree_trains(tmp_path):
    """How a plugin author tests before packaging: register the module by hand."""
    module = load_example_module()
    registry = Registry(make_plugin_manager([module]))
    data = tiny(model={"attention": {"type": "scaled_dot", "size": 16}}, training={"epochs": 1})
    data["task"] = {"type": "sort", "letters": "abcdef", "length": 4, "examples": 3000}
    config = parse_config(data, "sort.toml", registry)
    result = train(config, tmp_path, Console(quiet=True))
    # Sorting 1-4 letters right by chance: well under 1%.
    assert result.best["exact_match"] > 0.5


def pip(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.fixture
def installed_example(tmp_path):
    """The example package pip-installed into this environment (offline), removed afterwards."""
    source = tmp_path / "s2s-example-plugin"
    shutil.copytree(EXAMPLE, source)  # the build writes build/ and *.egg-info beside the sources
    pip("uninstall", "-y", DISTRIBUTION)  # left over from an interrupted run
    proc = pip("install", "--no-build-isolation", "--no-deps", str(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        yield source
    finally:
        proc = pip("uninstall", "-y", DISTRIBUTION)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_installed_example_plugin_is_listed_and_runs(installed_example, tmp_path):
    proc = run_s2s("plugins")
    assert proc.returncode == 0, proc.stderr
    listed = [line.split() for line in proc.stdout.splitlines()]
    assert ["sort", "s2s_example_plugin.SortTask", f"[{DISTRIBUTION}", "0.1.0]"] in listed
    assert ["scaled_dot", "s2s_example_plugin.ScaledDotAttention", f"[{DISTRIBUTION}", "0.1.0]"] in listed

    proc = run_s2s("run", installed_example / "sort.toml", "--epochs", "1", "--out", tmp_path / "runs")
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    row = json.loads((run_dir / "metrics.jsonl").read_text())
    assert row["exact_match"] > 0.5  # measured: 97.5% after one epoch

    proc = run_s2s("predict", run_dir, "dbca", "hello")
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == ["abcd", ""]
    assert proc.stderr == "error: input 2: 'hello': not in the vocabulary: 'l', 'o'\n"


def test_docs_show_the_example_files_as_they_are():
    """docs/plugins.md quotes the example's files whole; a changed file must be quoted anew."""
    doc = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    quoted = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", doc, flags=re.S)
    assert {path for path, _ in quoted} == {
        "examples/s2s-example-plugin/s2s_example_plugin.py",
        "examples/s2s-example-plugin/pyproject.toml",
        "examples/s2s-example-plugin/sort.toml"}
    for path, text in quoted:
        assert text == (ROOT / path).read_text(encoding="utf-8"), path
