"""Where the time goes: MXNet's profiler over training steps or greedy decoding of a task file.

    python benchmarks/profile_step.py tasks/addition_seed.toml [BATCHES]
    python benchmarks/profile_step.py tasks/addition_seed.toml --decode [QUESTIONS]
    OMP_NUM_THREADS=1 MXNET_EXEC_BULK_EXEC_TRAIN=0 python benchmarks/profile_step.py tasks/addition.toml 100

Prints ms per training step (or questions/s decoded) and MXNet's aggregate operator
table. A hybridized graph runs its operators in bulked segments, which the table shows
as one row ("RNN,SwapAxis,..."); MXNET_EXEC_BULK_EXEC_TRAIN=0 (training) or
MXNET_EXEC_BULK_EXEC_INFERENCE=0 (decoding) list them one by one.
"""

from __future__ import annotations

import os
import sys
import time

import s2s_core  # noqa: F401  (before MXNet: the thread setting)
import mxnet as mx
import numpy as np

from s2s_core.config import load_config
from s2s_core.search import DECODE_BATCH, decode_arrays
from s2s_core.train import prepare, train_step


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--decode"]
    decoding = "--decode" in sys.argv
    config = load_config(args[0])
    session = prepare(config)
    size = config.training.batch_size
    if decoding:
        count = int(args[1]) if len(args) > 1 else 2 * DECODE_BATCH
        src = np.resize(session.valid_data.src, (count, session.valid_data.src.shape[1]))
        decode_arrays(session.model, src[:DECODE_BATCH])  # warm-up: graphs are built here
        work = [lambda: decode_arrays(session.model, src)]
    else:
        count = int(args[1]) if len(args) > 1 else 8
        indices = [np.arange(b * size, (b + 1) * size) for b in range(count + 2)]
        for index in indices[:2]:  # warm-up: graphs are built here
            train_step(session, index)
        work = [lambda index=index: train_step(session, index) for index in indices[2:]]
    mx.nd.waitall()
    mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=os.devnull)
    mx.profiler.set_state("run")
    started = time.perf_counter()
    for part in work:
        part()
    mx.nd.waitall()
    elapsed = time.perf_counter() - started
    mx.profiler.set_state("stop")
    threads = os.environ.get("OMP_NUM_THREADS")
    if decoding:
        print(f"{config.path}: {count / elapsed:,.0f} questions/s greedy decoding {count:,} questions "
              f"(batches of {DECODE_BATCH}, OMP_NUM_THREADS={threads})")
    else:
        print(f"{config.path}: {1000 * elapsed / count:.1f} ms per training step "
              f"(batch {size}, {count} steps, OMP_NUM_THREADS={threads})")
    print(mx.profiler.dumps(sort_by="total", ascending=False))


if __name__ == "__main__":
    main()
