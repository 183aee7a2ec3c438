"""Knowledge-distillation losses over a DistillationModel's outputs ``{model name: logits}``.

PaddleClas's names and options: a pair ``[Student, Teacher]`` in ``model_name_pairs`` is the
model that learns and the model it learns from; ``model_names`` lists models trained on the
labels. Each loss sums over its pairs (or names). The second model of a pair is a fixed target
(its logits are detached) except in :class:`DistillationDMLLoss`, where both models learn from
each other. ``key`` and ``name`` are accepted for PaddleClas configs (ppnets's models output
one logits tensor, so ``key`` must stay null).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import paddle
import paddle.nn.functional as F

from ..errors import ConfigError
from .base import LOSSES, Outputs, check_epsilon, model_output
from .classification import CELoss

__all__ = ["DistillationCELoss", "DistillationGTCELoss", "DistillationKLDivLoss", "DistillationDKDLoss",
           "DistillationDMLLoss", "kl_divergence"]


def _pairs(value: Sequence[Sequence[str]], where: str) -> List[Tuple[str, str]]:
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(n, str) for n in p) for p in value):
        raise ConfigError(f"{where}.model_name_pairs: expected a list of [learner, target] model-name pairs, "
                          f"e.g. [[Student, Teacher]], got {value!r}")
    return [(a, b) for a, b in value]


def _names(value: Sequence[str], where: str) -> List[str]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(n, str) for n in value):
        raise ConfigError(f"{where}.model_names: expected a list of model names, e.g. [Student], got {value!r}")
    return list(value)


def kl_divergence(log_q: paddle.Tensor, log_p: paddle.Tensor) -> paddle.Tensor:
    """``KL(q ‖ p) = Σ_c q_c (log q_c - log p_c)`` from log-probabilities, averaged over the batch."""
    return (paddle.exp(log_q) * (log_q - log_p)).sum(axis=-1).mean()


class _PairLoss(paddle.nn.Layer):
    """A loss over ``model_name_pairs``; ``models_used`` are the model names it reads."""

    where = "Distillation"

    def __init__(self, model_name_pairs: Sequence[Sequence[str]], key: Optional[str], weight: float) -> None:
        super().__init__()
        self.model_name_pairs = _pairs(model_name_pairs, self.where)
        self.models_used = sorted({n for pair in self.model_name_pairs for n in pair})
        self.key = key
        self.weight = weight

    def pair_loss(self, learner: paddle.Tensor, target: paddle.Tensor, labels: paddle.Tensor) -> paddle.Tensor:
        raise NotImplementedError

    def forward(self, outputs: Outputs, labels: paddle.Tensor) -> paddle.Tensor:
        total = None
        for a, b in self.model_name_pairs:
            value = self.pair_loss(model_output(outputs, a, self.key, self.where),
                                   model_output(outputs, b, self.key, self.where), labels)
            total = value if total is None else total + value
        return total


@LOSSES.register
class DistillationCELoss(_PairLoss):
    """Cross-entropy of the learner against the target model's softmax (its soft labels):
    ``-Σ_c q_c log p_c`` with ``q = softmax(target)`` (smoothed by ``epsilon``: ``(1 - ε)·q + ε / C``)."""

    where = "DistillationCELoss"

    def __init__(self, model_name_pairs: List[List[str]], epsilon: Optional[float] = None, key: Optional[str] = None,
                 weight: float = 1.0, name: str = "loss_ce") -> None:
        super().__init__(model_name_pairs, key, weight)
        self.epsilon = check_epsilon(epsilon, self.where)

    def pair_loss(self, learner, target, labels):
        q = F.softmax(target.detach(), axis=-1)
        if self.epsilon:
            q = q * (1.0 - self.epsilon) + self.epsilon / q.shape[-1]
        return -(q * F.log_softmax(learner, axis=-1)).sum(axis=-1).mean()


@LOSSES.register
class DistillationGTCELoss(CELoss):
    """:class:`~ppnets.loss.classification.CELoss` on the labels for each model of ``model_names``,
    summed (with CELoss's ``epsilon`` and ``class_weight``)."""

    def __init__(self, model_names: List[str], epsilon: Optional[float] = None, key: Optional[str] = None,
                 weight: float = 1.0, class_weight: Union[str, List[float], None] = None,
                 name: str = "loss_gt_ce") -> None:
        super().__init__(epsilon, weight, class_weight)
        self.model_names = _names(model_names, self.where)
        self.models_used = sorted(set(self.model_names))
        self.key = key

    def forward(self, outputs: Outputs, target: paddle.Tensor) -> paddle.Tensor:
        total = None
        for name in self.model_names:
            value = self.cross_entropy(model_output(outputs, name, self.key, self.where), target)
            total = value if total is None else total + value
        return total


@LOSSES.register
class DistillationKLDivLoss(_PairLoss):
    """Hinton et al.'s soft-label loss: ``T² · KL(softmax(t / T) ‖ softmax(s / T))``, summed over
    classes and averaged over the batch (PaddleClas's ``DistillationKLDivLoss``). ``temperature``
    T > 1 softens both distributions, so the target's ranking of the wrong classes carries signal."""

    where = "DistillationKLDivLoss"

    def __init__(self, model_name_pairs: List[List[str]], temperature: float = 4.0, key: Optional[str] = None,
                 weight: float = 1.0, name: str = "loss_kl") -> None:
        super().__init__(model_name_pairs, key, weight)
        if temperature <= 0:
            raise ConfigError(f"{self.where}.temperature: expected a number > 0, got {temperature}")
        self.temperature = float(temperature)

    def pair_loss(self, learner, target, labels):
        t = self.temperature
        return kl_divergence(F.log_softmax(target.detach() / t, axis=-1), F.log_softmax(learner / t, axis=-1)) * t * t


@LOSSES.register
class DistillationDKDLoss(_PairLoss):
    """Decoupled knowledge distillation (Zhao et al., 2022): ``alpha · TCKD + beta · NCKD``.

    With ``g`` the ground-truth class (the labels; the target model's top class with
    ``use_target_as_gt``) and both distributions at temperature T:

    - TCKD: ``T² · KL`` between the binary distributions (p_g, 1 - p_g) of target and learner;
    - NCKD: ``T² · KL`` between the distributions over the other classes (``g`` left out).
    """

    where = "DistillationDKDLoss"

    def __init__(self, model_name_pairs: List[List[str]], temperature: float = 1.0, alpha: float = 1.0,
                 beta: float = 1.0, use_target_as_gt: bool = False, key: Optional[str] = None,
                 weight: float = 1.0, name: str = "loss_dkd") -> None:
        super().__init__(model_name_pairs, key, weight)
        if temperature <= 0:
            raise ConfigError(f"{self.where}.temperature: expected a number > 0, got {temperature}")
        self.temperature, self.alpha, self.beta = float(temperature), float(alpha), float(beta)
        self.use_target_as_gt = use_target_as_gt

    def pair_loss(self, learner, target, labels):
        t = self.temperature
        s, z = learner / t, target.detach() / t
        if self.use_target_as_gt:
            gt = z.argmax(axis=-1)
        elif labels.ndim == 2 and labels.shape[-1] == s.shape[-1] and paddle.is_floating_point(labels):
            gt = labels.argmax(axis=-1)  # soft targets (Mixup/CutMix): their largest class
        else:
            gt = labels.reshape([-1]).astype("int64")
        mask = F.one_hot(gt, s.shape[-1]).astype(s.dtype)
        big = 1e4  # pushes the masked logits out of the softmax

        def binary(logits):  # log (p_g, 1 - p_g)
            whole = paddle.logsumexp(logits, axis=-1, keepdim=True)
            return paddle.concat([paddle.logsumexp(logits - big * (1 - mask), axis=-1, keepdim=True),
                                  paddle.logsumexp(logits - big * mask, axis=-1, keepdim=True)], axis=-1) - whole

        tckd = kl_divergence(binary(z), binary(s))
        nckd = kl_divergence(F.log_softmax(z - big * mask, axis=-1), F.log_softmax(s - big * mask, axis=-1))
        return (self.alpha * tckd + self.beta * nckd) * t * t


@LOSSES.register
class DistillationDMLLoss(_PairLoss):
    """Deep mutual learning (Zhang et al., 2018): the symmetric KL divergence of the two models'
    distributions, ``(KL(p ‖ q) + KL(q ‖ p)) / 2`` (PaddleClas's ``DMLLoss``). Both models learn.

    ``act``: softmax (default) or sigmoid (element-wise, as PaddleClas). The element terms are
    averaged over samples and summed over classes; ``sum_across_class_dim`` multiplies by the
    number of classes, as PaddleClas's option does.
    """

    where = "DistillationDMLLoss"

    def __init__(self, model_name_pairs: List[List[str]], act: Optional[str] = "softmax",
                 sum_across_class_dim: bool = False, weight_ratio: bool = False, key: Optional[str] = None,
                 weight: float = 1.0, name: str = "loss_dml") -> None:
        super().__init__(model_name_pairs, key, weight)
        if act not in ("softmax", "sigmoid"):
            raise ConfigError(f"{self.where}.act: expected softmax or sigmoid, got {act!r}")
        if weight_ratio:
            raise ConfigError(f"{self.where}.weight_ratio: true is PaddleClas's attribute-recognition weighting, "
                              "which ppnets does not have; remove it")
        self.act = act
        self.sum_across_class_dim = sum_across_class_dim
        self.eps = 1e-12

    def pair_loss(self, learner, target, labels):
        act = F.softmax if self.act == "softmax" else F.sigmoid
        p, q = act(learner), act(target)
        log_p, log_q = paddle.log(p + self.eps), paddle.log(q + self.eps)
        per_sample = ((q * (log_q - log_p) + p * (log_p - log_q)) / 2).sum(axis=-1)
        scale = learner.shape[-1] if self.sum_across_class_dim else 1
        return per_sample.mean() * scale
