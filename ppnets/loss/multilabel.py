"""Multi-label losses (``Global.use_multilabel``): one sigmoid per class, targets multi-hot (N, C)."""
from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn.functional as F

from ..errors import ConfigError
from .base import LOSSES, Outputs, check_epsilon
from .classification import single_output

__all__ = ["MultiLabelLoss", "MultiLabelAsymmetricLoss"]


def multi_hot(logits: paddle.Tensor, target: paddle.Tensor, where: str) -> paddle.Tensor:
    """``target`` as float (N, C) multi-hot labels matching ``logits``."""
    if target.ndim != 2 or target.shape[-1] != logits.shape[-1]:
        raise ConfigError(f"{where}: expected multi-hot targets (N, {logits.shape[-1]}) from a multi-label "
                          f"dataset (MultiLabelDataset, Global.use_multilabel: true), got shape {list(target.shape)}")
    return target.astype(logits.dtype)


@LOSSES.register
class MultiLabelLoss(paddle.nn.Layer):
    """Binary cross-entropy on each class's logit (PaddleClas's ``MultiLabelLoss``).

    The element losses are averaged over samples and classes, or with ``size_sum`` summed over the
    classes and averaged over the samples. ``epsilon`` smooths the targets as PaddleClas does:
    ``(1 - ε)·y + ε / C``.
    """

    multilabel = True

    def __init__(self, epsilon: Optional[float] = None, size_sum: bool = False, weight_ratio: bool = False,
                 weight: float = 1.0) -> None:
        super().__init__()
        if weight_ratio:
            raise ConfigError("MultiLabelLoss.weight_ratio: true is PaddleClas's attribute-recognition weighting "
                              "by label ratios, which ppnets does not have; remove it (or set it to false)")
        self.epsilon = check_epsilon(epsilon, "MultiLabelLoss")
        self.size_sum = size_sum
        self.weight = weight

    def forward(self, outputs: Outputs, target: paddle.Tensor) -> paddle.Tensor:
        logits = single_output(outputs, "MultiLabelLoss")
        y = multi_hot(logits, target, "MultiLabelLoss")
        if self.epsilon:
            y = y * (1.0 - self.epsilon) + self.epsilon / logits.shape[-1]
        cost = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        return cost.sum(axis=1).mean() if self.size_sum else cost.mean()


@LOSSES.register
class MultiLabelAsymmetricLoss(paddle.nn.Layer):
    """Asymmetric loss (Ben-Baruch et al., 2020) for multi-label training.

    With ``p`` the sigmoid of a class's logit and ``p_m = max(p - clip, 0)`` the shifted
    probability of a negative:

    - positive: ``-(1 - p)^γ+ · log p``
    - negative: ``-p_m^γ- · log(1 - p_m)``

    A large ``gamma_neg`` and the ``clip`` margin discount the many easy negatives. With
    ``disable_focal_loss_grad`` the focusing factors are constants in the backward pass (as in the
    paper's code). ``reduction``: ``sum`` over the batch (PaddleClas's default) or ``mean``.
    """

    multilabel = True

    def __init__(self, gamma_pos: float = 1.0, gamma_neg: float = 4.0, clip: Optional[float] = 0.05,
                 epsilon: float = 1e-8, disable_focal_loss_grad: bool = True, reduction: str = "sum",
                 weight: float = 1.0) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ConfigError(f"MultiLabelAsymmetricLoss.reduction: expected sum or mean, got {reduction!r}")
        if gamma_pos < 0 or gamma_neg < 0:
            raise ConfigError(f"MultiLabelAsymmetricLoss: gamma_pos and gamma_neg must be >= 0, got "
                              f"{gamma_pos} and {gamma_neg}")
        if clip is not None and not 0.0 <= clip < 1.0:
            raise ConfigError(f"MultiLabelAsymmetricLoss.clip: expected a value in [0, 1), got {clip}")
        self.gamma_pos, self.gamma_neg = float(gamma_pos), float(gamma_neg)
        self.clip = float(clip or 0.0)
        self.epsilon = float(epsilon)
        self.disable_focal_loss_grad = disable_focal_loss_grad
        self.reduction = reduction
        self.weight = weight

    def forward(self, outputs: Outputs, target: paddle.Tensor) -> paddle.Tensor:
        logits = single_output(outputs, "MultiLabelAsymmetricLoss")
        y = multi_hot(logits, target, "MultiLabelAsymmetricLoss")
        p = F.sigmoid(logits)
        p_neg = (p - self.clip).clip(min=0.0) if self.clip > 0 else p
        pt = y * p + (1.0 - y) * (1.0 - p_neg)  # the probability of the correct outcome
        gamma = self.gamma_pos * y + self.gamma_neg * (1.0 - y)
        focus = paddle.pow(1.0 - pt, gamma)
        if self.disable_focal_loss_grad:
            focus = focus.detach()
        loss = -paddle.log(pt.clip(min=self.epsilon)) * focus
        return loss.sum() if self.reduction == "sum" else loss.mean()
