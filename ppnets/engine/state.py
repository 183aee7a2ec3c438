"""The state of a training run, in one explicit object: where it is (the next epoch, the global step,
the position inside an interrupted epoch) and what it has achieved (the best metric and its epoch,
the EMA model's best). :class:`~ppnets.engine.checkpointer.Checkpointer` writes it into each
checkpoint's ``.pdstates`` and restores it on resume; the data order and RNG streams follow from it
(they are seeded from the seed, the epoch and the step), so a resumed run repeats the uninterrupted
one bit for bit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

__all__ = ["RunState"]


@dataclass
class RunState:
    #: the next epoch to train (1-based)
    start_epoch: int = 1
    #: optimizer micro-steps taken so far (seeds each step's RNG; positions step-wise LR schedules)
    global_step: int = 0
    best_metric: float = -np.inf
    best_epoch: int = 0
    #: the name of the metric that picks ``best_model`` (e.g. ``top1``)
    best_key: str = "metric"
    best_ema_metric: float = -np.inf
    #: an interrupted epoch's progress ``{"epoch", "iters", "loss_sum", "seen"}`` (the sampler position)
    partial: Optional[Dict[str, Any]] = None

    def to_states(self, epoch: int, partial: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """The run-state fields of a checkpoint written after ``epoch`` epochs (+ ``partial`` progress)."""
        return {"epoch": epoch, "global_step": self.global_step, "best_metric": self.best_metric,
                "best_epoch": self.best_epoch, "best_ema_metric": self.best_ema_metric, "partial": partial}

    def restore(self, states: Dict[str, Any]) -> None:
        """Take the fields of a checkpoint's states (see :meth:`to_states`)."""
        self.global_step = int(states.get("global_step", 0))
        self.best_metric = float(states.get("best_metric", -np.inf))
        self.best_epoch = int(states.get("best_epoch", 0))
        self.best_ema_metric = float(states.get("best_ema_metric", -np.inf))
        self.partial = states.get("partial")
        self.start_epoch = int(states["epoch"]) + 1
