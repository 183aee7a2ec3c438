"""Exponential moving average of model weights (PaddleClas's/timm's ``ModelEMA``)."""
from __future__ import annotations

from typing import Dict

import paddle


class ModelEMA:
    """Keeps ``ema = decay · ema + (1 − decay) · weights`` after every optimizer step.

    Every floating-point entry of the state_dict is averaged, BatchNorm running
    statistics included (as timm does). The averaged weights live in a second model
    built like the first (``self.model``), so they can be evaluated and exported as is;
    its state_dict is what checkpoints save as ``.pdema`` and restore on resume.
    """

    def __init__(self, model: paddle.nn.Layer, shadow: paddle.nn.Layer, decay: float = 0.9999) -> None:
        if not 0.0 < decay < 1.0:
            from ..errors import ConfigError
            raise ConfigError(f"EMA.decay: expected a value in (0, 1), got {decay}")
        self.decay = decay
        self.model = shadow
        self.model.set_state_dict(model.state_dict())
        self.model.eval()
        for p in self.model.parameters():
            p.stop_gradient = True
        self.updates = 0

    @paddle.no_grad()
    def update(self, model: paddle.nn.Layer) -> None:
        self.updates += 1
        src = model.state_dict()
        for key, value in self.model.state_dict().items():
            if paddle.is_floating_point(value):
                value.set_value(value * self.decay + src[key].detach() * (1.0 - self.decay))

    def state_dict(self) -> Dict[str, object]:
        return {"weights": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def set_state_dict(self, state: Dict[str, object]) -> None:
        self.model.set_state_dict(state["weights"])
        self.updates = int(state.get("updates", 0))
