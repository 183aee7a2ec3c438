"""Evaluation: the predictions of a whole loader (gathered over ranks), its metrics and the
per-class report — the part of :class:`~ppnets.engine.Engine` that runs the evaluated model
(a DistillationModel's ``infer_model_name``) on ``DataLoader.Eval``."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import numpy as np
import paddle
import paddle.distributed as dist

from ..arch import backend
from ..arch.distillation import inference_model
from ..data import iterate_loader
from ..errors import ConfigError, DataError
from ..metric import class_recall, confusion_matrix, multilabel_report
from .models import forward_in_chunks

__all__ = ["EvaluationMixin"]


class EvaluationMixin:
    """``predict_loader``, ``evaluate`` and ``evaluation_report`` of the engine (which provides
    ``model``, ``ema``, ``amp``, ``eval_loader``, ``eval_loss``, ``metrics``, ``multilabel`` …)."""

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
            with self.amp.autocast(evaluating=True), backend.use(self.conv_backend):
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
        """Per-class accuracy and the confusion matrix of the last :meth:`evaluate` (multi-label: per-class
        average precision, and precision / recall / F1 at ``Infer.threshold``)."""
        logits, labels = self.last_eval["logits"], self.last_eval["labels"]
        n = self.config["Arch"]["class_num"]
        names = self.class_names or [str(i) for i in range(n)]
        if self.multilabel:
            return {"per_class": multilabel_report(logits, labels, self.config["Infer"]["threshold"]),
                    "class_names": names}
        cm = confusion_matrix(labels, logits.argmax(axis=1), n)
        return {"confusion_matrix": cm, "per_class_accuracy": class_recall(cm), "class_names": names}
