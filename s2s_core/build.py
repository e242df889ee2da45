"""Config -> model."""

from __future__ import annotations

from .config import Config
from .errors import ConfigError
from .interfaces import Task
from .model import Seq2Seq
from .vocab import Vocabulary


def build_model(config: Config, task: Task, source_vocab: Vocabulary,
                target_vocab: Vocabulary) -> Seq2Seq:
    """The configured encoder, attention and decoder as one :class:`Seq2Seq`."""
    source_length = task.max_source_length

    def make_attention(query_size: int, memory_size: int):
        try:
            return config.attention.build(query_size, memory_size, source_length)
        except ValueError as exc:
            raise ConfigError(f"{config.path}: model.attention: {exc}") from None

    try:
        encoder = config.encoder.build(len(source_vocab), source_length)
    except ValueError as exc:
        raise ConfigError(f"{config.path}: model.encoder: {exc}") from None
    try:
        decoder = config.decoder.build(len(target_vocab), encoder, source_length,
                                       make_attention if config.attention else None)
    except ValueError as exc:
        raise ConfigError(f"{config.path}: model.decoder: {exc}") from None
    return Seq2Seq(encoder, decoder, task.max_target_length + 1)
