"""Resuming from a checkpoint written by PaddleClas's trainer (``epoch_N`` / ``latest``).

PaddleClas saves ``<prefix>.pdparams`` (the model's ``state_dict``, with Paddle's table of
parameter names), ``<prefix>.pdopt`` (a list with one optimizer ``state_dict`` per optimizer,
keyed by Paddle's generated parameter names such as ``conv2d_0.w_0_velocity_0``) and
``<prefix>.pdstates`` (``{"metric": …, "epoch": N}``); with EMA, ``.pdparams`` holds the EMA
weights and ``.pdema`` the raw ones. :func:`is_paddleclas_states` recognises such a states file
(it has no ppnets digests); :func:`optimizer_state` maps the optimizer state onto ppnets's
structured keys through the name table, where the parameters correspond, and otherwise refuses
saying what differs. The LR schedule's position is set from the epoch (PaddleClas's
``LR_Scheduler`` object state describes its own scheduler classes, not ppnets's).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ..arch import model_info
from ..errors import CheckpointError
from .optimizer_state import rename_opt_keys
from .serialization import parameter_names

__all__ = ["is_paddleclas_states", "optimizer_state", "structured_key_map"]


def is_paddleclas_states(states: Dict[str, Any]) -> bool:
    """A ``.pdstates`` written by PaddleClas: an epoch and its metric, none of ppnets's fields."""
    return "digests" not in states and "global_step" not in states


def structured_key_map(keys: Any, arch: Optional[str]) -> Dict[str, str]:
    """PaddleClas's structured key → ppnets's, for the families ppnets lays out differently (EfficientNet)."""
    keys = list(keys)
    if arch is None or model_info(arch).from_paddleclas is None:
        return {k: k for k in keys}
    converted = model_info(arch).from_paddleclas({k: k for k in keys})  # values pass through untouched
    return {old: new for new, old in converted.items()}


def optimizer_state(pdopt: Any, pdparams: bytes, where: str, arch: Optional[str]) -> Dict[str, Any]:
    """PaddleClas's ``.pdopt`` content as ppnets's portable optimizer state (``<key>@<accumulator>``)."""
    if isinstance(pdopt, list):
        if len(pdopt) != 1:
            raise CheckpointError(f"{where} holds {len(pdopt)} optimizers' states (PaddleClas's per-scope "
                                  "optimizers); ppnets trains with one optimizer")
        pdopt = pdopt[0]
    if not isinstance(pdopt, dict):
        raise CheckpointError(f"{where} does not hold an optimizer state (a mapping)")
    names = parameter_names(pdparams, where.replace(".pdopt", ".pdparams"), "weights file")
    if not names:
        raise CheckpointError(f"{where}: the weights file has no parameter name table "
                              "(StructuredToParameterName@@), so its optimizer state cannot be matched to the "
                              "model's parameters; fine-tune with Global.pretrained_model instead")
    keys = structured_key_map(names, arch)
    mapping = {param: f"{keys[key]}@" for key, param in names.items()}
    state = {k: v for k, v in pdopt.items() if k != "LR_Scheduler"}
    return rename_opt_keys(state, mapping)
