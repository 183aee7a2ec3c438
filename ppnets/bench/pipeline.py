"""The data side: the training loader alone, and ``reader_cost`` in a real training run."""
from __future__ import annotations

import os
import time
from typing import Dict, List, Sequence

from ..analysis.logplot import parse_log
from ..data import build_dataloader, iterate_loader
from ..engine import Trainer
from ..errors import ConfigError
from ..utils.timing import Progress, median, no_progress
from .data import engine_config
from .machine import quiet_logger
from .results import Result

__all__ = ["bench_pipeline", "bench_reader_cost"]


def bench_pipeline(data_root: str, work_dir: str, size: int = 224, batch: int = 32,
                   workers: Sequence[int] = (0, 1, 2), n_batches: int = 8, rounds: int = 3,
                   progress: Progress = no_progress) -> List[Result]:
    """Data pipeline alone — the ppnets training loader (JPEG decode, RandCropImage to ``size``,
    flip, normalize, CHW, collate) — in img/s per ``num_workers``; the first batch of each
    pass (worker start-up) is not counted."""
    if n_batches < 2:
        raise ConfigError(f"--pipeline-batches: need at least 2 (the first is not timed), got {n_batches}")
    loaders = {}
    for w in workers:
        cfg = engine_config(data_root, os.path.join(work_dir, "pipeline"), "MobileNetV2", size, batch, 10, workers=w)
        loaders[w] = build_dataloader(cfg, "Train", seed=0)
        if len(loaders[w]) < n_batches:
            raise ConfigError(f"pipeline: the generated dataset has {len(loaders[w])} batches of {batch}, "
                              f"fewer than {n_batches}")
    rates: Dict[int, List[float]] = {w: [] for w in workers}
    for _ in progress(range(rounds), f"pipeline {size}px b{batch}"):
        for w in workers:  # (interleaved by hand: the rate excludes each pass's first batch)
            it = iter(iterate_loader(loaders[w]))
            next(it)  # start-up
            tic = time.perf_counter()
            seen = 0
            for _ in range(n_batches - 1):
                images, _, _ = next(it)
                seen += images.shape[0]
            rates[w].append(seen / (time.perf_counter() - tic))
            del it
    return [Result("pipeline", f"DataLoader, num_workers={w}", "-", size, batch, {"img_s": median(rates[w])},
                   {"num_workers": w, "rounds": rounds, "batches_timed": n_batches - 1}) for w in workers]


def bench_reader_cost(data_root: str, work_dir: str, model: str = "MobileNetV2", size: int = 224, batch: int = 32,
                      workers: int = 2, class_num: int = 10) -> List[Result]:
    """One epoch of real training on the JPEG folder; the engine's logged ``reader_cost`` and
    ``batch_cost`` per iteration (the first, which waits for the workers to start, is left out)."""
    out_dir = os.path.join(work_dir, "reader")
    cfg = engine_config(data_root, out_dir, model, size, batch, class_num, workers=workers,
                        extra={"Global.print_batch_step": 1})
    with quiet_logger():
        engine = Trainer(cfg)
        if len(engine.train_loader) < 3:
            raise ConfigError(f"reader_cost: need at least 3 batches of {batch}, the dataset has "
                              f"{len(engine.train_loader)}")
        engine.train()
    log = parse_log(os.path.join(out_dir, model, "train.log"))
    rows = [log.train[k] for k in sorted(log.train)][1:]
    reader = [r["reader_cost"] for r in rows]
    batch_cost = [r["batch_cost"] for r in rows]
    pct = 100.0 * sum(reader) / sum(batch_cost)
    return [Result("reader", f"engine, num_workers={workers}", model, size, batch,
                   {"reader_cost_s": median(reader), "batch_cost_s": median(batch_cost),
                    "reader_cost_pct": pct, "img_s": batch / median(batch_cost)},
                   {"num_workers": workers, "iterations": len(rows)})]
