"""Where a training step's time goes: MXNet's profiler over a few steps of a task file.

    python benchmarks/profile_step.py tasks/addition_seed.toml [BATCHES]
    OMP_NUM_THREADS=1 python benchmarks/profile_step.py tasks/addition.toml 100

Prints ms per step and MXNet's aggregate table (operators are bulked into segments
when hybridized; set training.hybridize = false in a copy of the task file to see
single operators).
"""

from __future__ import annotations

import sys
import time

import s2s_core  # noqa: F401  (before MXNet: the thread setting)
import mxnet as mx
import numpy as np

from s2s_core.config import load_config
from s2s_core.train import prepare, train_step


def main() -> None:
    config = load_config(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    session = prepare(config)
    size = config.training.batch_size
    indices = [np.arange(b * size, (b + 1) * size) for b in range(steps + 2)]
    for index in indices[:2]:  # warm-up: graphs are built here
        train_step(session, index)
    mx.nd.waitall()
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename="/dev/null")
    mx.profiler.set_state("run")
    started = time.perf_counter()
    for index in indices[2:]:
        train_step(session, index)
    mx.nd.waitall()
    elapsed = time.perf_counter() - started
    mx.profiler.set_state("stop")
    print(f"{config.path}: {1000 * elapsed / steps:.1f} ms per training step "
          f"(batch {size}, {steps} steps, OMP_NUM_THREADS={__import__('os').environ.get('OMP_NUM_THREADS')})")
    print(mx.profiler.dumps(sort_by="total", ascending=False))


if __name__ == "__main__":
    main()
