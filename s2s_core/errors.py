"""The exceptions s2s turns into one-line messages and exit codes.

Anything raised as an :class:`S2SError` is a problem with the user's input (a
config, an expression, a file, a run directory): the CLI prints ``error: <message>``
on one line and exits with ``exit_code``; no traceback unless ``--debug``.
"""


def one_line(exc: BaseException, limit: int = 200) -> str:
    """One line of an exception's message, for an error message of our own.

    MXNet's messages may start with a C++ traceback and end with the message: the last
    line then; otherwise the first.
    """
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line[:limit]


class S2SError(Exception):
    """A user-facing error: the message is one line saying what is wrong and where."""

    exit_code = 2


class ConfigError(S2SError):
    """A configuration file is unreadable, or a key in it is unknown, mistyped or out of range."""


class PluginError(S2SError):
    """A plugin name is unknown, registered twice, or a plugin is malformed."""


class InputError(S2SError):
    """One input (expression, sentence, corpus line) cannot be encoded."""


class RunDirError(S2SError):
    """A run directory, or a file in it, is missing or broken."""


class TrainingError(S2SError):
    """Training could not go on (diverged, engine failure)."""

    exit_code = 1


class Interrupted(S2SError):
    """Training was stopped by Ctrl-C; the run directory keeps the last finished epoch."""

    exit_code = 130  # 128 + SIGINT, as shells report it
