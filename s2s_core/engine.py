"""MXNet's engines, and running training so that an engine failure is never silent.

MXNet runs every operator through an engine that it creates at the first operation,
reading ``MXNET_ENGINE_TYPE`` then; after that a change is ignored. Two matter here:

* ``ThreadedEnginePerDevice`` (MXNet's default, ``engine = "threaded"``): an operator
  returns at once and runs later. A failure is raised only where a result is next
  read, possibly far from its cause; one that is never read prints a traceback at
  exit and the process still exits 0; on GPUs a failing worker may abort the process.
* ``NaiveEngine`` (``engine = "naive"``): every operator runs when it is called, so an
  error is raised at the Python line that issued it. A little slower.

``s2s run`` therefore works as a supervisor: it loads the config (which runs no
operator), then starts the *preflight* — a few batches of training, validation and
decoding under NaiveEngine — in a child process, and then the real training in
another child under the configured engine, with the engine variable set in each
before its first operation. A child killed by a signal is reported in one line.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Sequence

import attrs

from .config import Config
from .errors import S2SError, TrainingError

ENGINE_VARIABLE = "MXNET_ENGINE_TYPE"
#: ``[training] engine`` -> MXNet's name for it.
ENGINE_TYPES = {"threaded": "ThreadedEnginePerDevice", "naive": "NaiveEngine"}

#: What the preflight runs, each under NaiveEngine, imperatively and then hybridized.
PREFLIGHT_TRAIN_BATCHES = 2
HINT = "rerun with --engine naive to stop at the operator that failed"


def set_engine(name: str) -> None:
    """Choose the engine of this process; it takes effect only before the first operation."""
    if name == "threaded":
        # MXNet's default when the variable is unset; setting it would only add a log line.
        os.environ.pop(ENGINE_VARIABLE, None)
    else:
        os.environ[ENGINE_VARIABLE] = ENGINE_TYPES[name]


# -- describing a failure in one line ---------------------------------------------------

def _in_library(frame) -> bool:
    """Whether ``frame`` runs code of MXNet, numpy or the standard library."""
    package = frame.f_globals.get("__name__", "").partition(".")[0]
    return package in ("mxnet", "numpy") or package in sys.stdlib_module_names


def _shape_of(value) -> str | None:
    from mxnet import nd

    if isinstance(value, nd.NDArray):
        return str(value.shape)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, nd.NDArray) for v in value):
        return "[" + ", ".join(_shape_of(v) for v in value) + "]"
    return None


def _operator_call(frame) -> str:
    """``name(arg=(shape), ...)`` of an MXNet operator's generated Python wrapper."""
    shapes = [f"{name}={shape}" for name, value in frame.f_locals.items()
              if name != "ndargs" and (shape := _shape_of(value)) is not None]  # ndargs: all again
    return f"{frame.f_code.co_name}({', '.join(shapes)})"


def _where(frame_summary: traceback.FrameSummary) -> str:
    path = frame_summary.filename
    with contextlib.suppress(ValueError):
        relative = os.path.relpath(path)
        if not relative.startswith(".."):
            path = relative
    code = f" `{frame_summary.line.strip()}`" if frame_summary.line else ""
    return f"{path}:{frame_summary.lineno} in {frame_summary.name}{code}"


def describe_error(exc: BaseException) -> str:
    """One line: where in user code it was raised, the MXNet operator and its input
    shapes when an operator wrapper was on the stack, and the message.

    The place is the deepest frame outside MXNet, numpy and the standard library: under
    NaiveEngine, imperatively, the plugin line that issued the failing operator.
    """
    from mxnet.base import MXNetError

    place, operator = None, None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):  # outermost first
        if frame.f_code.co_filename == "<string>":  # MXNet's generated operator wrappers
            operator = _operator_call(frame)
        elif not _in_library(frame):
            place = traceback.FrameSummary(frame.f_code.co_filename, lineno, frame.f_code.co_name)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if isinstance(exc, MXNetError):  # C++ frames first, the message last
        message = lines[-1].removeprefix("MXNetError: ") if lines else "MXNetError"
    else:
        message = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    parts = [_where(place) if place else None, f"operator {operator}" if operator else None, message]
    return ": ".join(part for part in parts if part)


def wait_for_all_work() -> None:
    """Wait until every queued operator has run; a failed one raises here."""
    from mxnet import nd

    nd.waitall()


@contextlib.contextmanager
def engine_errors(engine: str) -> Iterator[None]:
    """Turn an ``MXNetError`` into a one-line :class:`TrainingError` (exit code 1)."""
    from mxnet.base import MXNetError

    try:
        yield
    except MXNetError as exc:
        if engine == "naive":
            raise TrainingError(f"MXNet error: {describe_error(exc)}") from exc
        raise TrainingError(f"MXNet error: {describe_error(exc)} (the threaded engine reports a "
                            f"failure where a result is read, maybe after the failing operator; "
                            f"{HINT})") from exc


# -- the preflight ----------------------------------------------------------------------

def preflight(config: Config) -> None:
    """Run a few batches of training, validation loss and greedy decoding of ``config``.

    Meant for a process whose engine is NaiveEngine (see :func:`set_engine`). Runs
    imperatively first, where an error points at the plugin line, then hybridized when
    the config hybridizes. Raises :class:`TrainingError` naming the stage, the line, the
    operator and its shapes.
    """
    import numpy as np

    from .search import decode_arrays
    from .train import _batch, decode_texts, prepare, train_batches, train_step

    imperative = attrs.evolve(config, training=attrs.evolve(config.training, hybridize=False))
    stage = "building the model"
    try:
        session = prepare(imperative)
        size = min(config.training.batch_size, len(session.valid_data))
        rows = np.arange(size)
        modes = ["imperative"] + (["hybridized"] if config.training.hybridize else [])
        for mode in modes:
            if mode == "hybridized":
                session.loss.hybridize(static_alloc=True, static_shape=True)
            batches = train_batches(session, np.random.default_rng(config.training.seed))
            for number, index in enumerate(batches[:PREFLIGHT_TRAIN_BATCHES], 1):
                stage = f"training batch {number} ({mode})"
                train_step(session, index)[0].asnumpy()
            stage = f"validation loss ({mode})"
            session.loss(*_batch(session, session.valid_data, rows, size)).asnumpy()
            stage = f"greedy decoding ({mode})"
            ids, _ = decode_arrays(session.model, session.valid_data.src[rows], session.ctx, size)
            references = [target for _, target in session.valid_pairs[:size]]
            session.task.metrics(decode_texts(session.task, session.target_vocab, ids), references)
        wait_for_all_work()
    except S2SError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin may raise anything; report it in one line
        raise TrainingError(f"preflight failed in {stage} under NaiveEngine: {describe_error(exc)}") from exc


# -- the supervising parent -------------------------------------------------------------

def worker_setup() -> None:
    """In a child of :func:`supervise`: Python tracebacks on fatal signals, and exit with
    the parent (the child runs in its own process group, so nothing else would stop it)."""
    faulthandler.enable(file=sys.__stderr__, all_threads=False)  # the real stream, even in tests
    parent = os.getppid()
    _die_with_parent()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="s2s-parent-watch", daemon=True).start()


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this process the instant its parent dies.

    Without it a ``kill -9`` of ``s2s run`` left the training child running until the
    watch thread noticed (up to a second: epochs of a small model went on being saved).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def _is_real_file(stream) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return False


def _relay(source, target) -> None:
    for line in iter(source.readline, ""):
        target.write(line)
        target.flush()


def _run_child(argv: Sequence[str], capture: bool) -> tuple[int, str]:
    """Run ``argv`` in its own process group, passing SIGINT and SIGTERM on to it.

    Its own process group, so that Ctrl-C reaches it once, through us, rather than
    twice. Output goes to our stdout/stderr (relayed when those are not real files, as
    under a test runner), or is returned when ``capture``.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    relay = not capture and not (_is_real_file(sys.stdout) and _is_real_file(sys.stderr))
    pipe = subprocess.PIPE if capture or relay else None
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    env = dict(os.environ)
    if "" not in sys.path and os.getcwd() not in sys.path:
        # `python -m` would put the working directory first on the child's import path,
        # where the parent (the `s2s` script) has none: keep both importing the same.
        env["PYTHONSAFEPATH"] = "1"
    child = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=pipe, env=env,
                             stderr=subprocess.STDOUT if capture else pipe, text=True, **group)
    forwarded = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. under nohup: the child ignores it too
                forwarded[signum] = signal.signal(signum, lambda number, frame: child.send_signal(number))
    try:
        if capture:
            output = child.communicate()[0]
            return child.returncode, output
        if relay:
            threads = [threading.Thread(target=_relay, args=pair, daemon=True)
                       for pair in ((child.stdout, sys.stdout), (child.stderr, sys.stderr))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        return child.wait(), ""
    finally:
        for signum, handler in forwarded.items():
            signal.signal(signum, handler)


def _death(returncode: int, what: str) -> tuple[int, str]:
    """(exit code, message) for a child that ended by signal ``-returncode``."""
    signum = -returncode
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    if signum == signal.SIGINT:
        return 130, f"{what} interrupted"
    return 128 + signum, f"the {what} process was killed by {name}; {HINT}"


def _child(args: Sequence[str], *extra: str) -> list[str]:
    """The command line of this same ``s2s`` command (``args``: what the user typed
    after ``s2s``) run again as a child, with ``extra`` options."""
    return [sys.executable, "-m", "s2s_core", *args, *extra]


def supervise(args: Sequence[str], config: Config, run_preflight: bool, echo) -> int:
    """The preflight (if asked) and the training, as child processes; returns the exit code.

    ``args`` is the ``s2s`` command line given (it names the ``run`` command), which
    each child runs again with ``--worker``. ``echo(text, err=False)`` prints a line.
    """
    engine = config.training.engine
    if run_preflight:
        modes = "imperatively and hybridized" if config.training.hybridize else "imperatively"
        echo(f"preflight: {PREFLIGHT_TRAIN_BATCHES} training batches, validation and greedy decoding "
             f"under NaiveEngine, {modes} (--no-preflight skips it)")
        started = time.perf_counter()
        code, output = _run_child(_child(args, "--worker", "preflight"), capture=True)
        if code != 0:
            # MXNet announces a non-default engine on stderr; the preflight always uses one.
            shown = [line for line in output.splitlines() if "MXNet start using engine" not in line]
            if shown and code != -signal.SIGINT:
                echo("\n".join(shown), err=True)
            if code < 0:
                code, message = _death(code, "preflight")
                echo(f"error: {message}", err=True)
            return code
        echo(f"preflight passed in {time.perf_counter() - started:.1f}s; "
             f"training under {ENGINE_TYPES[engine]}")
    else:
        echo(f"training under {ENGINE_TYPES[engine]} (no preflight)")
    code, _ = _run_child(_child(args, "--worker", "train", "--engine", engine), capture=False)
    if code < 0:
        code, message = _death(code, "training")
        echo(f"error: {message}", err=True)
    return code
