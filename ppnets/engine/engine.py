"""The training / evaluation engine behind ``tools/train.py`` and ``tools/eval.py``."""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import backend
from ..checkpoint import build_run_model, load_run_weights, trained_class_names
from ..config import dump_config
from ..data import build_dataloader, class_counts
from ..errors import ConfigError, DataError
from ..loss import balanced_class_weights, build_loss
from ..metric import build_metrics
from ..optimizer import build_optimizer
from ..utils.logger import setup_logger
from ..utils.files import atomic_write
from ..utils.lock import RunLock
from ..utils.runtime import retain_freed_memory
from .amp import AmpSettings
from .ema import ModelEMA
from .evaluation import EvaluationMixin
from .report import closing_summary, nothing_to_do, start_banner
from .run_state import RunStateMixin
from .train_loop import TrainLoopMixin

__all__ = ["Engine"]


#: signals that stop training after saving ``latest``: Ctrl-C, kill, a closed terminal
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Engine(TrainLoopMixin, EvaluationMixin, RunStateMixin):
    """Builds everything a config describes and runs ``train()`` or ``evaluate()``.

    Args:
        config: a validated config (:func:`ppnets.config.load_config`).
        mode: ``"train"`` builds the training and (if enabled) eval loaders, the loss and
            the optimizer; ``"eval"`` only the eval loader. (Export and inference build only the
            model: :mod:`ppnets.export`, :mod:`ppnets.engine.infer`.)
    """

    def __init__(self, config: Dict[str, Any], mode: str = "train") -> None:
        if mode not in ("train", "eval"):
            raise ValueError(f"Engine mode: expected 'train' or 'eval', got {mode!r}")
        self.config = config
        self.mode = mode
        g = config["Global"]
        self.arch_name = config["Arch"]["name"]
        self.output_dir = os.path.join(g["output_dir"], self.arch_name)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.is_main = self.rank == 0
        if self.is_main:
            try:
                os.makedirs(self.output_dir, exist_ok=True)
                probe = os.path.join(self.output_dir, ".write_test")
                with open(probe, "w") as f:
                    f.write("ok")
                os.remove(probe)
            except OSError as e:
                raise ConfigError(f"Global.output_dir: cannot write to {self.output_dir}: {e.strerror or e}") from None
        # one training run per folder; released when train() ends (or here, if setting up fails)
        self._lock = RunLock(self.output_dir)
        if self.is_main and mode == "train":
            self._lock.acquire()
        try:
            self._setup(config, mode)
        except BaseException:
            self._lock.release()
            raise

    def _setup(self, config: Dict[str, Any], mode: str) -> None:
        g = config["Global"]
        self.log = setup_logger(os.path.join(self.output_dir, f"{mode}.log"), self.rank)
        for notice in getattr(config, "notices", []):
            self.log.info(f"config: {notice}")
        self._set_device(g["device"])
        #: the convolution kernels of this engine's dynamic-mode passes (``Global.conv_backend``)
        self.conv_backend = backend.resolve(g["conv_backend"], g["device"], self.log)
        if g["device"] == "cpu":
            retain_freed_memory()  # no page faults on every step's fresh activations (see utils/runtime.py)
        self.seed = g["seed"]
        self.multilabel = g["use_multilabel"]
        if self.seed is not None:  # the same on every rank: identical initial weights
            paddle.seed(self.seed)  # the data pipeline's draws derive from the seed on their own (ppnets.data.rng)
        if self.world_size > 1:
            dist.init_parallel_env()

        # data
        self.train_loader = self.eval_loader = None
        self.class_names: Optional[List[str]] = None
        if mode == "train":
            self.train_loader = build_dataloader(config, "Train", seed=self.seed, class_num=config["Arch"]["class_num"])
            self.class_names = self.train_loader.dataset.class_names
        if mode == "eval" or (mode == "train" and g["eval_during_train"] and "Eval" in config["DataLoader"]):
            # evaluation data must use the classes the model is (being) trained on, in the same order
            names = self.class_names if mode == "train" else trained_class_names(g["pretrained_model"],
                                                                                  g["trust_pickles"])
            self.eval_loader = build_dataloader(config, "Eval", class_names=names)
            self.class_names = self.class_names or self.eval_loader.dataset.class_names
            if mode == "train" and not config["Metric"]["Eval"]:
                raise ConfigError("Metric.Eval: empty, but evaluating during training needs a metric to pick "
                                  "best_model, e.g. [{TopkAcc: {topk: [1, 5]}}] (or Global.eval_during_train: false)")
        if mode == "train" and self.world_size > 1 and self.train_loader.dataset.bad_image != "stop":
            raise DataError("DataLoader.Train.dataset.bad_image: skip/warn is not supported for multi-process "
                            "training (ranks would run different numbers of steps); use stop or fix the files")
        class_num = config["Arch"]["class_num"]
        if self.class_names is not None and len(self.class_names) != class_num:
            raise DataError(f"Arch.class_num={class_num} but the dataset has {len(self.class_names)} classes "
                            f"({', '.join(self.class_names[:10])}{' …' if len(self.class_names) > 10 else ''})")

        # model
        self.model = self._build_model()
        if g["pretrained_model"]:
            load_run_weights(self.model, config["Arch"], g["pretrained_model"], mode, strict=mode != "train",
                             trust=g["trust_pickles"])
        self.ema: Optional[ModelEMA] = None
        if mode == "train" and config["EMA"]["decay"]:
            self.ema = ModelEMA(self.model, self._build_model(), config["EMA"]["decay"])
        self.amp = AmpSettings(config["AMP"], g["device"])
        if self.amp.requested_dtype_unavailable:
            self.log.warning(self.amp.requested_dtype_unavailable)

        self.metrics = build_metrics(config["Metric"]["Eval"], "Metric.Eval")
        self.eval_loss = build_loss(config["Loss"]["Eval"], "Loss.Eval")
        self.optimizer = None
        self.scaler = None
        self.start_epoch, self.global_step = 1, 0
        self.best_metric, self.best_epoch = -np.inf, 0
        self.best_key = "metric"  # the name of the metric that picks best_model (e.g. top1)
        self.best_ema_metric = -np.inf
        self.partial: Optional[Dict[str, Any]] = None  # progress of an interrupted epoch
        self._stop_signal: Optional[str] = None
        self._writer: Any = None
        self._clock = (time.time(), 0)
        self.train_model = self.model
        if mode == "train":
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
            if g["checkpoints"]:
                self._resume(g["checkpoints"])
            self.train_model = self.model
            if g["to_static"]:
                c, h, w = g["image_shape"]
                spec = paddle.static.InputSpec([None, c, h, w], "float32", name="x")
                self.train_model = paddle.jit.to_static(self.model, input_spec=[spec], full_graph=True)
            if self.world_size > 1:
                self.train_model = paddle.DataParallel(self.train_model)
        self._bind_class_counts()
        if self.is_main and mode == "train":  # evaluation leaves the training run's files alone
            dump_config(config, os.path.join(self.output_dir, "config.yaml"))
            if self.class_names is not None:
                self._write_label_list(os.path.join(self.output_dir, "label_list.txt"))

    # ------------------------------------------------------------------ setup

    def _build_model(self) -> paddle.nn.Layer:
        if self.config["Arch"].get("features_only"):
            raise ConfigError("Arch.features_only: a feature extractor has no classifier to train, evaluate or "
                              "infer with; it is for tools/export_model.py (or ppnets.build_model)")
        return build_run_model(self.config["Arch"], self.mode, self.config["Global"]["trust_pickles"])

    def _bind_class_counts(self) -> None:
        """``class_weight: auto`` weights from the training set's class counts (evaluation alone:
        the evaluated set's)."""
        losses = [loss for loss in (self.eval_loss, getattr(self, "train_loss", None))
                  if loss is not None and loss.needs_class_counts]
        if losses:
            loader = self.train_loader or self.eval_loader
            counts = class_counts(loader.dataset, self.config["Arch"]["class_num"])
            for loss in losses:
                loss.bind_class_counts(counts)
            self.log.info("class_weight: auto = " + ", ".join(f"{w:.3g}" for w in balanced_class_weights(counts))
                          + f" (images per class: {', '.join(map(str, counts))})")

    def _set_device(self, device: str) -> None:
        if device == "gpu" and not paddle.device.is_compiled_with_cuda():
            raise ConfigError("Global.device: gpu requested but this Paddle build has no CUDA; use cpu")
        if device == "gpu":
            paddle.set_device(f"gpu:{dist.ParallelEnv().dev_id}")
        else:
            paddle.set_device("cpu")

    def _write_label_list(self, path: str) -> None:
        atomic_write(path, "\n".join(self.class_names) + "\n")

    # ------------------------------------------------------------------ train

    def train(self) -> Dict[str, Any]:
        """Run the configured epochs; returns the last eval metrics and the best metric.

        SIGINT/SIGTERM/SIGHUP (Ctrl-C, kill, a closed terminal) stop after the current iteration,
        save ``latest`` (with the epoch's progress, so a resume continues mid-epoch) and raise
        :class:`TrainingInterrupted`. A checkpoint that finished every epoch trains nothing and says so.
        """
        g = self.config["Global"]
        writer = self._writer = self._visualdl() if g["use_visualdl"] and self.is_main else None
        self._stop_signal: Optional[str] = None
        previous = {s: signal.signal(s, self._on_signal) for s in _STOP_SIGNALS} \
            if threading.current_thread() is threading.main_thread() else {}
        last_eval: Dict[str, float] = {}
        self._clock = (time.time(), self.global_step)
        started, last_epoch = time.time(), None
        if self.is_main:
            for line in start_banner(self):
                self.log.info(line)
        if self.start_epoch > self.epochs:
            self.log.info(nothing_to_do(self))
        try:
            for epoch in range(self.start_epoch, self.epochs + 1):
                self.train_epoch(epoch)
                improved = False
                if self.eval_loader is not None and epoch % g["eval_interval"] == 0:
                    last_eval = self.evaluate(epoch)
                    key = self.best_key = self._metric_keys(last_eval)[0]
                    if last_eval[key] > self.best_metric:
                        self.best_metric, self.best_epoch, improved = last_eval[key], epoch, True
                    self.log.info(f"[Eval][Epoch {epoch}][best {key}: {self.best_metric:.5f} at epoch "
                                  f"{self.best_epoch}]")
                    ema_eval = self.evaluate(epoch, ema=True) if self.ema is not None else {}
                    if writer is not None:
                        for k, v in last_eval.items():
                            writer.add_scalar(f"eval/{k}", v, epoch)
                        for k, v in ema_eval.items():
                            writer.add_scalar(f"eval_ema/{k}", v, epoch)
                    if ema_eval and ema_eval[key] > self.best_ema_metric:
                        self.best_ema_metric = ema_eval[key]
                        if self.is_main:
                            self.save_evaluated("best_model_ema", self.ema.model, epoch)
                if self.is_main:
                    self.save("latest", epoch)
                    if improved:
                        self.save("best_model", epoch)
                    if g["save_interval"] and epoch % g["save_interval"] == 0:
                        self.save(f"epoch_{epoch}", epoch)
                last_epoch = epoch
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if writer is not None:
                writer.close()
            self._writer = None
            self._lock.release()
        if self.is_main and last_epoch is not None:
            for line in closing_summary(self, time.time() - started, last_epoch):
                self.log.info(line)
        return {"eval": last_eval, "best_metric": self.best_metric, "best_epoch": self.best_epoch}

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_signal = signal.Signals(signum).name
        self.log.warning(f"{self._stop_signal} received: stopping after this iteration and saving 'latest' "
                         "(press Ctrl-C again to abort without saving)")

    def _metric_keys(self, result: Dict[str, float]) -> List[str]:
        return [k for k in result if k != "loss"] or ["loss"]

    def _visualdl(self):
        from visualdl import LogWriter
        return LogWriter(logdir=os.path.join(self.output_dir, "vdl"))
