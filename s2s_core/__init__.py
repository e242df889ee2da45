"""s2s core: interfaces, plugin hooks, configuration, training and decoding."""

import os


def _openmp_threads() -> None:
    """One OpenMP thread for MXNet's CPU operators unless the user chose otherwise.

    Measured on the 2-core machine (docs/performance.md): two threads with OpenMP's
    default active waiting made a lone training run 1.25x (main job) to 1.8x (seed
    model) faster, but two such processes at once spun against each other and a
    one-minute run took over fifteen; passive waiting was slower than one thread. One
    thread is MXNet's own choice on that machine; s2s makes it the rule everywhere, so
    that runs behave alike. It must be set before MXNet loads OpenMP, which is why it
    happens on importing s2s_core.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")


_openmp_threads()

from .hooks import hookimpl  # noqa: E402  (after the thread setting, see above)

__all__ = ["hookimpl"]
