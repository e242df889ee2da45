"""``lstm`` encoder and decoder, on MXNet's fused (oneDNN) LSTM operator (:class:`FusedRecurrent`)."""

from __future__ import annotations

from s2s_core.hooks import hookimpl

from .recurrent import RecurrentDecoder, RecurrentEncoder


class LSTMEncoder(RecurrentEncoder):
    """Fused LSTM over the whole source; states ``(h, c)``, see :class:`RecurrentEncoder`."""

    mode = "lstm"
    num_states = 2


class LSTMDecoder(RecurrentDecoder):
    """LSTM decoder step; states ``(h, c)``, see :class:`RecurrentDecoder`."""

    mode = "lstm"
    num_states = 2


@hookimpl
def s2s_encoders():
    return {"lstm": LSTMEncoder}


@hookimpl
def s2s_decoders():
    return {"lstm": LSTMDecoder}
