"""The :class:`Trainer`: builds what a config describes and owns the training loop — epochs of
micro-batches (AMP, gradient accumulation, DDP ``no_sync``), the optimizer and LR schedule, per-step
seeding, evaluation and the best metric. Everything else a run does is a callback
(:mod:`ppnets.engine.callbacks`): the NaN guard, console and VisualDL logging, EMA, checkpoints and
stop signals; the run's position is one :class:`~ppnets.engine.state.RunState`, written and
restored by the :class:`~ppnets.engine.checkpointer.Checkpointer`."""
from __future__ import annotations

import contextlib
import os
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import backend
from ..checkpoint import build_run_model, load_run_weights
from ..config import dump_config
from ..data import build_dataloader, iterate_loader
from ..errors import ConfigError, DataError
from ..loss import build_loss
from ..metric import build_metrics
from ..optimizer import build_optimizer
from ..utils.files import atomic_write
from ..utils.lock import RunLock
from ..utils.quiet import quiet_paddle_warnings
from .amp import AmpSettings
from .callbacks import Callback, CallbackList, Step
from .checkpointer import Checkpointer
from .ema import ModelEMA
from .evaluator import Evaluator, bind_class_counts, check_class_num, refuse_features_only, set_loader_epoch
from .hooks import CheckpointSaver, ConsoleLogger, EMAUpdater, NaNGuard, StopOnSignal, VisualDLLogger
from .models import float32_outputs, numpy_outputs
from .report import closing_summary, nothing_to_do, start_banner
from .run_folder import claim_run_folder, run_name
from .setup import RunEnv, check_writable, output_dir_of, prepare_run
from .state import RunState

__all__ = ["Trainer"]

Batches = Iterator[Tuple[int, Tuple[paddle.Tensor, paddle.Tensor, int]]]


class Trainer:
    """Train ``Arch`` on ``DataLoader.Train`` as the config says (``tools/train.py``).

    Args:
        config: a validated config (:func:`ppnets.config.load_config`).
        callbacks: more :class:`~ppnets.engine.callbacks.Callback` objects, run after the built-in ones.

    Attributes: ``model``, ``optimizer``, ``lr_scheduler``, ``train_loader``, ``ema``, ``scaler``,
    ``state`` (:class:`RunState`), ``evaluator`` (None without evaluation during training),
    ``checkpointer``, ``callbacks``, ``env`` (output dir, log, ranks, conv backend).
    """

    def __init__(self, config: Dict[str, Any], callbacks: Sequence[Callback] = ()) -> None:
        self.config = config
        self.arch_name = run_name(config["Arch"])  # Arch.name, or the model its options make (MobileNetV2_x0_75)
        self.output_dir = output_dir_of(config)
        if dist.get_rank() == 0:
            check_writable(self.output_dir)
        self._lock = RunLock(self.output_dir)  # one training run per folder; released when train() ends
        if dist.get_rank() == 0:
            self._lock.acquire()
        try:
            # a new run never takes over another's checkpoints (refused, or Global.overwrite: true)
            claimed = claim_run_folder(config, self.output_dir) if dist.get_rank() == 0 else None
            self._setup(config, callbacks)
            if claimed:
                self.log.warning(claimed)
        except BaseException:
            self._lock.release()
            raise

    def _setup(self, config: Dict[str, Any], callbacks: Sequence[Callback]) -> None:
        g = config["Global"]
        self.env: RunEnv = prepare_run(config, "train", self.output_dir)
        self.log = self.env.log
        self.conv_backend = self.env.conv_backend
        self.seed = g["seed"]
        self.multilabel = g["use_multilabel"]
        self.state = RunState()
        self.stop_signal: Optional[str] = None

        # data
        self.train_loader = build_dataloader(config, "Train", seed=self.seed, class_num=config["Arch"]["class_num"])
        self.class_names: Optional[List[str]] = self.train_loader.dataset.class_names
        eval_loader = None
        if g["eval_during_train"] and "Eval" in config["DataLoader"]:
            # evaluation data must use the classes the model is trained on, in the same order
            eval_loader = build_dataloader(config, "Eval", class_names=self.class_names)
            self.class_names = self.class_names or eval_loader.dataset.class_names
            if not config["Metric"]["Eval"]:
                raise ConfigError("Metric.Eval: empty, but evaluating during training needs a metric to pick "
                                  "best_model, e.g. [{TopkAcc: {topk: [1, 5]}}] (or Global.eval_during_train: false)")
        if self.env.world_size > 1 and self.train_loader.dataset.bad_image != "stop":
            raise DataError("DataLoader.Train.dataset.bad_image: skip/warn is not supported for multi-process "
                            "training (ranks would run different numbers of steps); use stop or fix the files")
        check_class_num(config, self.class_names)

        # model
        refuse_features_only(config)
        self.model = build_run_model(config["Arch"], "train", g["trust_pickles"])
        if g["pretrained_model"]:
            load_run_weights(self.model, config["Arch"], g["pretrained_model"], "train", strict=False,
                             trust=g["trust_pickles"])
        self.ema: Optional[ModelEMA] = None
        if config["EMA"]["decay"]:
            self.ema = ModelEMA(self.model, build_run_model(config["Arch"], "train", g["trust_pickles"]),
                                config["EMA"]["decay"])
        self.amp = AmpSettings(config["AMP"], g["device"])
        if self.amp.requested_dtype_unavailable:
            self.log.warning(self.amp.requested_dtype_unavailable)
        self.evaluator = Evaluator.for_training(config, self.env, self.model, eval_loader, self.amp, self.class_names,
                                                self.ema.model if self.ema is not None else None) \
            if eval_loader is not None else None

        # optimization
        self.train_loss = build_loss(config["Loss"]["Train"], "Loss.Train")
        self.train_metrics = build_metrics(config["Metric"]["Train"], "Metric.Train")
        self.epochs = g["epochs"]
        self.update_freq = g["update_freq"]
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise DataError("DataLoader.Train: no batches (empty dataset, or batch_size larger than the "
                            "dataset with drop_last: true)")
        updates_per_epoch = -(-self.steps_per_epoch // self.update_freq)
        self.optimizer = build_optimizer(config["Optimizer"], self.epochs, updates_per_epoch, self.model)
        self.lr_scheduler = self.optimizer._learning_rate
        self.scaler = self.amp.make_scaler()
        if self.amp.enabled and self.amp.level == "O2":
            self.model, self.optimizer = paddle.amp.decorate(self.model, self.optimizer, level="O2",
                                                             dtype=self.amp.dtype)
        self.checkpointer = Checkpointer(self)
        if g["checkpoints"]:
            self.checkpointer.resume(g["checkpoints"])
        self.train_model = self.model
        if g["to_static"]:
            c, h, w = g["image_shape"]
            spec = paddle.static.InputSpec([None, c, h, w], "float32", name="x")
            self.train_model = paddle.jit.to_static(self.model, input_spec=[spec], full_graph=True)
        if self.env.world_size > 1:
            self.train_model = paddle.DataParallel(self.train_model)
        bind_class_counts(config, [self.evaluator.eval_loss if self.evaluator else None, self.train_loss],
                          self.train_loader, self.log)
        self.callbacks = CallbackList(self._default_callbacks() + list(callbacks))
        if self.env.is_main:
            dump_config(config, os.path.join(self.output_dir, "config.yaml"))
            if self.class_names is not None:
                atomic_write(os.path.join(self.output_dir, "label_list.txt"), "\n".join(self.class_names) + "\n")

    def _default_callbacks(self) -> List[Callback]:
        hooks: List[Callback] = [NaNGuard(), ConsoleLogger()]
        if self.config["Global"]["use_visualdl"] and self.env.is_main:
            hooks.append(VisualDLLogger())
        if self.ema is not None:
            hooks.append(EMAUpdater())
        hooks += [CheckpointSaver(), StopOnSignal()]
        return hooks

    # ------------------------------------------------------------------ the run

    def train(self) -> Dict[str, Any]:
        """Run the configured epochs; returns the last eval metrics and the best metric.

        A stop signal saves ``latest`` mid-epoch and raises :class:`~ppnets.errors.TrainingInterrupted`
        (:class:`~ppnets.engine.hooks.StopOnSignal`); a checkpoint that finished every epoch trains
        nothing and says so.
        """
        g = self.config["Global"]
        state = self.state
        last_eval: Dict[str, float] = {}
        started, last_epoch = time.time(), None
        try:
            self.callbacks.on_train_begin(self)
            if self.env.is_main:
                for line in start_banner(self):
                    self.log.info(line)
            if state.start_epoch > self.epochs:
                self.log.info(nothing_to_do(self))
            for epoch in range(state.start_epoch, self.epochs + 1):
                self.train_epoch(epoch)
                improved = False
                if self.evaluator is not None and epoch % g["eval_interval"] == 0:
                    last_eval = self.evaluator.evaluate(epoch)
                    key = state.best_key = self._metric_keys(last_eval)[0]
                    if last_eval[key] > state.best_metric:
                        state.best_metric, state.best_epoch, improved = last_eval[key], epoch, True
                    self.log.info(f"[Eval][Epoch {epoch}][best {key}: {state.best_metric:.5f} at epoch "
                                  f"{state.best_epoch}]")
                    ema_eval = self.evaluator.evaluate(epoch, ema=True) if self.ema is not None else {}
                    self.callbacks.on_eval_end(self, epoch, last_eval, ema_eval)
                self.callbacks.on_checkpoint(self, epoch, improved)
                last_epoch = epoch
        finally:
            try:
                self.callbacks.on_train_end(self)
            finally:
                self._lock.release()
        if self.env.is_main and last_epoch is not None:
            for line in closing_summary(self, time.time() - started, last_epoch):
                self.log.info(line)
        return {"eval": last_eval, "best_metric": state.best_metric, "best_epoch": state.best_epoch}

    def evaluate(self, epoch: Optional[int] = None, ema: bool = False) -> Dict[str, float]:
        """Evaluate the model being trained on ``DataLoader.Eval`` (see :class:`Evaluator`)."""
        if self.evaluator is None:
            raise ConfigError("DataLoader.Eval: section is missing from the config (or Global.eval_during_train "
                              "is false)")
        return self.evaluator.evaluate(epoch, ema)

    @staticmethod
    def _metric_keys(result: Dict[str, float]) -> List[str]:
        return [k for k in result if k != "loss"] or ["loss"]

    # ------------------------------------------------------------------ one epoch

    def train_epoch(self, epoch: Optional[int] = None, loader: Optional[Iterable[Sequence[paddle.Tensor]]] = None
                    ) -> Dict[str, float]:
        """One training epoch on the configured conv backend; returns its mean ``loss``, ``steps`` and ``samples``.

        ``epoch`` (default: the next one, ``state.start_epoch``) sets the data order, the LR schedule
        position of epoch-wise schedules and the log lines. ``loader`` (default
        ``DataLoader.Train``, with the resume position of an interrupted epoch) may be any
        sized iterable of ``(images, labels)`` batches, e.g. in-memory tensors.
        """
        epoch = self.state.start_epoch if epoch is None else int(epoch)
        with backend.use(self.conv_backend), quiet_paddle_warnings():
            if loader is None:
                return self._train_epoch(epoch, self._loader_batches(epoch), self.steps_per_epoch, resume=True)
            return self._train_epoch(epoch, enumerate(((b[0], b[1], 0) for b in loader)), len(loader), resume=False)

    def _loader_batches(self, epoch: int) -> Batches:
        """``(iteration, batch)`` of ``DataLoader.Train`` for ``epoch``, from where an interrupted run stopped."""
        set_loader_epoch(self.train_loader, epoch)
        start_iter = 0
        partial = self.state.partial
        if partial and int(partial["epoch"]) == epoch:
            start_iter = int(partial["iters"])
            self.train_loader.batch_sampler.skip(start_iter)
        return enumerate(iterate_loader(self.train_loader), start=start_iter)

    def _train_epoch(self, epoch: int, batches: Batches, steps_per_epoch: int, resume: bool) -> Dict[str, float]:
        state = self.state
        by_epoch = getattr(self.lr_scheduler, "by_epoch", False)
        loss_sum, seen = 0.0, 0
        if resume and state.partial and int(state.partial["epoch"]) == epoch:
            loss_sum, seen = float(state.partial["loss_sum"]), int(state.partial["seen"])
        state.partial = None
        self.train_model.train()
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
            if np.isfinite(value):
                state.global_step += 1
                steps += 1
                loss_sum, seen = loss_sum + value * images.shape[0], seen + images.shape[0]
            self.callbacks.on_step_end(self, Step(epoch, it, steps_per_epoch, value, lr, loss_sum, seen, logits,
                                                  labels, reader_cost, time.time() - tic, last_micro, self))
            tic = time.time()
        if by_epoch:
            self.lr_scheduler.step()
        total = self.all_reduce_sum([loss_sum, float(seen), float(skipped)])
        totals = {"loss": total[0] / max(total[1], 1), "steps": float(steps), "samples": total[1],
                  "skipped": total[2]}
        self.callbacks.on_epoch_end(self, epoch, totals)
        return {k: totals[k] for k in ("loss", "steps", "samples")}

    def _step_seed(self) -> None:
        """Seed the RNGs from (seed, rank, step): dropout and drop-path are reproducible and resumable."""
        if self.seed is not None:
            paddle.seed((self.seed * 1_000_003 + self.state.global_step * 8_191 + self.env.rank) % (2 ** 31))

    def _forward_backward(self, images: paddle.Tensor, labels: paddle.Tensor, sync: bool):
        """One micro-batch: forward (under AMP if enabled) and backward of ``loss / update_freq``."""
        no_sync = self.env.world_size > 1 and not sync
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
        self.callbacks.on_optimizer_step(self)

    def all_reduce_sum(self, values: List[float]) -> List[float]:
        """``values`` summed over every rank (a collective call)."""
        if self.env.world_size == 1:
            return values
        t = paddle.to_tensor(values, dtype="float64")
        dist.all_reduce(t)
        return t.numpy().tolist()

    def batch_metrics(self, logits: paddle.Tensor, labels: paddle.Tensor) -> Dict[str, float]:
        """``Metric.Train`` on one batch (empty for soft targets such as mixup's)."""
        if not self.multilabel and labels.ndim == 2 and labels.shape[-1] == self.config["Arch"]["class_num"]:
            return {}  # soft targets (mixup): batch accuracy is not defined
        out: Dict[str, float] = {}
        for metric in self.train_metrics:
            out.update(metric(numpy_outputs(logits), labels.numpy()))
        return out
