"""Automatic mixed precision through ``paddle.amp``: fp16 on GPU, bf16 where the CPU supports it."""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Optional

import paddle

from ..errors import ConfigError


class AmpSettings:
    """The ``AMP`` config section, resolved for the device.

    ``dtype: auto`` means float16 on GPU and bfloat16 on CPU. A CPU without bf16 kernels
    (no AVX512-BF16/AMX) trains in float32 and says so (``requested_dtype_unavailable``).
    Loss scaling (``paddle.amp.GradScaler``) is used for float16 only; bf16 has fp32's range.
    """

    def __init__(self, cfg: Dict[str, Any], device: str) -> None:
        self.level = cfg["level"]
        dtype = cfg["dtype"]
        if dtype == "auto":
            dtype = "float16" if device == "gpu" else "bfloat16"
        if device == "cpu" and dtype == "float16" and cfg["enabled"]:
            raise ConfigError("AMP.dtype: float16 needs a GPU; use bfloat16 (or auto) on the CPU")
        self.dtype = dtype
        self.cfg = cfg
        self.requested_dtype_unavailable: Optional[str] = None
        supported = paddle.amp.is_bfloat16_supported() if dtype == "bfloat16" else paddle.amp.is_float16_supported()
        self.enabled = bool(cfg["enabled"])
        if self.enabled and not supported:
            self.requested_dtype_unavailable = (f"AMP: this {device.upper()} has no {dtype} support; "
                                                "training in float32")
            self.enabled = False

    def autocast(self, evaluating: bool = False):
        """The forward-pass context: ``paddle.amp.auto_cast`` when enabled (for evaluation only with
        ``AMP.eval``), else a no-op."""
        if not self.enabled or (evaluating and not self.cfg.get("eval", True)):
            return contextlib.nullcontext()
        return paddle.amp.auto_cast(enable=True, level=self.level, dtype=self.dtype,
                                    use_promote=self.cfg.get("use_promote", True))

    def make_scaler(self) -> Optional[paddle.amp.GradScaler]:
        """A dynamic loss scaler for float16 training, else None."""
        if not (self.enabled and self.dtype == "float16"):
            return None
        return paddle.amp.GradScaler(init_loss_scaling=self.cfg["scale_loss"],
                                     use_dynamic_loss_scaling=self.cfg["use_dynamic_loss_scaling"])

