"""The floor under the seed architecture's decoding on this CPU: what MXNet's fused LSTM
operator and a plain matrix product cost per row, at the seed's sizes (hidden 300,
one-hot inputs of 15, 9 encoder steps, single decoder steps).

    python benchmarks/rnn_floor.py

A decoded question costs at least one 9-step encoder call and one single-step decoder
call per answer character plus the end token; docs/performance.md explains the figures.
"""

from __future__ import annotations

import os
import time

import s2s_core  # noqa: F401  (before MXNet: the thread setting)
from mxnet import nd

HIDDEN, INPUT, STEPS = 300, 15, 9


def timed(work, repeat: int = 10) -> float:
    work()
    nd.waitall()
    started = time.perf_counter()
    for _ in range(repeat):
        work()
    nd.waitall()
    return (time.perf_counter() - started) / repeat


def main() -> None:
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    packed = nd.random.uniform(-0.1, 0.1, shape=(4 * HIDDEN * (INPUT + HIDDEN + 2),))
    for rows in (250, 1000, 2000):
        h, c = nd.zeros((1, rows, HIDDEN)), nd.zeros((1, rows, HIDDEN))
        cells = []
        for steps in (STEPS, 1):
            x = nd.random.uniform(shape=(steps, rows, INPUT))
            seconds = timed(lambda: nd.RNN(x, packed, h, c, state_size=HIDDEN, num_layers=1,
                                           mode="lstm", state_outputs=True))
            flops = 2 * steps * rows * 4 * HIDDEN * (INPUT + HIDDEN)
            cells.append(f"{steps}-step LSTM {1000 * seconds / rows:.4f} ms/row ({flops / seconds / 1e9:.0f} GFLOP/s)")
        print(f"{rows:>5} rows: " + "; ".join(cells))
    x, w, b = nd.random.uniform(shape=(2000, HIDDEN)), nd.random.uniform(shape=(4 * HIDDEN, HIDDEN)), nd.zeros(4 * HIDDEN)
    seconds = timed(lambda: nd.FullyConnected(x, w, b, num_hidden=4 * HIDDEN), 30)
    print(f"matrix product (2000 x 300) . (300 x 1200): {2 * 2000 * HIDDEN * 4 * HIDDEN / seconds / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
