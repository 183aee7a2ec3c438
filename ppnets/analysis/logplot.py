"""Training-log curves: parse ``<output_dir>/<Arch>/train.log`` and plot loss, LR and top-1 to PNG.

The engine logs (see :mod:`ppnets.engine.engine`)::

    [Train][Epoch 3/30][Iter 10/28] lr: 0.019500, loss: 0.81234, top1: 0.75000, top5: …, batch_cost: …
    [Eval][Epoch 3][Avg] loss: 0.61234, top1: 0.81000, top5: 0.99000, samples: 500, time: 0.52 s

and ``tools/eval.py`` writes ``[Eval][Avg] …`` lines (no epoch) to ``eval.log``. The train
``loss`` is the running mean over the epoch so far, ``top1`` the accuracy of the logged batch.
If a log holds several runs (a run restarted in the same output directory), the last value
logged for each (epoch, iteration) wins, so the curves show the latest run.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import DataError

__all__ = ["TrainLog", "parse_log", "best_eval", "last_eval", "plot_log"]

_TRAIN = re.compile(r"\[Train\]\[Epoch (\d+)/(\d+)\]\[Iter (\d+)/(\d+)\]\s*(.*)")
_EVAL = re.compile(r"\[Eval\](?:\[Epoch (\d+)\])?\[Avg\]\s*(.*)")
_PAIR = re.compile(r"([A-Za-z_][\w]*):\s*([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))(?![\w.])")


def _pairs(text: str) -> Dict[str, float]:
    return {k: float(v) for k, v in _PAIR.findall(text)}


@dataclass
class TrainLog:
    """Parsed records: train rows keyed by (epoch, iter) and eval rows keyed by epoch (None = no epoch)."""

    path: str
    train: Dict[Tuple[int, int], Dict[str, float]] = field(default_factory=dict)
    iters_per_epoch: Dict[int, int] = field(default_factory=dict)
    epochs: int = 0
    eval: Dict[Optional[int], Dict[str, float]] = field(default_factory=dict)

    def train_series(self, key: str) -> Tuple[List[float], List[float]]:
        """(x in epochs, values) of a train key; x = epoch − 1 + iter / iters_per_epoch."""
        xs, ys = [], []
        for (e, i), row in sorted(self.train.items()):
            if key in row:
                xs.append(e - 1 + i / self.iters_per_epoch[e])
                ys.append(row[key])
        return xs, ys

    def eval_series(self, key: str) -> Tuple[List[int], List[float]]:
        pts = sorted((e, row[key]) for e, row in self.eval.items() if e is not None and key in row)
        return [e for e, _ in pts], [v for _, v in pts]


def parse_log(path: str) -> TrainLog:
    """Read a ppnets train.log / eval.log (a directory means ``<dir>/train.log``)."""
    if os.path.isdir(path):
        path = os.path.join(path, "train.log")
    if not os.path.isfile(path):
        raise DataError(f"training log not found: {path}")
    log = TrainLog(path)
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = _TRAIN.search(line)
            if m:
                e, total, i, n = (int(m.group(k)) for k in (1, 2, 3, 4))
                log.train[(e, i)] = _pairs(m.group(5))
                log.iters_per_epoch[e] = n
                log.epochs = max(log.epochs, total)
                continue
            m = _EVAL.search(line)
            if m:
                epoch = int(m.group(1)) if m.group(1) else None
                log.eval[epoch] = _pairs(m.group(2))
    if not log.train and not log.eval:
        raise DataError(f"{path}: no '[Train][Epoch e/E][Iter i/N]' or '[Eval]…[Avg]' lines "
                        "(is this a ppnets train.log?)")
    return log


def best_eval(log: TrainLog, key: str = "top1") -> Optional[Tuple[Optional[int], float]]:
    """(epoch, value) of the highest eval ``key``, or None."""
    rows = [(e, row[key]) for e, row in log.eval.items() if key in row and not math.isnan(row[key])]
    return max(rows, key=lambda r: r[1]) if rows else None


def last_eval(log: TrainLog, key: str = "top1") -> Optional[float]:
    """The eval ``key`` of the last epoch (or of the epoch-less eval line, if that is all there is)."""
    epochs = [e for e in log.eval if e is not None and key in log.eval[e]]
    if epochs:
        return log.eval[max(epochs)][key]
    row = log.eval.get(None)
    return row.get(key) if row else None


def plot_log(path: str, out: Optional[str] = None, title: Optional[str] = None, dpi: int = 110) -> str:
    """Plot loss, learning rate and top-1 (train and eval) of a training log to a PNG; return its path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = parse_log(path)
    if not log.train:
        raise DataError(f"{log.path}: no '[Train][Epoch e/E][Iter i/N]' lines to plot")
    out = out or os.path.join(os.path.dirname(os.path.abspath(log.path)), "train_curves.png")
    arch = title or os.path.basename(os.path.dirname(os.path.abspath(log.path))) or "training run"
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.0), constrained_layout=True)
    ax_loss, ax_lr, ax_acc = axes

    x, y = log.train_series("loss")
    ax_loss.plot(x, y, color="#1f77b4", lw=1.2, label="train (running mean in epoch)")
    ex, ey = log.eval_series("loss")
    if ex:
        ax_loss.plot(ex, ey, "o-", color="#d62728", ms=4, lw=1.2, label="eval (end of epoch)")
    ax_loss.set_title("loss")
    ax_loss.set_ylabel("loss (Loss.Train / Loss.Eval)")

    x, y = log.train_series("lr")
    ax_lr.plot(x, y, color="#2ca02c", lw=1.2)
    ax_lr.set_title("learning rate")
    ax_lr.set_ylabel("learning rate")
    ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))

    x, y = log.train_series("top1")
    if x:
        ax_acc.plot(x, y, color="#1f77b4", lw=1.0, alpha=0.8, label="train (logged batch)")
    ex, ey = log.eval_series("top1")
    if ex:
        ax_acc.plot(ex, ey, "o-", color="#d62728", ms=4, lw=1.2, label="eval")
        best = best_eval(log)
        if best is not None and best[0] is not None:
            ax_acc.plot([best[0]], [best[1]], "*", color="#d62728", ms=13, markeredgecolor="black",
                        markeredgewidth=0.6, label=f"best eval: {best[1]:.4f} (epoch {best[0]})", zorder=4)
    ax_acc.set_title("top-1 accuracy")
    ax_acc.set_ylabel("top-1 accuracy (fraction)")
    ax_acc.set_ylim(-0.02, 1.02)

    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="lower right" if ax is ax_acc else "upper right")
    epochs = max(log.epochs, max((e for e in log.eval if e is not None), default=0))
    fig.suptitle(f"{arch}: {os.path.basename(log.path)} ({epochs} epochs)", fontsize=11)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
