"""The training loop of :class:`~ppnets.engine.Engine`: one epoch of micro-batches (AMP,
gradient accumulation, DDP ``no_sync``), the optimizer and EMA updates, per-step seeding, the
log lines and VisualDL scalars, and the ``latest`` saves of ``Global.save_steps`` and of a
stop signal."""
from __future__ import annotations

import contextlib
import datetime
import os
import time
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import backend
from ..data import iterate_loader
from ..errors import ConfigError, TrainingError, TrainingInterrupted
from .models import float32_outputs, numpy_outputs
from ..utils.quiet import quiet_paddle_warnings

__all__ = ["TrainLoopMixin"]


def _fmt_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class TrainLoopMixin:
    """``train_epoch`` and its steps (the engine provides ``train_model``, ``optimizer``,
    ``lr_scheduler``, ``train_loss``, ``amp``, ``scaler``, ``ema``, ``update_freq`` …)."""

    def _step_seed(self) -> None:
        """Seed the RNGs from (seed, rank, step): dropout and drop-path are reproducible and resumable."""
        if self.seed is not None:
            paddle.seed((self.seed * 1_000_003 + self.global_step * 8_191 + self.rank) % (2 ** 31))

    def train_epoch(self, epoch: Optional[int] = None, loader: Optional[Iterable[Sequence[paddle.Tensor]]] = None
                    ) -> Dict[str, float]:
        """One training epoch on the configured conv backend; returns its mean ``loss``, ``steps`` and ``samples``.

        ``epoch`` (default: the next one, ``start_epoch``) sets the data order, the LR schedule
        position of epoch-wise schedules and the log lines. ``loader`` (default
        ``DataLoader.Train``, with the resume position of an interrupted epoch) may be any
        sized iterable of ``(images, labels)`` batches, e.g. in-memory tensors.
        """
        if self.optimizer is None:
            raise ConfigError("Engine.train_epoch: the engine was built in mode "
                              f"'{self.mode}'; training needs mode 'train'")
        epoch = self.start_epoch if epoch is None else int(epoch)
        with backend.use(self.conv_backend), quiet_paddle_warnings():
            if loader is None:
                return self._train_epoch(epoch, self._loader_batches(epoch), self.steps_per_epoch, resume=True)
            return self._train_epoch(epoch, enumerate(((b[0], b[1], 0) for b in loader)), len(loader), resume=False)

    def _loader_batches(self, epoch: int) -> Iterator[Tuple[int, Tuple[paddle.Tensor, paddle.Tensor, int]]]:
        """``(iteration, batch)`` of ``DataLoader.Train`` for ``epoch``, from where an interrupted run stopped."""
        self._set_epoch(self.train_loader, epoch)
        start_iter = 0
        if self.partial and int(self.partial["epoch"]) == epoch:
            start_iter = int(self.partial["iters"])
            self.train_loader.batch_sampler.skip(start_iter)
        return enumerate(iterate_loader(self.train_loader), start=start_iter)

    def _train_epoch(self, epoch: int, batches: Iterator[Tuple[int, Tuple[paddle.Tensor, paddle.Tensor, int]]],
                     steps_per_epoch: int, resume: bool) -> Dict[str, float]:
        g = self.config["Global"]
        by_epoch = getattr(self.lr_scheduler, "by_epoch", False)
        loss_sum, seen = 0.0, 0
        if resume and self.partial and int(self.partial["epoch"]) == epoch:
            loss_sum, seen = float(self.partial["loss_sum"]), int(self.partial["seen"])
        self.partial = None
        self.train_model.train()
        total_steps = self.epochs * steps_per_epoch
        writer = self._writer
        tic = time.time()
        skipped, pending, steps = 0, False, 0  # pending: gradients accumulated but not applied yet
        for it, (images, labels, n_bad) in batches:
            reader_cost = time.time() - tic
            skipped += n_bad  # bad_image: skip/warn drops unreadable files from the batch
            last_micro = (it + 1) % self.update_freq == 0 or it + 1 == steps_per_epoch
            empty = images.shape[0] == 0  # every file of the batch was unreadable (bad_image: skip/warn)
            if not empty:
                self._step_seed()
                logits, loss = self._forward_backward(images, labels, sync=last_micro)
                pending = True
            lr = self.optimizer.get_lr()
            if last_micro:  # an accumulation window ends here even if its last batch was empty
                if pending:
                    self._optimizer_step()
                    pending = False
                if not by_epoch:
                    self.lr_scheduler.step()
            if empty:
                tic = time.time()
                continue
            value = float(loss)  # CPU ops are synchronous: this costs nothing extra
            if not np.isfinite(value):
                raise TrainingError(f"loss is {value} at epoch {epoch}, iteration {it + 1}; stopped. "
                                    f"{self._last_good_checkpoint()} (lower the learning rate or check the data)")
            self.global_step += 1
            steps += 1
            n = images.shape[0]
            loss_sum, seen = loss_sum + value * n, seen + n
            if (it + 1) % g["print_batch_step"] == 0 or it + 1 == steps_per_epoch:
                self._log_step(epoch, it, lr, loss_sum, seen, logits, labels, reader_cost, time.time() - tic,
                               total_steps, steps_per_epoch, writer)
            if last_micro and (self._stop_signal or (g["save_steps"] and self.global_step % g["save_steps"] == 0
                                                    and it + 1 < steps_per_epoch)):
                progress = {"epoch": epoch, "iters": it + 1, "loss_sum": loss_sum, "seen": seen}
                if self.is_main:
                    self.save("latest", epoch - 1, partial=progress)
                if self._stop_signal:
                    raise TrainingInterrupted(
                        f"{self._stop_signal}: stopped at epoch {epoch}, iteration {it + 1}; saved "
                        f"{os.path.join(self.output_dir, 'latest')} — resume with "
                        f"-o Global.checkpoints={os.path.join(self.output_dir, 'latest')}")
            tic = time.time()
        if by_epoch:
            self.lr_scheduler.step()
        total = self._all_reduce_sum([loss_sum, float(seen), float(skipped)])
        self.log.info(f"[Train][Epoch {epoch}/{self.epochs}][Avg] loss: {total[0] / max(total[1], 1):.5f}")
        if total[2]:
            self.log.warning(f"[Train][Epoch {epoch}] skipped {int(total[2])} unreadable image(s) "
                             f"(DataLoader.Train.dataset.bad_image: {self.train_loader.dataset.bad_image})")
        return {"loss": total[0] / max(total[1], 1), "steps": float(steps), "samples": total[1]}

    def _forward_backward(self, images: paddle.Tensor, labels: paddle.Tensor, sync: bool):
        """One micro-batch: forward (under AMP if enabled) and backward of ``loss / update_freq``."""
        no_sync = self.world_size > 1 and not sync
        ctx = self.train_model.no_sync() if no_sync else contextlib.nullcontext()
        with ctx:
            with self.amp.autocast():
                logits = self.train_model(images)
                loss = self.train_loss(float32_outputs(logits), labels)["loss"]
            scaled = loss / self.update_freq if self.update_freq > 1 else loss
            if self.scaler is not None:
                scaled = self.scaler.scale(scaled)
            scaled.backward()
        return logits, loss

    def _optimizer_step(self) -> None:
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.clear_grad()
        if self.ema is not None:
            self.ema.update(self.model)

    def _all_reduce_sum(self, values: List[float]) -> List[float]:
        if self.world_size == 1:
            return values
        t = paddle.to_tensor(values, dtype="float64")
        dist.all_reduce(t)
        return t.numpy().tolist()

    def _log_step(self, epoch, it, lr, loss_sum, seen, logits, labels, reader_cost, batch_cost, total_steps,
                  steps_per_epoch, writer) -> None:
        loss_sum, seen = self._all_reduce_sum([loss_sum, float(seen)])  # the loss over all ranks
        acc = self._batch_metrics(logits, labels)
        start_time, start_step = self._clock
        done = max(self.global_step - start_step, 1)
        eta = (time.time() - start_time) / done * (total_steps - self.global_step)
        n = labels.shape[0] * self.world_size
        parts = [f"lr: {lr:.6f}", f"loss: {loss_sum / seen:.5f}"]
        parts += [f"{k}: {v:.5f}" for k, v in acc.items()]
        parts += [f"batch_cost: {batch_cost:.5f} s", f"reader_cost: {reader_cost:.5f} s",
                  f"ips: {n / max(batch_cost, 1e-9):.2f} samples/s", f"eta: {_fmt_eta(eta)}"]
        self.log.info(f"[Train][Epoch {epoch}/{self.epochs}][Iter {it + 1}/{steps_per_epoch}] "
                      + ", ".join(parts))
        if writer is not None:
            writer.add_scalar("train/loss", loss_sum / seen, self.global_step)
            writer.add_scalar("train/lr", lr, self.global_step)
            for k, v in acc.items():
                writer.add_scalar(f"train/{k}", v, self.global_step)

    @staticmethod
    def _set_epoch(loader: paddle.io.DataLoader, epoch: int) -> None:
        loader.dataset.set_epoch(epoch)
        if hasattr(loader.batch_sampler, "set_epoch"):
            loader.batch_sampler.set_epoch(epoch)

    def _batch_metrics(self, logits: paddle.Tensor, labels: paddle.Tensor) -> Dict[str, float]:
        if not self.multilabel and labels.ndim == 2 and labels.shape[-1] == self.config["Arch"]["class_num"]:
            return {}  # soft targets (mixup): batch accuracy is not defined
        out: Dict[str, float] = {}
        for metric in self.train_metrics:
            out.update(metric(numpy_outputs(logits), labels.numpy()))
        return out
