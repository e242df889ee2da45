"""s2s core: interfaces, plugin hooks, configuration, training and decoding."""

import os


def _openmp_threads() -> None:
    """Give MXNet's CPU operators every core (up to 4) unless the user chose.

    MXNet ran its operators on one OpenMP thread on the 2-core machine s2s is measured
    on; two threads, with OpenMP's default (active) waiting, made training steps 1.25x
    (main job) to 1.8x (the seed's model) faster, while OMP_WAIT_POLICY=PASSIVE made
    them slower (docs/performance.md). It must be set before MXNet loads OpenMP, which
    is why it happens on importing s2s_core. The cap: spinning threads cost small
    operators more than they give on machines not measured here.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        os.environ["OMP_NUM_THREADS"] = str(max(1, min(cores or 1, 4)))


_openmp_threads()

from .hooks import hookimpl  # noqa: E402  (after the thread setting, see above)

__all__ = ["hookimpl"]
