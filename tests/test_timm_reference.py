"""timm's weights give timm's logits in ppnets's models, for every timm model ppnets maps.

For each timm reference (``tests/reference/timm/``: timm's key manifest and its eval-mode logits on
deterministic stand-in weights), the weights are regenerated without PyTorch, converted by
:func:`ppnets.arch.timm.convert_timm_state_dict` and loaded strictly; the model's logits must equal
timm's within ``1e-4 * (1 + max |logits|)``. Families that fuse are checked again after
``reparameterize()`` against timm's ``logits_fused``.
"""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.arch.registry import TIMM_NAMES
from ppnets.arch.timm import convert_timm_state_dict

from helpers.reference import timm_reference, timm_reference_names, timm_tolerance

MAPPED = [n for n in timm_reference_names() if n in TIMM_NAMES]


def _logits(model, x: np.ndarray) -> np.ndarray:
    with paddle.no_grad():
        return model(paddle.to_tensor(x)).numpy()


@pytest.mark.parametrize("timm_name", MAPPED)
def test_timm_weights_give_timm_logits(timm_name):
    sd, x, logits, fused = timm_reference(timm_name)
    name = TIMM_NAMES[timm_name]
    with paddle.LazyGuard():  # no random initialisation: every tensor comes from the file
        model = ppnets.build_model(name, class_num=logits.shape[1])
    missing, unexpected = model.set_state_dict(convert_timm_state_dict(timm_name, sd))
    assert not missing and not unexpected
    model.eval()
    tol = timm_tolerance(logits)
    err = np.abs(_logits(model, x) - logits).max()
    assert err <= tol, f"{timm_name} → {name}: max |Δlogit| {err:.3g} > {tol:.3g}"
    if fused is not None:
        model.reparameterize()
        err = np.abs(_logits(model, x) - fused).max()
        assert err <= timm_tolerance(fused), f"{timm_name} fused: max |Δlogit| {err:.3g}"
