"""What a run tells the user: the start banner and the closing summary.

The banner says what is about to happen (model and its size, data, schedule, device, where the
files go); the summary what happened (best metric and epoch, the checkpoints, the wall time).
"""
from __future__ import annotations

import datetime
import os
from typing import Any, List, Optional

from ..arch import backend
from ..arch.profile import profile_model

__all__ = ["start_banner", "closing_summary", "nothing_to_do", "cpu_threads"]

def cpu_threads() -> int:
    """The CPU cores this process may run on (its affinity mask)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _device(trainer: Any) -> str:
    g = trainer.config["Global"]
    if g["device"] != "cpu":
        return f"device: {g['device']}"
    kernels = (f"oneDNN training convolutions on {_plural(backend.num_threads(), 'thread')}" if trainer.conv_backend == "onednn"
               else "Paddle's convolution kernels")
    return f"device: cpu ({cpu_threads()} cores), {kernels}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _count(n: float, unit: str) -> str:
    return f"{n / 1e9:.2f}G {unit}" if n >= 1e9 else f"{n / 1e6:.2f}M {unit}"


def start_banner(trainer: Any) -> List[str]:
    """The lines logged when training starts."""
    cfg = trainer.config
    g = cfg["Global"]
    c, h, w = g["image_shape"]
    try:
        with backend.use(trainer.conv_backend):  # every pass of the trainer runs on its backend
            profile = profile_model(trainer.model, (h, w), in_chans=c)
        size = f"{_count(profile.params, 'params')}, {_count(profile.macs, 'MACs')} at {h}×{w}"
    except Exception as e:  # the model may not run at image_shape; the banner must not stop training
        size = f"size at {h}×{w} not counted ({type(e).__name__})"
    train = trainer.train_loader
    lines = [f"model: {trainer.arch_name} ({size}), class_num {cfg['Arch']['class_num']}"]
    data = f"data: train {len(train.dataset)} images"
    if trainer.evaluator is not None:
        data += f", val {len(trainer.evaluator.loader.dataset)} images"
    names = trainer.class_names or []
    data += f", {len(names)} classes" if names else ""
    lines.append(data)
    batch = train.batch_sampler.batch_size
    schedule = (f"schedule: {_plural(trainer.epochs, 'epoch')} × {_plural(trainer.steps_per_epoch, 'iteration')}, "
                f"batch {batch}"
                f"{f' × {trainer.env.world_size} processes' if trainer.env.world_size > 1 else ''}"
                f"{f', update_freq {trainer.update_freq}' if trainer.update_freq > 1 else ''}, "
                f"{cfg['Optimizer']['name']} with {cfg['Optimizer']['lr']['name']} LR "
                f"{cfg['Optimizer']['lr'].get('learning_rate', '')}")
    if trainer.state.start_epoch > 1 or trainer.state.partial:
        schedule += f", resuming at epoch {trainer.state.start_epoch}"
    lines.append(schedule)
    lines.append(f"{_device(trainer)}; output: {trainer.output_dir}")
    return lines


def closing_summary(trainer: Any, seconds: float, last_epoch: Optional[int]) -> List[str]:
    """The lines logged when training ends normally."""
    out = trainer.output_dir
    wall = str(datetime.timedelta(seconds=int(seconds)))
    lines = []
    state = trainer.state
    if state.best_epoch:
        lines.append(f"best {state.best_key}: {state.best_metric:.5f} at epoch {state.best_epoch} → "
                     f"{os.path.join(out, 'best_model')}.pdparams")
    elif trainer.evaluator is None:
        lines.append("no evaluation during training (Global.eval_during_train: false or no DataLoader.Eval)")
    if last_epoch is not None:
        lines.append(f"latest (epoch {last_epoch}): {os.path.join(out, 'latest')}.pdparams")
    lines.append(f"wall time: {wall}; log: {os.path.join(out, 'train.log')}")
    return lines


def nothing_to_do(trainer: Any) -> str:
    """The message of a resumed run whose checkpoint already finished every epoch."""
    done = trainer.state.start_epoch - 1
    return (f"nothing to do: the checkpoint {trainer.config['Global']['checkpoints']} has finished epoch {done} "
            f"and Global.epochs is {trainer.epochs}; to train longer, raise Global.epochs "
            f"(e.g. -o Global.epochs={done + 10})")
