"""Single-label losses: cross-entropy (label smoothing, class weights) and focal loss."""
from __future__ import annotations

from typing import List, Optional, Union

import paddle
import paddle.nn.functional as F

from ..arch.distillation import single_output as model_logits
from ..errors import ConfigError
from .base import LOSSES, ClassWeighted, Outputs, check_epsilon, is_soft, soft_targets

__all__ = ["CELoss", "FocalLoss", "single_output"]


def single_output(outputs: Outputs, where: str) -> paddle.Tensor:
    """The logits of a single model; a DistillationModel's outputs need a Distillation* loss."""
    return model_logits(outputs, where, "DistillationGTCELoss with model_names to train a model on the labels")


@LOSSES.register
class CELoss(ClassWeighted):
    """Cross-entropy: ``-Σ_c w_c · q_c · log p_c``, averaged over the batch.

    ``q`` is the target distribution: the one-hot label, or the soft target of Mixup/CutMix as
    given (PaddleClas passes soft targets through another softmax, which is wrong), mixed with
    the uniform distribution by label smoothing ``epsilon``: ``(1 - ε)·q + ε / C``. ``p`` is the
    softmax of the logits. ``w`` is ``class_weight`` (default: all 1): a list with one weight per
    class, or ``auto`` for ``N / (C · n_c)`` from the training set's class counts. The batch mean
    divides by the number of samples, not by the sum of their weights, so with ``auto`` the loss
    keeps the unweighted loss's scale over an epoch.
    """

    def __init__(self, epsilon: Optional[float] = None, weight: float = 1.0,
                 class_weight: Union[str, List[float], None] = None) -> None:
        super().__init__(class_weight, type(self).__name__)
        self.epsilon = check_epsilon(epsilon, self.where)
        self.weight = weight

    def forward(self, outputs: Outputs, target: paddle.Tensor) -> paddle.Tensor:
        logits = single_output(outputs, self.where)
        return self.cross_entropy(logits, target)

    def cross_entropy(self, logits: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        """The loss of ``logits`` against ``target`` (ids or distributions)."""
        weights = self.weight_tensor(logits.shape[-1], logits.dtype)
        if not self.epsilon and weights is None and not is_soft(logits, target):
            return F.cross_entropy(logits, target.reshape([-1]).astype("int64"))
        terms = soft_targets(logits, target, self.epsilon) * F.log_softmax(logits, axis=-1)
        if weights is not None:
            terms = terms * weights
        return -terms.sum(axis=-1).mean()


@LOSSES.register
class FocalLoss(ClassWeighted):
    """Focal loss (Lin et al., 2017) over the softmax: ``-Σ_c w_c · q_c · (1 - p_c)^γ · log p_c``,
    averaged over the batch.

    ``gamma`` = 0 is :class:`CELoss`; larger values down-weight the samples the model already
    classifies well, which leaves more of the gradient to rare and hard classes. ``q`` (with
    ``epsilon``) and ``class_weight`` (the α of the paper, per class) are as in :class:`CELoss`.
    """

    def __init__(self, gamma: float = 2.0, epsilon: Optional[float] = None, weight: float = 1.0,
                 class_weight: Union[str, List[float], None] = None) -> None:
        super().__init__(class_weight, "FocalLoss")
        if gamma < 0:
            raise ConfigError(f"FocalLoss.gamma: expected a number >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.epsilon = check_epsilon(epsilon, "FocalLoss")
        self.weight = weight

    def forward(self, outputs: Outputs, target: paddle.Tensor) -> paddle.Tensor:
        logits = single_output(outputs, "FocalLoss")
        log_p = F.log_softmax(logits, axis=-1)
        focus = (1.0 - paddle.exp(log_p)).clip(min=0.0) ** self.gamma
        terms = soft_targets(logits, target, self.epsilon) * focus * log_p
        weights = self.weight_tensor(logits.shape[-1], logits.dtype)
        if weights is not None:
            terms = terms * weights
        return -terms.sum(axis=-1).mean()
