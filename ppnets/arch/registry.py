"""The model registry: ``build_model``, ``list_models``, ``model_info`` (timm's interface).

A family file registers each variant with :func:`register_model`, giving the class,
its fixed keyword arguments (e.g. ``scale=0.5``) and facts used by the analysis tools
(family, native input size, paper, year).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Type

import paddle.nn as nn

from ..errors import ConfigError, short_repr
from ..registry import Registry, check_kwargs


@dataclass(frozen=True)
class ModelInfo:
    """Facts about one registered model variant."""

    name: str
    cls: Type[nn.Layer]
    defaults: Dict[str, Any] = field(default_factory=dict)
    family: str = ""
    input_size: int = 224
    paper: str = ""
    year: int = 0
    paddleclas: bool = True  # PaddleClas ships this model (so its key manifest applies)
    #: maps a PaddleClas state_dict to this model's keys; None when the layouts are the same
    from_paddleclas: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None

    def build(self, **kwargs: Any) -> nn.Layer:
        check_kwargs(self.cls, kwargs, f"Arch ({self.name})")
        return self.cls(**{**self.defaults, **kwargs})


MODELS = Registry("model")


def register_model(name: str, cls: Type[nn.Layer], *, family: str, input_size: int = 224, paper: str = "",
                   year: int = 0, paddleclas: bool = True,
                   from_paddleclas: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
                   **defaults: Any) -> ModelInfo:
    """Register ``cls(**defaults)`` under ``name``.

    ``from_paddleclas`` converts a PaddleClas state_dict of this model to ppnets's keys,
    for families whose PaddleClas layout is not reproduced natively.
    """
    info = ModelInfo(name, cls, defaults, family, input_size, paper, year, paddleclas, from_paddleclas)
    MODELS.register(info, name=name)
    return info


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name`` (ConfigError listing valid names if unknown)."""
    return MODELS.get(name, "Arch.name")


def build_model(name: str, **kwargs: Any) -> nn.Layer:
    """Build the registered model ``name``; ``kwargs`` (e.g. ``class_num=10``) override its defaults.

    Besides its family's arguments every model takes ``features_only``, ``out_indices`` and
    ``freeze_stages`` (:class:`~ppnets.arch.base.ClassificationModel`):

    >>> model = build_model("MobileNetV2_x0_5", class_num=10)
    >>> backbone = build_model("MobileNetV2_x0_5", features_only=True, out_indices=(1, 3, 6))
    >>> maps = backbone(paddle.zeros([1, 3, 224, 224]))   # 3 maps, strides 4, 16, 32
    """
    if not isinstance(name, str):
        raise ConfigError(f"Arch.name: expected a model name (str), got {short_repr(name)}")
    return model_info(name).build(**kwargs)


def list_models(pattern: Optional[str] = None, family: Optional[str] = None) -> List[str]:
    """Sorted names of registered models, optionally filtered by a glob ``pattern`` (case-insensitive,
    as timm's: ``"*mobilenet*"`` matches ``MobileNetV2``) or a ``family``."""
    names = MODELS.names()
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n.lower(), pattern.lower())]
    if family:
        names = [n for n in names if MODELS.get(n).family == family]
    return names
