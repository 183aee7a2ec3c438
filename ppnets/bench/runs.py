"""Whole config runs (training and its evaluations), conv backend ``auto`` against ``paddle``."""
from __future__ import annotations

import os
from typing import Dict, List, Sequence

from ..config import load_config
from ..engine import Trainer
from ..utils.timing import Progress, interleaved, median, no_progress
from .data import REPO
from .machine import quiet_logger
from .results import Result

__all__ = ["bench_config"]


def bench_config(config_path: str, work_dir: str, epochs: int = 1, rounds: int = 2,
                 overrides: Sequence[str] = (), progress: Progress = no_progress) -> List[Result]:
    """``epochs`` epochs of a config (training and its evaluations), with the fast
    convolutions (``Global.conv_backend: auto``) and with Paddle's (``paddle``), alternating;
    wall seconds per run. ``overrides`` are ``-o`` items; the output goes to ``work_dir``
    whatever they say."""
    counter: Dict[str, int] = {"fast": 0, "native": 0}

    def runner(variant: str):
        def run() -> None:
            counter[variant] += 1
            out = os.path.join(work_dir, f"config_{variant}_{counter[variant]}")
            cfg = load_config(config_path, list(overrides) + [
                f"Global.epochs={epochs}", f"Global.output_dir={out}", "Global.use_visualdl=false",
                "Global.save_interval=0", f"Global.conv_backend={'auto' if variant == 'fast' else 'paddle'}"])
            with quiet_logger():
                Trainer(cfg).train()
        return run

    times = interleaved({"fast": runner("fast"), "native": runner("native")}, rounds, 0, progress,
                        f"config {os.path.basename(config_path)}")
    cfg = load_config(config_path, list(overrides))
    model, size = cfg["Arch"]["name"], cfg["Global"]["image_shape"][-1]
    batch = cfg["DataLoader"]["Train"]["sampler"]["batch_size"]
    fast_s, native_s = median(times["fast"]), median(times["native"])
    settings = {"config": os.path.relpath(config_path, REPO) if config_path.startswith(REPO) else config_path,
                "epochs": epochs, "rounds": rounds}
    return [Result("config", "ppnets (fast convolutions)", model, size, batch,
                   {"wall_s": fast_s, "s_per_epoch": fast_s / epochs, "speedup_vs_before": native_s / fast_s},
                   settings),
            Result("config", "ppnets, Paddle's conv kernels (before)", model, size, batch,
                   {"wall_s": native_s, "s_per_epoch": native_s / epochs}, settings)]
