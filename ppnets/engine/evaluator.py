"""The :class:`Evaluator`: a model's predictions over a whole loader (gathered over ranks), its loss
and metrics, and the per-class report. It runs alone (``tools/eval.py``: trained weights on
``DataLoader.Eval``) or inside a :class:`~ppnets.engine.trainer.Trainer`, sharing its model and loader."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import backend
from ..arch.distillation import inference_model
from ..arch.reparam import reparameterize
from ..checkpoint import build_run_model, load_run_weights, trained_class_names
from ..data import build_dataloader, class_counts, iterate_loader
from ..errors import ConfigError, DataError
from ..loss import balanced_class_weights, build_loss
from ..metric import build_metrics, class_recall, confusion_matrix, multilabel_report
from .amp import AmpSettings
from .models import forward_in_chunks
from .setup import RunEnv, check_writable, output_dir_of, prepare_run

__all__ = ["Evaluator", "set_loader_epoch", "bind_class_counts", "check_class_num"]


def set_loader_epoch(loader: paddle.io.DataLoader, epoch: int) -> None:
    """Position ``loader``'s dataset and batch sampler at ``epoch`` (its data order and augmentation draws)."""
    loader.dataset.set_epoch(epoch)
    if hasattr(loader.batch_sampler, "set_epoch"):
        loader.batch_sampler.set_epoch(epoch)


def bind_class_counts(config: Dict[str, Any], losses: List[Any], loader: paddle.io.DataLoader, log: Any) -> None:
    """``class_weight: auto`` weights from the class counts of ``loader``'s dataset (training: the
    training set's; evaluation alone: the evaluated set's)."""
    losses = [loss for loss in losses if loss is not None and loss.needs_class_counts]
    if losses:
        counts = class_counts(loader.dataset, config["Arch"]["class_num"])
        for loss in losses:
            loss.bind_class_counts(counts)
        log.info("class_weight: auto = " + ", ".join(f"{w:.3g}" for w in balanced_class_weights(counts))
                 + f" (images per class: {', '.join(map(str, counts))})")


def check_class_num(config: Dict[str, Any], class_names: Optional[List[str]]) -> None:
    class_num = config["Arch"]["class_num"]
    if class_names is not None and len(class_names) != class_num:
        raise DataError(f"Arch.class_num={class_num} but the dataset has {len(class_names)} classes "
                        f"({', '.join(class_names[:10])}{' …' if len(class_names) > 10 else ''})")


def refuse_features_only(config: Dict[str, Any]) -> None:
    if config["Arch"].get("features_only"):
        raise ConfigError("Arch.features_only: a feature extractor has no classifier to train, evaluate or "
                          "infer with; it is for tools/export_model.py (or ppnets.build_model)")


class Evaluator:
    """Evaluate a model on ``DataLoader.Eval``: loss, metrics and the per-class report.

    ``Evaluator(config)`` builds everything itself, as ``tools/eval.py`` does: the evaluated model (a
    DistillationModel's ``infer_model_name``) with ``Global.pretrained_model`` loaded strictly, fused
    first when ``reparameterize`` is set, and ``DataLoader.Eval`` with the classes the weights were
    trained on. :meth:`for_training` shares a trainer's model, loader and environment instead.
    """

    def __init__(self, config: Dict[str, Any], reparameterize_model: bool = False,
                 _parts: Optional[Dict[str, Any]] = None) -> None:
        self.config = config
        self.multilabel = config["Global"]["use_multilabel"]
        self.metrics = build_metrics(config["Metric"]["Eval"], "Metric.Eval")
        self.eval_loss = build_loss(config["Loss"]["Eval"], "Loss.Eval")
        self.last_eval: Optional[Dict[str, np.ndarray]] = None
        if _parts is not None:
            self.__dict__.update(_parts)
            return
        g = config["Global"]
        if not g.get("pretrained_model"):
            raise ConfigError("Global.pretrained_model: required for evaluation, "
                              "e.g. -o Global.pretrained_model=output/MobileNetV2/best_model")
        self.output_dir = output_dir_of(config)
        check_writable(self.output_dir)
        self.env: RunEnv = prepare_run(config, "eval", self.output_dir)
        self.log = self.env.log
        names = trained_class_names(g["pretrained_model"], g["trust_pickles"])
        self.loader = build_dataloader(config, "Eval", class_names=names)
        self.class_names = self.loader.dataset.class_names
        check_class_num(config, self.class_names)
        refuse_features_only(config)
        self.model = build_run_model(config["Arch"], "eval", g["trust_pickles"])
        load_run_weights(self.model, config["Arch"], g["pretrained_model"], "eval", strict=True,
                         trust=g["trust_pickles"])
        if reparameterize_model:
            reparameterize(self.model)
        self.amp = AmpSettings(config["AMP"], g["device"])
        if self.amp.requested_dtype_unavailable:
            self.log.warning(self.amp.requested_dtype_unavailable)
        self.ema_model = None
        bind_class_counts(config, [self.eval_loss], self.loader, self.log)

    @classmethod
    def for_training(cls, config: Dict[str, Any], env: RunEnv, model: paddle.nn.Layer,
                     loader: paddle.io.DataLoader, amp: AmpSettings, class_names: Optional[List[str]],
                     ema_model: Optional[paddle.nn.Layer]) -> "Evaluator":
        """The evaluator of a training run: its model (and EMA model), eval loader and environment."""
        return cls(config, _parts={"env": env, "log": env.log, "output_dir": env.output_dir, "model": model,
                                   "loader": loader, "amp": amp, "class_names": class_names,
                                   "ema_model": ema_model})

    @property
    def world_size(self) -> int:
        return self.env.world_size

    @paddle.no_grad()
    def predict_loader(self, loader: paddle.io.DataLoader, model: Optional[paddle.nn.Layer] = None
                       ) -> Dict[str, np.ndarray]:
        """Logits and labels of every sample of ``loader`` (gathered over ranks, padding dropped)."""
        model = inference_model(model or self.model)  # a DistillationModel: its infer_model_name only
        model.eval()
        logits_list, labels_list = [], []
        skipped = 0
        for images, labels, n_bad in iterate_loader(loader):
            skipped += n_bad
            if images.shape[0] == 0:
                continue
            with self.amp.autocast(evaluating=True), backend.use(self.env.conv_backend):
                logits = forward_in_chunks(model, images)
            logits_list.append(logits.astype("float32").numpy())
            labels_list.append(labels.numpy() if self.multilabel else labels.numpy().reshape(-1))
        logits = np.concatenate(logits_list) if logits_list else np.zeros((0, self.config["Arch"]["class_num"]))
        labels = np.concatenate(labels_list) if labels_list else \
            np.zeros((0, logits.shape[1]) if self.multilabel else (0,), np.float32 if self.multilabel else np.int64)
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
            labels = np.zeros((total,) + labels.shape[1:], labels.dtype)
            for idx, lg, lb in parts:
                logits[idx], labels[idx] = lg, lb  # padded duplicates overwrite with equal values
        return {"logits": logits, "labels": labels}

    def evaluate(self, epoch: Optional[int] = None, ema: bool = False) -> Dict[str, float]:
        """Loss and metrics over the whole of ``DataLoader.Eval`` (``ema``: the EMA weights)."""
        if self.loader is None:
            raise ConfigError("DataLoader.Eval: section is missing from the config")
        set_loader_epoch(self.loader, 0)
        start = time.time()
        res = self.predict_loader(self.loader, self.ema_model if ema else None)
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

    def report(self) -> Dict[str, Any]:
        """Per-class accuracy and the confusion matrix of the last :meth:`evaluate` (multi-label: per-class
        average precision, and precision / recall / F1 at ``Infer.threshold``)."""
        if self.last_eval is None:
            raise ConfigError("Evaluator.report: call evaluate() first")
        logits, labels = self.last_eval["logits"], self.last_eval["labels"]
        n = self.config["Arch"]["class_num"]
        names = self.class_names or [str(i) for i in range(n)]
        if self.multilabel:
            return {"per_class": multilabel_report(logits, labels, self.config["Infer"]["threshold"]),
                    "class_names": names}
        cm = confusion_matrix(labels, logits.argmax(axis=1), n)
        return {"confusion_matrix": cm, "per_class_accuracy": class_recall(cm), "class_names": names}
