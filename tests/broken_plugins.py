"""Encoders built to fail, for the engine tests.

Child processes of ``s2s run`` load this module through ``S2S_PLUGINS=broken_plugins``
with this directory on ``PYTHONPATH`` (see ``test_engine.py``). Each wraps the
built-in LSTM encoder, so it takes the same options.
"""

from __future__ import annotations

import os
import resource

from s2s_core.hooks import hookimpl
from s2s_plugins.lstm import LSTMEncoder


class ShapeBugEncoder(LSTMEncoder):
    """Returns outputs one feature narrower than the ``output_size`` it announces.

    The decoder's layers were built for ``output_size``: shape inference fails there,
    when the operator is called, under either engine.
    """

    def hybrid_forward(self, F, src, mask):
        outputs, h, c = super().hybrid_forward(F, src, mask)
        return F.slice_axis(outputs, axis=2, begin=0, end=-1), h, c


class UnreadFailureEncoder(LSTMEncoder):
    """Issues an operator that fails when it runs, and never reads its result.

    ``take`` with ``mode="raise"`` from a table one row short of the vocabulary: the
    index check happens while the operator runs, not when it is called. NaiveEngine
    raises at that line; the threaded engine only where something waits for it
    (nothing here does). Imperative only: a hybridized graph drops the unused result.
    """

    def hybrid_forward(self, F, src, mask):
        table = F.one_hot(F.arange(self.vocab_size - 1), self.vocab_size)
        F.take(table, src, mode="raise")  # the off-by-one lookup; its result is dropped
        return super().hybrid_forward(F, src, mask)


class AbortEncoder(LSTMEncoder):
    """Kills its process with SIGABRT, as the threaded engine does on a GPU failure."""

    def hybrid_forward(self, F, src, mask):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file from a test
        os.abort()


@hookimpl
def s2s_encoders():
    return {"shape_bug": ShapeBugEncoder, "unread_failure": UnreadFailureEncoder,
            "abort": AbortEncoder}
