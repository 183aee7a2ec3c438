"""The training / evaluation engine behind ``tools/train.py`` and ``tools/eval.py``."""
from __future__ import annotations

import datetime
import os
import random
import time
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import build_model
from ..config import dump_config
from ..data import build_dataloader, iterate_loader
from ..errors import ConfigError, DataError, TrainingError
from ..loss import build_loss
from ..metric import build_metrics, confusion_matrix
from ..optimizer import build_optimizer
from ..utils.logger import get_logger, setup_logger
from .checkpoint import load_checkpoint, load_pretrained, save_checkpoint

__all__ = ["Engine"]


def _fmt_eta(seconds: float) -> str:
    return str(datetime.timedelta(seconds=int(max(seconds, 0))))


class Engine:
    """Builds everything a config describes and runs ``train()`` or ``evaluate()``.

    Args:
        config: a validated config (:func:`ppnets.config.load_config`).
        mode: ``"train"`` builds the training and (if enabled) eval loaders, the loss and
            the optimizer; ``"eval"`` only the eval loader; ``"infer"``/``"export"`` only the model.
    """

    def __init__(self, config: Dict[str, Any], mode: str = "train") -> None:
        self.config = config
        self.mode = mode
        g = config["Global"]
        self.arch_name = config["Arch"]["name"]
        self.output_dir = os.path.join(g["output_dir"], self.arch_name)
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.is_main = self.rank == 0
        if self.is_main and mode in ("train", "eval"):
            try:
                os.makedirs(self.output_dir, exist_ok=True)
                probe = os.path.join(self.output_dir, ".write_test")
                with open(probe, "w") as f:
                    f.write("ok")
                os.remove(probe)
            except OSError as e:
                raise ConfigError(f"Global.output_dir: cannot write to {self.output_dir}: {e.strerror or e}") from None
        log_name = {"train": "train.log", "eval": "eval.log"}.get(mode)
        self.log = setup_logger(os.path.join(self.output_dir, log_name) if log_name else None, self.rank)
        self._set_device(g["device"])
        self._seed(g["seed"])
        if self.world_size > 1:
            dist.init_parallel_env()

        # data
        self.train_loader = self.eval_loader = None
        self.class_names: Optional[List[str]] = None
        if mode == "train":
            self.train_loader = build_dataloader(config, "Train", seed=g["seed"])
            self.class_names = self.train_loader.dataset.class_names
        if mode == "eval" or (mode == "train" and g["eval_during_train"] and "Eval" in config["DataLoader"]):
            self.eval_loader = build_dataloader(config, "Eval", class_names=self.class_names)
            self.class_names = self.class_names or self.eval_loader.dataset.class_names
        class_num = config["Arch"]["class_num"]
        if self.class_names is not None and len(self.class_names) != class_num:
            raise DataError(f"Arch.class_num={class_num} but the dataset has {len(self.class_names)} classes "
                            f"({', '.join(self.class_names[:10])}{' …' if len(self.class_names) > 10 else ''})")

        # model
        arch = dict(config["Arch"])
        self.model = build_model(arch.pop("name"), **arch)
        if g["pretrained_model"]:
            load_pretrained(self.model, g["pretrained_model"], self.arch_name)
        self.train_model = paddle.DataParallel(self.model) if self.world_size > 1 else self.model

        self.metrics = build_metrics(config["Metric"]["Eval"], "Metric.Eval")
        self.eval_loss = build_loss(config["Loss"]["Eval"], "Loss.Eval")
        self.optimizer = None
        self.start_epoch, self.global_step = 1, 0
        self.best_metric, self.best_epoch = -np.inf, 0
        if mode == "train":
            self.train_loss = build_loss(config["Loss"]["Train"], "Loss.Train")
            self.train_metrics = build_metrics(config["Metric"]["Train"], "Metric.Train")
            self.epochs = g["epochs"]
            self.steps_per_epoch = len(self.train_loader)
            if self.steps_per_epoch == 0:
                raise DataError("DataLoader.Train: no batches (empty dataset, or batch_size larger than the "
                                "dataset with drop_last: true)")
            self.optimizer = build_optimizer(config["Optimizer"], self.epochs, self.steps_per_epoch,
                                             self.model.parameters())
            self.lr_scheduler = self.optimizer._learning_rate
            if g["checkpoints"]:
                states = load_checkpoint(g["checkpoints"], self.model, self.optimizer, self.arch_name)
                self.start_epoch = int(states["epoch"]) + 1
                self.global_step = int(states.get("global_step", 0))
                self.best_metric = float(states.get("best_metric", -np.inf))
                self.best_epoch = int(states.get("best_epoch", 0))
                self.log.info(f"resumed from {g['checkpoints']}: epoch {states['epoch']} done, "
                              f"best {self.best_metric:.5f} at epoch {self.best_epoch}, "
                              f"lr {self.optimizer.get_lr():.6g}")
        if self.is_main and mode in ("train", "eval"):
            dump_config(config, os.path.join(self.output_dir, "config.yaml"))
            if self.class_names is not None:
                self._write_label_list(os.path.join(self.output_dir, "label_list.txt"))

    # ------------------------------------------------------------------ setup

    def _set_device(self, device: str) -> None:
        if device == "gpu" and not paddle.device.is_compiled_with_cuda():
            raise ConfigError("Global.device: gpu requested but this Paddle build has no CUDA; use cpu")
        if device == "gpu":
            paddle.set_device(f"gpu:{dist.ParallelEnv().dev_id}")
        else:
            paddle.set_device("cpu")

    def _seed(self, seed: Optional[int]) -> None:
        if seed is None:
            return
        seed = seed + self.rank  # a per-rank seed (dropout masks differ across ranks)
        paddle.seed(seed)
        np.random.seed(seed)
        random.seed(seed)

    def _write_label_list(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.class_names) + "\n")

    # ------------------------------------------------------------------ train

    def train(self) -> Dict[str, Any]:
        """Run the configured epochs; returns the last eval metrics and the best metric."""
        g = self.config["Global"]
        writer = self._visualdl() if g["use_visualdl"] and self.is_main else None
        by_epoch = getattr(self.lr_scheduler, "by_epoch", False)
        last_eval: Dict[str, float] = {}
        total_steps = self.epochs * self.steps_per_epoch
        run_start, run_start_step = time.time(), self.global_step
        try:
            for epoch in range(self.start_epoch, self.epochs + 1):
                self._set_epoch(self.train_loader, epoch)
                self.train_model.train()
                sums: Dict[str, float] = {}
                seen = 0
                tic = time.time()
                for it, (images, labels) in enumerate(iterate_loader(self.train_loader)):
                    reader_cost = time.time() - tic
                    logits = self.train_model(images)
                    losses = self.train_loss(logits, labels)
                    loss = losses["loss"]
                    loss.backward()
                    self.optimizer.step()
                    self.optimizer.clear_grad()
                    value = float(loss)  # CPU ops are synchronous: this costs nothing extra
                    if not np.isfinite(value):
                        raise TrainingError(f"loss is {value} at epoch {epoch}, iteration {it + 1}; stopped. "
                                            f"The last good checkpoint is {os.path.join(self.output_dir, 'latest')}"
                                            " (lower the learning rate or check the data)")
                    lr = self.optimizer.get_lr()
                    if not by_epoch:
                        self.lr_scheduler.step()
                    self.global_step += 1
                    n = images.shape[0]
                    seen += n
                    sums["loss"] = sums.get("loss", 0.0) + value * n
                    step_print = (it + 1) % g["print_batch_step"] == 0 or it + 1 == self.steps_per_epoch
                    if step_print:
                        acc = self._batch_metrics(logits, labels)
                        batch_cost = time.time() - tic
                        done = self.global_step - run_start_step
                        eta = (time.time() - run_start) / max(done, 1) * (total_steps - self.global_step)
                        parts = [f"lr: {lr:.6f}", f"loss: {sums['loss'] / seen:.5f}"]
                        parts += [f"{k}: {v:.5f}" for k, v in acc.items()]
                        parts += [f"batch_cost: {batch_cost:.5f} s", f"reader_cost: {reader_cost:.5f} s",
                                  f"ips: {n / max(batch_cost, 1e-9):.2f} samples/s", f"eta: {_fmt_eta(eta)}"]
                        self.log.info(f"[Train][Epoch {epoch}/{self.epochs}][Iter {it + 1}/{self.steps_per_epoch}] "
                                      + ", ".join(parts))
                        if writer is not None:
                            writer.add_scalar("train/loss", value, self.global_step)
                            writer.add_scalar("train/lr", lr, self.global_step)
                            for k, v in acc.items():
                                writer.add_scalar(f"train/{k}", v, self.global_step)
                    tic = time.time()
                if by_epoch:
                    self.lr_scheduler.step()
                self.log.info(f"[Train][Epoch {epoch}/{self.epochs}][Avg] loss: {sums['loss'] / max(seen, 1):.5f}")
                improved = False
                if self.eval_loader is not None and epoch % g["eval_interval"] == 0:
                    last_eval = self.evaluate(epoch)
                    key = next(iter(self._metric_keys(last_eval)))
                    if last_eval[key] > self.best_metric:
                        self.best_metric, self.best_epoch, improved = last_eval[key], epoch, True
                    self.log.info(f"[Eval][Epoch {epoch}][best {key}: {self.best_metric:.5f} at epoch "
                                  f"{self.best_epoch}]")
                    if writer is not None:
                        for k, v in last_eval.items():
                            writer.add_scalar(f"eval/{k}", v, epoch)
                if self.is_main:
                    self.save("latest", epoch)
                    if improved:
                        self.save("best_model", epoch)
                    if g["save_interval"] and epoch % g["save_interval"] == 0:
                        self.save(f"epoch_{epoch}", epoch)
        finally:
            if writer is not None:
                writer.close()
        return {"eval": last_eval, "best_metric": self.best_metric, "best_epoch": self.best_epoch}

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
            out.update(metric(logits.numpy(), labels.numpy()))
        return out

    def _metric_keys(self, result: Dict[str, float]) -> List[str]:
        return [k for k in result if k != "loss"] or ["loss"]

    def _visualdl(self):
        from visualdl import LogWriter
        return LogWriter(logdir=os.path.join(self.output_dir, "vdl"))

    def save(self, name: str, epoch: int) -> None:
        """Write the checkpoint ``<output_dir>/<name>`` for a finished ``epoch``."""
        states = {"epoch": epoch, "global_step": self.global_step, "best_metric": self.best_metric,
                  "best_epoch": self.best_epoch, "arch": self.arch_name,
                  "class_num": self.config["Arch"]["class_num"], "class_names": self.class_names}
        save_checkpoint(os.path.join(self.output_dir, name), self.model, self.optimizer, states)

    # ------------------------------------------------------------------ eval

    @paddle.no_grad()
    def predict_loader(self, loader: paddle.io.DataLoader) -> Dict[str, np.ndarray]:
        """Logits and labels of every sample of ``loader`` (gathered over ranks, padding dropped)."""
        self.model.eval()
        logits_list, labels_list = [], []
        for images, labels in iterate_loader(loader):
            logits_list.append(self.model(images).numpy())
            labels_list.append(labels.numpy().reshape(-1))
        logits = np.concatenate(logits_list) if logits_list else np.zeros((0, self.config["Arch"]["class_num"]))
        labels = np.concatenate(labels_list) if labels_list else np.zeros((0,), np.int64)
        if self.world_size > 1:
            # the batch sampler is deterministic for evaluation: its order tells which samples
            # this rank saw (including the padding DistributedBatchSampler adds)
            indices = np.concatenate([np.asarray(b, np.int64) for b in loader.batch_sampler])
            parts: List[Any] = []
            dist.all_gather_object(parts, (indices, logits, labels))
            total = len(loader.dataset)
            logits = np.zeros((total, logits.shape[1]), logits.dtype)
            labels = np.zeros((total,), labels.dtype)
            for idx, lg, lb in parts:
                logits[idx], labels[idx] = lg, lb  # padded duplicates overwrite with equal values
        return {"logits": logits, "labels": labels}

    def evaluate(self, epoch: Optional[int] = None) -> Dict[str, float]:
        """Evaluate on ``DataLoader.Eval``: loss and metrics over the whole set."""
        if self.eval_loader is None:
            raise ConfigError("DataLoader.Eval: section is missing from the config")
        self._set_epoch(self.eval_loader, 0)
        start = time.time()
        res = self.predict_loader(self.eval_loader)
        logits, labels = res["logits"], res["labels"]
        out: Dict[str, float] = {}
        losses = self.eval_loss(paddle.to_tensor(logits), paddle.to_tensor(labels))
        out["loss"] = float(losses["loss"])
        for metric in self.metrics:
            out.update(metric(logits, labels))
        self.model.train()
        parts = ", ".join(f"{k}: {v:.5f}" for k, v in out.items())
        where = f"[Epoch {epoch}]" if epoch is not None else ""
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
