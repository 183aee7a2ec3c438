"""The built-in callbacks of a training run (see :mod:`ppnets.engine.callbacks`), in the order the
:class:`~ppnets.engine.trainer.Trainer` runs them."""
from __future__ import annotations

import contextlib
import datetime
import io
import os
import signal
import threading
import time
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import TrainingError, TrainingInterrupted
from .callbacks import Callback, Step
from .vdl_records import shown_record_file, trim_records

__all__ = ["NaNGuard", "ConsoleLogger", "VisualDLLogger", "EMAUpdater", "CheckpointSaver", "StopOnSignal",
           "STOP_SIGNALS"]

#: signals that stop training after saving ``latest``: Ctrl-C, kill, a closed terminal
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _fmt_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class NaNGuard(Callback):
    """Stops training at the first loss that is not finite, naming the last good checkpoint."""

    def on_step_end(self, trainer: Any, step: Step) -> None:
        if not np.isfinite(step.loss):
            raise TrainingError(f"loss is {step.loss} at epoch {step.epoch}, iteration {step.it + 1}; stopped. "
                                f"{trainer.checkpointer.last_good_checkpoint()} (lower the learning rate or "
                                "check the data)")


class ConsoleLogger(Callback):
    """The ``[Train]`` lines: every ``Global.print_batch_step`` iterations (lr, loss, batch metrics,
    costs, throughput, ETA) and each epoch's mean loss and skipped images."""

    def on_train_begin(self, trainer: Any) -> None:
        self._clock = (time.time(), trainer.state.global_step)

    def on_step_end(self, trainer: Any, step: Step) -> None:
        if not step.is_print_step:
            return
        loss = step.mean_loss()
        start_time, start_step = getattr(self, "_clock", (time.time(), 0))
        gs = trainer.state.global_step
        done = max(gs - start_step, 1)
        eta = (time.time() - start_time) / done * (trainer.epochs * step.steps_per_epoch - gs)
        n = step.labels.shape[0] * trainer.env.world_size
        parts = [f"lr: {step.lr:.6f}", f"loss: {loss:.5f}"]
        parts += [f"{k}: {v:.5f}" for k, v in step.batch_metrics().items()]
        parts += [f"batch_cost: {step.batch_cost:.5f} s", f"reader_cost: {step.reader_cost:.5f} s",
                  f"ips: {n / max(step.batch_cost, 1e-9):.2f} samples/s", f"eta: {_fmt_eta(eta)}"]
        trainer.log.info(f"[Train][Epoch {step.epoch}/{trainer.epochs}][Iter {step.it + 1}/{step.steps_per_epoch}] "
                         + ", ".join(parts))

    def on_epoch_end(self, trainer: Any, epoch: int, totals: Dict[str, float]) -> None:
        trainer.log.info(f"[Train][Epoch {epoch}/{trainer.epochs}][Avg] loss: {totals['loss']:.5f}")
        if totals["skipped"]:
            trainer.log.warning(f"[Train][Epoch {epoch}] skipped {int(totals['skipped'])} unreadable image(s) "
                                f"(DataLoader.Train.dataset.bad_image: {trainer.train_loader.dataset.bad_image})")


class VisualDLLogger(Callback):
    """Scalars for VisualDL (``<output_dir>/vdl``): the training loss, LR and batch metrics at the
    logged steps, and each evaluation's metrics (``eval/…``, ``eval_ema/…``). Main process only.

    One record file per run: a resumed run appends to the file VisualDL shows (its steps after the
    checkpoint cut first, see :mod:`ppnets.engine.vdl_records`); a run that logs nothing ("nothing to
    do") creates no file. Records are flushed as they are logged, so a killed run keeps them."""

    def __init__(self) -> None:
        self.writer: Any = None
        self._resume_point: Optional[Tuple[int, int]] = None

    def on_train_begin(self, trainer: Any) -> None:
        state = trainer.state
        resumed = trainer.config["Global"]["checkpoints"] and (state.global_step or state.start_epoch > 1)
        self._resume_point = (state.global_step, state.start_epoch - 1) if resumed else None

    def _open(self, trainer: Any) -> Any:
        if self.writer is None:
            from visualdl import LogWriter  # imported only by runs that log to VisualDL

            vdl_dir = os.path.join(trainer.output_dir, "vdl")
            shown = shown_record_file(vdl_dir) if self._resume_point is not None else None
            if shown is not None:
                trim_records(shown, *self._resume_point)
            with contextlib.redirect_stdout(io.StringIO()):  # VisualDL prints that it appends
                self.writer = LogWriter(logdir=vdl_dir, file_name=os.path.basename(shown) if shown else "")
        return self.writer

    def on_step_end(self, trainer: Any, step: Step) -> None:
        if not step.is_print_step:
            return
        writer, gs = self._open(trainer), trainer.state.global_step
        writer.add_scalar("train/loss", step.mean_loss(), gs)
        writer.add_scalar("train/lr", step.lr, gs)
        for k, v in step.batch_metrics().items():
            writer.add_scalar(f"train/{k}", v, gs)
        writer.flush()

    def on_eval_end(self, trainer: Any, epoch: int, metrics: Dict[str, float],
                    ema_metrics: Dict[str, float]) -> None:
        writer = self._open(trainer)
        for k, v in metrics.items():
            writer.add_scalar(f"eval/{k}", v, epoch)
        for k, v in ema_metrics.items():
            writer.add_scalar(f"eval_ema/{k}", v, epoch)
        writer.flush()

    def on_train_end(self, trainer: Any) -> None:
        if self.writer is not None:
            self.writer.close()
        self.writer = None


class EMAUpdater(Callback):
    """Updates the EMA weights after every optimizer step, and keeps the best EMA model as
    ``best_model_ema`` (by the metric that picks ``best_model``)."""

    def on_optimizer_step(self, trainer: Any) -> None:
        trainer.ema.update(trainer.model)

    def on_eval_end(self, trainer: Any, epoch: int, metrics: Dict[str, float],
                    ema_metrics: Dict[str, float]) -> None:
        key = trainer.state.best_key
        if ema_metrics and ema_metrics[key] > trainer.state.best_ema_metric:
            trainer.state.best_ema_metric = ema_metrics[key]
            if trainer.env.is_main:
                trainer.checkpointer.save_evaluated("best_model_ema", trainer.ema.model, epoch)


class CheckpointSaver(Callback):
    """``latest`` after every epoch (and every ``Global.save_steps`` steps, and when a stop signal
    arrives, with the epoch's progress), ``best_model`` when the metric improved, ``epoch_N`` every
    ``Global.save_interval`` epochs. Main process only."""

    def on_step_end(self, trainer: Any, step: Step) -> None:
        g = trainer.config["Global"]
        gs = trainer.state.global_step
        due = g["save_steps"] and gs % g["save_steps"] == 0 and step.it + 1 < step.steps_per_epoch
        if step.last_micro and (trainer.stop_signal or due) and trainer.env.is_main:
            progress = {"epoch": step.epoch, "iters": step.it + 1, "loss_sum": step.loss_sum, "seen": step.seen}
            trainer.checkpointer.save("latest", step.epoch - 1, partial=progress)

    def on_checkpoint(self, trainer: Any, epoch: int, improved: bool) -> None:
        if not trainer.env.is_main:
            return
        trainer.checkpointer.save("latest", epoch)
        if improved:
            trainer.checkpointer.save("best_model", epoch)
        interval = trainer.config["Global"]["save_interval"]
        if interval and epoch % interval == 0:
            trainer.checkpointer.save(f"epoch_{epoch}", epoch)


class StopOnSignal(Callback):
    """SIGINT/SIGTERM/SIGHUP (Ctrl-C, kill, a closed terminal) stop training after the current
    update, once :class:`CheckpointSaver` has saved ``latest`` with the epoch's progress (a resume
    continues mid-epoch); a second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self._previous: Dict[int, Any] = {}

    def on_train_begin(self, trainer: Any) -> None:
        trainer.stop_signal = None
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, lambda signum, frame: self._on_signal(trainer, signum))
                              for s in STOP_SIGNALS}

    def _on_signal(self, trainer: Any, signum: int) -> None:
        if trainer.stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        trainer.stop_signal = signal.Signals(signum).name
        trainer.log.warning(f"{trainer.stop_signal} received: stopping after this iteration and saving 'latest' "
                            "(press Ctrl-C again to abort without saving)")

    def on_step_end(self, trainer: Any, step: Step) -> None:
        if step.last_micro and trainer.stop_signal:
            latest = os.path.join(trainer.output_dir, "latest")
            raise TrainingInterrupted(f"{trainer.stop_signal}: stopped at epoch {step.epoch}, iteration {step.it + 1}; "
                                      f"saved {latest} — resume with -o Global.checkpoints={latest}")

    def on_train_end(self, trainer: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
