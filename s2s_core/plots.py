"""Pictures of a run: attention heatmaps and the training history, as PNG files.

Figures are built with matplotlib's object API on the Agg canvas (no display, no
pyplot state), so they work on a server and return plain ``Figure`` objects to a
notebook. Files are written atomically like everything else in a run directory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from .errors import InputError, S2SError
from .rundir import LoadedRun, atomic_write

#: The training history plot in every run directory, redrawn after each epoch.
HISTORY = "history.png"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def write_png(figure, path: str | Path) -> Path:
    """Save ``figure`` as a PNG at ``path`` atomically; any OS problem is one line."""
    path = Path(path)
    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", bbox_inches="tight"))
    except OSError as exc:
        raise S2SError(f"{path}: cannot write: {exc.strerror or exc}") from None
    return path


# -- training history -------------------------------------------------------------------

def history_figure(history: Sequence[dict], metric: str = "exact_match"):
    """Train and validation loss (left) and the validation ``metric`` (right) per epoch."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    figure = _figure(9, 3.4)
    loss_ax, metric_ax = figure.subplots(1, 2)
    epochs = [row["epoch"] for row in history]
    loss_ax.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
    loss_ax.plot(epochs, [row["valid_loss"] for row in history], "o-", label="validation")
    losses = [row[key] for row in history for key in ("train_loss", "valid_loss")]
    if max(losses) > 10 * min(losses) > 0:  # fallen by orders of magnitude: log scale
        loss_ax.set_yscale("log")
        loss_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        loss_ax.yaxis.set_minor_formatter(NullFormatter())
    loss_ax.set_title("loss per target token")
    loss_ax.legend()
    metric_ax.plot(epochs, [100 * row[metric] for row in history], "o-", color="tab:green")
    metric_ax.set_title(f"validation {metric.replace('_', ' ')} (%)")
    metric_ax.set_ylim(0, 100)
    for ax in (loss_ax, metric_ax):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    return figure


def write_history_plot(run_dir: Path, history: Sequence[dict], metric: str = "exact_match") -> Path:
    return write_png(history_figure(history, metric), Path(run_dir) / HISTORY)


# -- attention --------------------------------------------------------------------------

@attrs.define
class AttentionMap:
    """The attention weights of one decoded input.

    ``weights[i, j]`` is how much output step i (``output_tokens[i]``) attended to
    source position j (``source_tokens[j]``, in the order the model reads them). The
    end step and padding positions are left out, as in the seed's plots.
    """

    text: str
    output: str
    source_tokens: list[str]
    output_tokens: list[str]
    weights: np.ndarray  # (len(output_tokens), len(source_tokens))
    #: True when the model reads the source in another order than it is written
    #: (the addition task's ``reverse``).
    reordered: bool = False


def attention_map(run: LoadedRun, text: str) -> AttentionMap:
    """Decode ``text`` with ``run``'s model and keep its attention weights."""
    from .predict import predict

    if run.config.attention is None:
        raise S2SError(f"{run.path}: this model has no attention (no [model.attention] in its "
                       f"config): there are no weights to plot")
    answer = predict(run, [text])[0]
    if answer.error is not None:
        raise InputError(answer.error)
    if not answer.output_tokens:
        raise S2SError(f"{text!r}: the model's first output was the end token: nothing to plot")
    steps = len(answer.output_tokens)  # the end step's row is left out
    reordered = run.task.source_text(answer.source_tokens) != "".join(answer.source_tokens)
    return AttentionMap(text, answer.output, answer.source_tokens, answer.output_tokens,
                        np.asarray(answer.weights[:steps]), reordered)


def attention_figure(amap: AttentionMap):
    """The seed's heatmap: input tokens along the top, one row per output token, 'bone'."""
    import seaborn as sns

    rows, columns = amap.weights.shape
    figure = _figure(1.6 + 0.55 * columns, 1.4 + 0.55 * rows)
    ax = figure.subplots()
    sns.heatmap(amap.weights, ax=ax, cmap="bone", vmin=0.0, vmax=1.0, square=True,
                xticklabels=amap.source_tokens, yticklabels=amap.output_tokens,
                linewidths=0.5, linecolor="white", cbar_kws={"shrink": 0.8})
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.tick_params(axis="both", labelsize=13, length=0, labelrotation=0)
    ax.set_xlabel("input, as the model reads it" if amap.reordered else "input")
    ax.set_ylabel("output")
    ax.set_title(f"{amap.text} \u2192 {amap.output}", y=-0.08 - 0.25 / max(rows, 1), loc="center")
    figure.tight_layout()
    return figure


def default_attention_path(run_dir: Path, text: str) -> Path:
    """``RUN_DIR/attention-<text>.png``, the text reduced to characters safe in a file name."""
    name = re.sub(r"[^0-9A-Za-z+=.,_-]+", "_", text.strip())[:60] or "input"
    return Path(run_dir) / f"attention-{name}.png"


def plot_attention(run: LoadedRun, text: str, path: str | Path | None = None) -> tuple[Path, AttentionMap]:
    """Decode ``text``, draw its heatmap into ``path`` (default: in the run directory)."""
    amap = attention_map(run, text)
    path = Path(path) if path is not None else default_attention_path(run.path, text)
    return write_png(attention_figure(amap), path), amap
