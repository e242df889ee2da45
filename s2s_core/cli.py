"""The ``s2s`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .config import ENGINES
from .errors import S2SError


class _Group(click.Group):
    """Turns :class:`S2SError` into ``error: <one line>`` and its exit code."""

    def parse_args(self, ctx, args):
        # Kept so that `s2s run` can start itself again as a child process.
        ctx.meta["s2s.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except S2SError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C outside training (which says more itself)
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("error: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group)
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@click.pass_context
def main(ctx, debug):
    """s2s: sequence-to-sequence models on MXNet Gluon, assembled from plugins."""
    ctx.ensure_object(dict)["debug"] = debug


@main.command()
@click.argument("task_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              show_default=True, help="Directory the new run directory is made in.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override training.epochs.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the run in this directory after its last finished epoch "
                   "(with TASK_FILE: a changed config, if only resumable keys differ).")
@click.option("--engine", type=click.Choice(ENGINES), help="MXNet engine of the training; overrides "
              "training.engine. 'naive' runs each operator when it is called: errors stop at their line.")
@click.option("--preflight/--no-preflight", default=True, show_default=True,
              help="First run a few batches of training, validation and decoding under NaiveEngine.")
@click.option("--worker", type=click.Choice(["preflight", "train"]), hidden=True,
              help="Internal: this process is the preflight or the training child.")
@click.pass_context
def run(ctx, task_file, out, epochs, resume_dir, engine, preflight, worker):
    """Train the model TASK_FILE describes into a new run directory.

    With --resume RUN_DIR, continue that run instead (in its own directory) from its last
    finished epoch; TASK_FILE is then optional and may change only resumable keys
    (docs/run-directories.md). Ctrl-C keeps the last finished epoch and exits with 130.
    The training runs in a child process that this one watches (docs/engines.md).
    """
    from . import engine as engines
    from .config import load_config
    from .errors import RunDirError
    from .rundir import read_run_config

    if task_file is None and resume_dir is None:
        raise click.UsageError("missing TASK_FILE (or --resume RUN_DIR)")
    if resume_dir is not None:
        if ctx.get_parameter_source("out").name != "DEFAULT":
            raise click.UsageError("--out and --resume exclude each other: a run resumes in its own directory")
        if not resume_dir.is_dir():
            raise RunDirError(f"{resume_dir}: not a run directory")
    # Neither runs an MXNet operation: the engine is not chosen yet.
    config = load_config(task_file) if task_file is not None else read_run_config(resume_dir)
    if epochs is not None:
        config.training.epochs = epochs
    if engine is None and os.environ.get("MXNET_ENGINE_TYPE") == "NaiveEngine":
        engine = "naive"  # set by hand, as MXNet's docs suggest: honoured like --engine naive
    if engine is not None:
        config.training.engine = engine
    if worker is None:  # the supervising parent: no MXNet operation runs in this process
        ctx.exit(engines.supervise(ctx.meta["s2s.args"], config, preflight, click.echo))
    engines.worker_setup()
    if worker == "preflight":
        engines.set_engine("naive")
        engines.preflight(config)
        return
    engines.set_engine(config.training.engine)
    from .train import resume, train

    with engines.engine_errors(config.training.engine):
        if resume_dir is not None:
            resume(resume_dir, config if task_file is not None else None, epochs)
        else:
            train(config, out)
        engines.wait_for_all_work()


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1)
@click.option("--beam", type=click.IntRange(min=1, max=1000), default=1, show_default=True,
              help="Beam width; 1 is greedy search.")
@click.option("--length-penalty", "alpha", type=click.FloatRange(min=0.0, max=10.0), default=0.0,
              show_default=True, metavar="ALPHA",
              help="Beam search ranks by log-probability / ((5 + length) / 6) ** ALPHA "
                   "(GNMT); 0 ranks by log-probability alone.")
def predict(run_dir, inputs, beam, alpha):
    """Answer INPUTS (or one input per line on stdin) with the run's best model.

    One answer per line on stdout, in order; an input that cannot be answered gets
    an empty line there and its error on stderr, and the exit code is then 2.
    """
    from .predict import predict as predict_texts
    from .rundir import load_run

    loaded = load_run(run_dir)
    texts = list(inputs) if inputs else _stdin_lines()
    failed = 0
    for number, answer in enumerate(predict_texts(loaded, texts, beam=beam, alpha=alpha), 1):
        if answer.error is not None:
            failed += 1
            where = f"input {number}" if inputs else f"line {number}"
            click.echo(f"error: {where}: {answer.error}", err=True)
            click.echo("")
            continue
        if answer.unknown:
            click.echo(f"warning: input {number}: unknown tokens mapped to <unk>: "
                       + ", ".join(repr(t) for t in answer.unknown), err=True)
        click.echo(answer.output)
    if failed:
        sys.exit(2)


def _stdin_lines() -> list[str]:
    """stdin split at newlines only (a carriage return inside a line stays there; one
    before the newline goes). Bytes that are not UTF-8 are kept as lone surrogates, so
    the task refuses that one line instead of the whole read failing."""
    text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


@main.command()
def plugins():
    """List every registered plugin by kind, with where it came from."""
    from .hooks import KINDS, Registry

    registry = Registry()
    for kind in KINDS:
        click.echo(f"{kind}s:")
        for entry in registry.entries(kind):
            click.echo(f"  {entry.name:<12} {entry.cls.__module__}.{entry.cls.__qualname__}"
                       f"  [{entry.distribution}]")


@main.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("text")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="PNG file to write. Default: attention-TEXT.png in the run directory.")
def attention(run_dir, text, output):
    """Decode TEXT with the run's best model and draw its attention weights as a heatmap.

    Prints the path of the PNG written.
    """
    from .plots import plot_attention
    from .rundir import load_run

    path, _ = plot_attention(load_run(run_dir), text, output)
    click.echo(str(path))


@main.command()
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--batches", type=click.IntRange(min=1), default=20, show_default=True,
              help="Timed training batches per mode.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True,
              help="Untimed training batches first (the hybridized graph is built in the first).")
@click.option("--questions", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Questions greedily decoded per mode (validation questions, repeated if needed).")
def bench(task_file, batches, warmup, questions):
    """Time TASK_FILE's model imperatively and hybridized, side by side in this process.

    Training speed in samples/s over BATCHES batches after WARMUP, and greedy decoding
    speed in questions/s; prints a table with the speed-ups.
    """
    from . import bench as benchmark
    from .config import load_config
    from .engine import set_engine

    config = load_config(task_file)
    set_engine(config.training.engine)  # before the first MXNet operation
    settings = benchmark.Settings(train_batches=batches, warmup_batches=warmup, decode_questions=questions)
    timings = benchmark.compare(config, settings)
    click.echo(benchmark.format_table(config, settings, timings))
