"""Draw a config's learning-rate schedule to a PNG without training.

``python tools/plot_lr.py -c CONFIG [-o KEY=VALUE ...] [--out lr.png] [--steps_per_epoch N] [--nranks N]``

The number of optimizer updates per epoch is ``--steps_per_epoch`` or, by default, derived
like the engine does it: the size of ``DataLoader.Train.dataset`` (its files are listed, not
read), ``sampler.batch_size`` and ``drop_last``, ``--nranks`` processes and ``Global.update_freq``.
The default output is ``<Global.output_dir>/<Arch.name>/lr_schedule.png``.
"""
import argparse
import math
import os
from typing import List, Optional, Sequence, Tuple


from ppnets.engine.setup import output_dir_of
from ppnets.errors import ConfigError
from ppnets.cli import config_parser, load_config_args, run


def updates_per_epoch(cfg: dict, nranks: int = 1) -> int:
    """Optimizer updates per epoch of ``DataLoader.Train`` on ``nranks`` processes."""
    from ppnets.data import build_dataset

    if "Train" not in cfg["DataLoader"]:
        raise ConfigError("DataLoader.Train: section is missing (or give --steps_per_epoch)")
    section = cfg["DataLoader"]["Train"]
    n = len(build_dataset(section["dataset"], "DataLoader.Train.dataset"))
    per_rank = math.ceil(n / nranks)  # DistributedBatchSampler pads every rank to the same count
    bs = section["sampler"]["batch_size"]
    batches = per_rank // bs if section["sampler"]["drop_last"] else math.ceil(per_rank / bs)
    if batches == 0:
        raise ConfigError(f"DataLoader.Train: {n} samples give no batch of {bs} with drop_last: true")
    return math.ceil(batches / cfg["Global"].get("update_freq", 1))


def schedule_values(cfg: dict, steps_per_epoch: int) -> Tuple[List[float], List[float], float, bool]:
    """``(x in epochs, LR of each step, warmup length in epochs, by_epoch)`` for ``Optimizer.lr``."""
    from ppnets.optimizer import build_lr

    epochs = cfg["Global"]["epochs"]
    sched = build_lr(cfg["Optimizer"]["lr"], epochs, steps_per_epoch)
    by_epoch = bool(getattr(sched, "by_epoch", False))
    n = epochs if by_epoch else epochs * steps_per_epoch
    values = []
    for _ in range(n):
        values.append(float(sched.last_lr))  # the LR the next update uses
        sched.step()
    unit = 1 if by_epoch else steps_per_epoch
    xs = [i / unit for i in range(n)]
    warmup = getattr(sched, "warmup_steps", 0) / unit
    return xs, values, warmup, by_epoch


def plot(cfg: dict, steps_per_epoch: int, out: str) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs, lrs, warmup, by_epoch = schedule_values(cfg, steps_per_epoch)
    epochs = cfg["Global"]["epochs"]
    lr_cfg = cfg["Optimizer"]["lr"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    # each LR holds until the next step: draw it as a staircase ending at the last epoch
    ax.step(xs + [float(epochs)], lrs + [lrs[-1]], where="post", color="tab:blue", linewidth=1.6,
            label=f"{lr_cfg['name']} ({'stepped per epoch' if by_epoch else 'stepped per update'})")
    if warmup > 0:
        plural = "" if warmup == 1 else "s"
        ax.axvspan(0, warmup, color="tab:orange", alpha=0.15, label=f"linear warmup ({warmup:g} epoch{plural})")
    ax.set_xlim(0, epochs)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    top = ax.secondary_xaxis("top", functions=(lambda e: e * steps_per_epoch, lambda i: i / steps_per_epoch))
    top.set_xlabel(f"optimizer update ({steps_per_epoch} per epoch)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    peak = max(lrs)
    ax.set_title(f"{cfg['Arch']['name']}: {cfg['Optimizer']['name']}, {lr_cfg['name']} — peak {peak:.4g}, "
                 f"final {lrs[-1]:.4g}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser: argparse.ArgumentParser = config_parser(__doc__)
    parser.add_argument("--out", help="PNG to write (default: <Global.output_dir>/<Arch.name>/lr_schedule.png)")
    parser.add_argument("--steps_per_epoch", "--steps-per-epoch", type=int, default=None,
                        help="optimizer updates per epoch (default: from the training set and batch size)")
    parser.add_argument("--nranks", type=int, default=1, help="training processes, when deriving the steps (default 1)")
    args = parser.parse_args(argv)
    cfg = load_config_args(args)
    if args.steps_per_epoch is not None and args.steps_per_epoch < 1:
        raise ConfigError(f"--steps_per_epoch: expected a positive integer, got {args.steps_per_epoch}")
    if args.nranks < 1:
        raise ConfigError(f"--nranks: expected a positive integer, got {args.nranks}")
    spe = args.steps_per_epoch or updates_per_epoch(cfg, args.nranks)
    out = args.out or os.path.join(output_dir_of(cfg), "lr_schedule.png")  # the run's folder
    plot(cfg, spe, out)
    print(f"{out}: {cfg['Optimizer']['lr']['name']} over {cfg['Global']['epochs']} epochs × {spe} updates")


if __name__ == "__main__":
    run(main)
