"""``gru`` encoder and decoder, on MXNet's fused GRU operator (:class:`FusedRecurrent`)."""

from __future__ import annotations

from s2s_core.hooks import hookimpl

from .recurrent import RecurrentDecoder, RecurrentEncoder


class GRUEncoder(RecurrentEncoder):
    """Fused GRU over the whole source; one state ``h``, see :class:`RecurrentEncoder`."""

    mode = "gru"
    num_states = 1


class GRUDecoder(RecurrentDecoder):
    """GRU decoder step; one state ``h``, see :class:`RecurrentDecoder`."""

    mode = "gru"
    num_states = 1


@hookimpl
def s2s_encoders():
    return {"gru": GRUEncoder}


@hookimpl
def s2s_decoders():
    return {"gru": GRUDecoder}
