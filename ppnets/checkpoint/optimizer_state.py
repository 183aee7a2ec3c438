"""The optimizer's state in a checkpoint, keyed by structured parameter names so that it does not
depend on the order in which a process built its layers."""
from __future__ import annotations

from typing import Any, Dict

import paddle

from ..errors import CheckpointError
from ..utils.quiet import quiet_paddle_warnings
from .checks import check_optimizer_state

__all__ = ["rename_opt_keys", "portable_optimizer_state", "restore_optimizer_state"]


def rename_opt_keys(state: Dict[str, Any], mapping: Dict[str, str]) -> Dict[str, Any]:
    """Rename optimizer-state keys whose prefix is a parameter name (longest match first)."""
    names = sorted(mapping, key=len, reverse=True)

    def rename(key: str) -> str:
        for n in names:
            if key == n or key.startswith(n + "_") or key.startswith(n + "@"):
                return mapping[n] + key[len(n):]
        return key

    out: Dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, dict) and key != "LR_Scheduler":
            value = {rename(k): v for k, v in value.items()}  # e.g. AMP master weights
        out[rename(key)] = value
    return out


def portable_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: paddle.nn.Layer) -> Dict[str, Any]:
    """The optimizer's state keyed by structured parameter names (``conv1._conv.weight@…``).

    Paddle keys accumulators by the parameters' generated names (``conv2d_36.w_0_velocity_0``),
    which depend on how many layers the process built before; structured names do not.
    """
    mapping = {p.name: f"{k}@" for k, p in model.named_parameters()}
    return rename_opt_keys(optimizer.state_dict(), mapping)


def restore_optimizer_state(optimizer: paddle.optimizer.Optimizer, model: paddle.nn.Layer,
                            state: Dict[str, Any], where: str = "optimizer state") -> None:
    """Inverse of :func:`portable_optimizer_state`; a state that does not fit ``model`` and
    ``optimizer`` is a CheckpointError naming ``where``, and nothing is set."""
    check_optimizer_state(state, model, where)
    mapping = {f"{k}@": p.name for k, p in model.named_parameters()}
    try:
        with quiet_paddle_warnings():  # "unused values in state_dict": the LR scheduler's own bookkeeping
            optimizer.set_state_dict(rename_opt_keys(state, mapping))
    except (AssertionError, RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{where} does not fit the configured optimizer and LR schedule ({first})") from None
