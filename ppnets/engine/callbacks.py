"""Callbacks: what a training run does besides the loop itself, attached at named hook points (as in
Keras, Lightning or mmengine), so that a recipe adds a hook instead of editing the loop.

The :class:`~ppnets.engine.trainer.Trainer` calls, in order:

- ``on_train_begin(trainer)`` once, before the first epoch;
- per optimizer micro-step: ``on_optimizer_step(trainer)`` after the weights changed, and
  ``on_step_end(trainer, step)`` after every non-empty micro-batch (``step`` is a :class:`Step`);
- ``on_epoch_end(trainer, epoch, totals)`` after the epoch's training (``totals``: mean loss,
  steps, samples and skipped images over every rank);
- ``on_eval_end(trainer, epoch, metrics, ema_metrics)`` after the evaluation of an epoch;
- ``on_checkpoint(trainer, epoch, improved)`` when the epoch's checkpoints are due;
- ``on_train_end(trainer)`` once, whether training finished or failed.

The built-in callbacks (:mod:`ppnets.engine.hooks`) are the NaN guard, console and VisualDL
logging, EMA, stop signals and checkpointing; :attr:`Trainer.callbacks` lists them in the order
they run, and ``Trainer(config, callbacks=[...])`` appends more.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import paddle

__all__ = ["Callback", "CallbackList", "Step"]


@dataclass
class Step:
    """One trained micro-batch, as the callbacks see it."""

    epoch: int
    it: int                     # 0-based iteration within the epoch
    steps_per_epoch: int
    loss: float                 # this batch's loss
    lr: float                   # the learning rate the step used
    loss_sum: float             # over the epoch so far, this rank
    seen: int
    logits: Any
    labels: paddle.Tensor
    reader_cost: float
    batch_cost: float
    last_micro: bool            # the last micro-batch of an accumulation window (an update happened)
    trainer: Any = None
    _cache: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_print_step(self) -> bool:
        g = self.trainer.config["Global"]
        return (self.it + 1) % g["print_batch_step"] == 0 or self.it + 1 == self.steps_per_epoch

    def mean_loss(self) -> float:
        """The epoch's mean loss so far over every rank (a collective call: every rank asks, once)."""
        if "mean_loss" not in self._cache:
            loss_sum, seen = self.trainer.all_reduce_sum([self.loss_sum, float(self.seen)])
            self._cache["mean_loss"] = loss_sum / seen
        return self._cache["mean_loss"]

    def batch_metrics(self) -> Dict[str, float]:
        """``Metric.Train`` on this batch (empty for soft targets, e.g. mixup)."""
        if "metrics" not in self._cache:
            self._cache["metrics"] = self.trainer.batch_metrics(self.logits, self.labels)
        return self._cache["metrics"]


class Callback:
    """Base class: override the hooks you need (each does nothing by default)."""

    def on_train_begin(self, trainer: Any) -> None:
        pass

    def on_optimizer_step(self, trainer: Any) -> None:
        pass

    def on_step_end(self, trainer: Any, step: Step) -> None:
        pass

    def on_epoch_end(self, trainer: Any, epoch: int, totals: Dict[str, float]) -> None:
        pass

    def on_eval_end(self, trainer: Any, epoch: int, metrics: Dict[str, float],
                    ema_metrics: Dict[str, float]) -> None:
        pass

    def on_checkpoint(self, trainer: Any, epoch: int, improved: bool) -> None:
        pass

    def on_train_end(self, trainer: Any) -> None:
        pass


class CallbackList(Callback):
    """Calls each hook on every callback, in order; ``on_train_end`` reaches every one even if one fails."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks: List[Callback] = list(callbacks)

    def append(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def get(self, kind: type) -> Optional[Callback]:
        """The first callback of type ``kind``, or None."""
        return next((c for c in self.callbacks if isinstance(c, kind)), None)

    def __iter__(self):
        return iter(self.callbacks)

    def on_train_begin(self, trainer: Any) -> None:
        for c in self.callbacks:
            c.on_train_begin(trainer)

    def on_optimizer_step(self, trainer: Any) -> None:
        for c in self.callbacks:
            c.on_optimizer_step(trainer)

    def on_step_end(self, trainer: Any, step: Step) -> None:
        for c in self.callbacks:
            c.on_step_end(trainer, step)

    def on_epoch_end(self, trainer: Any, epoch: int, totals: Dict[str, float]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch, totals)

    def on_eval_end(self, trainer: Any, epoch: int, metrics: Dict[str, float],
                    ema_metrics: Dict[str, float]) -> None:
        for c in self.callbacks:
            c.on_eval_end(trainer, epoch, metrics, ema_metrics)

    def on_checkpoint(self, trainer: Any, epoch: int, improved: bool) -> None:
        for c in self.callbacks:
            c.on_checkpoint(trainer, epoch, improved)

    def on_train_end(self, trainer: Any) -> None:
        error: Optional[BaseException] = None
        for c in self.callbacks:
            try:
                c.on_train_end(trainer)
            except BaseException as e:  # the others still release what they hold
                error = error or e
        if error is not None:
            raise error
