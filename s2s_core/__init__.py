"""s2s core: interfaces, plugin hooks, configuration, training and decoding."""

from .hooks import hookimpl

__all__ = ["hookimpl"]
