"""The training / evaluation engine behind ``tools/train.py`` and ``tools/eval.py``."""
from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
import time
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import backend, build_model
from ..config import dump_config
from ..data import build_dataloader, iterate_loader
from ..errors import CheckpointError, ConfigError, DataError, TrainingError, TrainingInterrupted
from ..loss import build_loss
from ..metric import build_metrics, confusion_matrix
from ..optimizer import build_optimizer
from ..utils.logger import setup_logger
from ..utils.files import atomic_write
from ..utils.lock import RunLock
from ..utils.runtime import retain_freed_memory
from .amp import AmpSettings
from .checkpoint import load_checkpoint, load_pretrained, save_checkpoint, trained_class_names
from .ema import ModelEMA
from .report import closing_summary, nothing_to_do, quiet_paddle_warnings, start_banner

__all__ = ["Engine"]


#: signals that stop training after saving ``latest``: Ctrl-C, kill, a closed terminal
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def _fmt_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Engine:
    """Builds everything a config describes and runs ``train()`` or ``evaluate()``.

    Args:
        config: a validated config (:func:`ppnets.config.load_config`).
        mode: ``"train"`` builds the training and (if enabled) eval loaders, the loss and
            the optimizer; ``"eval"`` only the eval loader. (Export and inference build only the
            model: :mod:`ppnets.engine.export`, :mod:`ppnets.engine.infer`.)
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
            load_pretrained(self.model, g["pretrained_model"], self.arch_name, strict=mode != "train",
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
        if self.is_main and mode == "train":  # evaluation leaves the training run's files alone
            dump_config(config, os.path.join(self.output_dir, "config.yaml"))
            if self.class_names is not None:
                self._write_label_list(os.path.join(self.output_dir, "label_list.txt"))

    # ------------------------------------------------------------------ setup

    def _build_model(self) -> paddle.nn.Layer:
        arch = dict(self.config["Arch"])
        if arch.get("features_only"):
            raise ConfigError("Arch.features_only: a feature extractor has no classifier to train, evaluate or "
                              "infer with; it is for tools/export_model.py (or ppnets.build_model)")
        return build_model(arch.pop("name"), **arch)

    def _set_device(self, device: str) -> None:
        if device == "gpu" and not paddle.device.is_compiled_with_cuda():
            raise ConfigError("Global.device: gpu requested but this Paddle build has no CUDA; use cpu")
        if device == "gpu":
            paddle.set_device(f"gpu:{dist.ParallelEnv().dev_id}")
        else:
            paddle.set_device("cpu")

    def _step_seed(self) -> None:
        """Seed the RNGs from (seed, rank, step): dropout and drop-path are reproducible and resumable."""
        if self.seed is not None:
            paddle.seed((self.seed * 1_000_003 + self.global_step * 8_191 + self.rank) % (2 ** 31))

    def _write_label_list(self, path: str) -> None:
        atomic_write(path, "\n".join(self.class_names) + "\n")

    def _resume(self, prefix: str) -> None:
        states = load_checkpoint(prefix, self.model, self.optimizer, self.arch_name,
                                 trust=self.config["Global"]["trust_pickles"],
                                 optimizer_name=self.config["Optimizer"]["name"])
        self.global_step = int(states.get("global_step", 0))
        self.best_metric = float(states.get("best_metric", -np.inf))
        self.best_epoch = int(states.get("best_epoch", 0))
        self.best_ema_metric = float(states.get("best_ema_metric", -np.inf))
        self.partial = states.get("partial")
        self.start_epoch = int(states["epoch"]) + 1
        if states.get("paddleclas"):  # PaddleClas's checkpoint: the LR position follows from the epoch
            self.global_step = int(states["epoch"]) * self.steps_per_epoch
            updates = int(states["epoch"]) * (-(-self.steps_per_epoch // self.update_freq))
            self.lr_scheduler.step(int(states["epoch"]) if getattr(self.lr_scheduler, "by_epoch", False) else updates)
            self.log.info(f"resuming PaddleClas's checkpoint {prefix}: epoch {states['epoch']} done (its metric "
                          f"{states.get('metric', float('nan')):.5f}); the best metric restarts, as in PaddleClas")
        if int(states["epoch"]) > self.epochs:
            raise ConfigError(f"Global.epochs={self.epochs}, but checkpoint {prefix} has already finished "
                              f"{states['epoch']} epochs: nothing left to do (its LR schedule spanned more epochs; "
                              f"set Global.epochs above {states['epoch']} to train further)")
        extra = states.get("extra", {})
        if self.ema is not None:
            if "pdema" in extra:
                ema_state = extra["pdema"]
            elif "ema.safetensors" in extra:
                ema_state = {"weights": extra["ema.safetensors"], "updates": states.get("ema_updates") or 0}
            else:
                raise CheckpointError(f"checkpoint {prefix} has no EMA weights (.pdema) but EMA.decay is set; "
                                      "resume without EMA or from a checkpoint written with EMA")
            if not isinstance(ema_state, dict) or not isinstance(ema_state.get("weights"), dict):
                raise CheckpointError(f"checkpoint {prefix}: its EMA file does not hold EMA weights")
            self.ema.set_state_dict(ema_state)
        if self.scaler is not None and states.get("scaler"):
            self.scaler.load_state_dict(states["scaler"])
        where = (f"epoch {self.partial['epoch']} iteration {self.partial['iters']}" if self.partial
                 else f"epoch {states['epoch']} done")
        self.log.info(f"resumed from {prefix}: {where}, best {self.best_metric:.5f} at epoch {self.best_epoch}, "
                      f"lr {self.optimizer.get_lr():.6g}")

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
                            save_checkpoint(os.path.join(self.output_dir, "best_model_ema"), self.ema.model, None,
                                            self._states(epoch), weights_format=g["weights_format"])
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

    def _last_good_checkpoint(self) -> str:
        """Where a failed run can resume from: this run's ``latest`` if it has been saved (a
        resumed run saves its own, so the resumed checkpoint is named only before that)."""
        latest = os.path.join(self.output_dir, "latest")
        if os.path.isfile(f"{latest}.pdstates"):
            return f"The last good checkpoint is {latest}"
        resumed = self.config["Global"]["checkpoints"]
        if resumed:
            return f"No checkpoint of this run was saved yet; it resumed from {resumed}"
        return "No checkpoint was saved yet"

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self._stop_signal = signal.Signals(signum).name
        self.log.warning(f"{self._stop_signal} received: stopping after this iteration and saving 'latest' "
                         "(press Ctrl-C again to abort without saving)")

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
                loss = self.train_loss(logits.astype("float32"), labels)["loss"]
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
        if labels.ndim == 2 and labels.shape[-1] == logits.shape[-1]:
            return {}  # soft targets (mixup): batch accuracy is not defined
        out: Dict[str, float] = {}
        for metric in self.train_metrics:
            out.update(metric(logits.astype("float32").numpy(), labels.numpy()))
        return out

    def _metric_keys(self, result: Dict[str, float]) -> List[str]:
        return [k for k in result if k != "loss"] or ["loss"]

    def _visualdl(self):
        from visualdl import LogWriter
        return LogWriter(logdir=os.path.join(self.output_dir, "vdl"))

    def _states(self, epoch: int, partial: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        return {"epoch": epoch, "global_step": self.global_step, "best_metric": self.best_metric,
                "best_epoch": self.best_epoch, "best_ema_metric": self.best_ema_metric, "arch": self.arch_name,
                "class_num": self.config["Arch"]["class_num"], "class_names": self.class_names,
                "partial": partial, "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "optimizer": self.config["Optimizer"]["name"],
                "ema_updates": self.ema.updates if self.ema is not None else None}

    def save(self, name: str, epoch: int, partial: Optional[Dict[str, Any]] = None) -> None:
        """Write the checkpoint ``<output_dir>/<name>``: ``epoch`` epochs done, plus ``partial`` progress."""
        fmt = self.config["Global"]["weights_format"]
        extra = None
        if self.ema is not None:  # safetensors holds tensors only: the update count is in .pdstates
            extra = {"pdema": self.ema.state_dict()} if fmt == "pdparams" else \
                {"ema.safetensors": self.ema.model.state_dict()}
        save_checkpoint(os.path.join(self.output_dir, name), self.model, self.optimizer,
                        self._states(epoch, partial), extra_files=extra, weights_format=fmt)

    # ------------------------------------------------------------------ eval

    @paddle.no_grad()
    def predict_loader(self, loader: paddle.io.DataLoader, model: Optional[paddle.nn.Layer] = None
                       ) -> Dict[str, np.ndarray]:
        """Logits and labels of every sample of ``loader`` (gathered over ranks, padding dropped)."""
        model = model or self.model
        model.eval()
        logits_list, labels_list = [], []
        skipped = 0
        for images, labels, n_bad in iterate_loader(loader):
            skipped += n_bad
            if images.shape[0] == 0:
                continue
            with self.amp.autocast(evaluating=True), backend.use(self.conv_backend):
                logits = model(images)
            logits_list.append(logits.astype("float32").numpy())
            labels_list.append(labels.numpy().reshape(-1))
        logits = np.concatenate(logits_list) if logits_list else np.zeros((0, self.config["Arch"]["class_num"]))
        labels = np.concatenate(labels_list) if labels_list else np.zeros((0,), np.int64)
        if skipped:
            self.log.warning(f"[Eval] skipped {skipped} unreadable image(s) "
                             f"(DataLoader.Eval.dataset.bad_image: {loader.dataset.bad_image})")
        if self.world_size > 1:
            if skipped:
                raise DataError("DataLoader.Eval.dataset.bad_image: skip/warn is not supported for multi-process "
                                "evaluation (results could not be matched to samples); use stop or fix the files")
            # the batch sampler is deterministic for evaluation: its order tells which samples
            # this rank saw (including the padding DistributedBatchSampler adds)
            indices = np.asarray(loader.batch_sampler.sample_indices(), np.int64)
            parts: List[Any] = []
            dist.all_gather_object(parts, (indices, logits, labels))
            total = len(loader.dataset)
            logits = np.zeros((total, logits.shape[1]), logits.dtype)
            labels = np.zeros((total,), labels.dtype)
            for idx, lg, lb in parts:
                logits[idx], labels[idx] = lg, lb  # padded duplicates overwrite with equal values
        return {"logits": logits, "labels": labels}

    def evaluate(self, epoch: Optional[int] = None, ema: bool = False) -> Dict[str, float]:
        """Evaluate on ``DataLoader.Eval``: loss and metrics over the whole set (``ema``: the EMA weights)."""
        if self.eval_loader is None:
            raise ConfigError("DataLoader.Eval: section is missing from the config")
        self._set_epoch(self.eval_loader, 0)
        start = time.time()
        res = self.predict_loader(self.eval_loader, self.ema.model if ema else None)
        logits, labels = res["logits"], res["labels"]
        out: Dict[str, float] = {}
        losses = self.eval_loss(paddle.to_tensor(logits), paddle.to_tensor(labels))
        out["loss"] = float(losses["loss"])
        for metric in self.metrics:
            out.update(metric(logits, labels))
        parts = ", ".join(f"{k}: {v:.5f}" for k, v in out.items())
        where = (f"[Epoch {epoch}]" if epoch is not None else "") + ("[EMA]" if ema else "")
        self.log.info(f"[Eval]{where}[Avg] {parts}, samples: {len(labels)}, time: {time.time() - start:.2f} s")
        self.last_eval = {"logits": logits, "labels": labels}
        return out

    def evaluation_report(self) -> Dict[str, Any]:
        """Per-class accuracy and the confusion matrix of the last :meth:`evaluate`."""
        logits, labels = self.last_eval["logits"], self.last_eval["labels"]
        n = self.config["Arch"]["class_num"]
        cm = confusion_matrix(labels, logits.argmax(axis=1), n)
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(cm.sum(1) > 0, np.diag(cm) / cm.sum(1), np.nan)
        return {"confusion_matrix": cm, "per_class_accuracy": per_class,
                "class_names": self.class_names or [str(i) for i in range(n)]}
