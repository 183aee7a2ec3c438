"""The model registry: ``build_model``, ``list_models``, ``model_info`` (timm's interface).

A family file registers each variant with :func:`register_model`, giving the class,
its fixed keyword arguments (e.g. ``scale=0.5``) and facts used by the analysis tools
(family, native input size, paper, year).
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

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
    #: timm's names of this exact model (e.g. ``("mobilenetv2_100",)``); their weights convert to it
    timm: Tuple[str, ...] = ()
    #: maps a timm state_dict (BatchNorm buffers already renamed ``_mean``/``_variance``, tensors in
    #: PyTorch orientation) to this model's keys; None when the keys are timm's
    from_timm: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None

    def build(self, **kwargs: Any) -> nn.Layer:
        check_kwargs(self.cls, kwargs, f"Arch ({self.name})")
        return self.cls(**{**self.defaults, **kwargs})


MODELS = Registry("model")
#: ``Arch`` keys that describe the weights a model starts from, not arguments of the model
WEIGHTS_KEYS = ("pretrained_sha256", "pretrained_mirror")
#: timm model name → the registered ppnets model it converts to
TIMM_NAMES: Dict[str, str] = {}


def register_model(name: str, cls: Type[nn.Layer], *, family: str, input_size: int = 224, paper: str = "",
                   year: int = 0, paddleclas: bool = True,
                   from_paddleclas: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
                   timm: Sequence[str] = (), from_timm: Optional[Callable[[Dict[str, Any]], Dict[str, Any]]] = None,
                   **defaults: Any) -> ModelInfo:
    """Register ``cls(**defaults)`` under ``name``.

    ``from_paddleclas`` converts a PaddleClas state_dict of this model to ppnets's keys,
    for families whose PaddleClas layout is not reproduced natively. ``timm`` lists timm's
    names of the same model (architecture and all), and ``from_timm`` maps timm's keys to
    ppnets's (None: they are the same) — see :mod:`ppnets.arch.timm`.
    """
    timm = (timm,) if isinstance(timm, str) else tuple(timm)
    for t in timm:
        if t in TIMM_NAMES:
            raise KeyError(f"timm model '{t}' is mapped twice ({TIMM_NAMES[t]} and {name})")
    info = ModelInfo(name, cls, defaults, family, input_size, paper, year, paddleclas, from_paddleclas,
                     timm, from_timm)
    MODELS.register(info, name=name)
    TIMM_NAMES.update({t: name for t in timm})
    return info


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of ``name`` (ConfigError listing valid names if unknown)."""
    return MODELS.get(name, "Arch.name")


def build_model(name: str, num_classes: Optional[int] = None, **kwargs: Any) -> nn.Layer:
    """Build the registered model ``name``; ``kwargs`` (e.g. ``class_num=10``) override its defaults.
    ``num_classes`` is timm's name for ``class_num``.

    Besides its family's arguments every model takes ``features_only``, ``out_indices`` and
    ``freeze_stages`` (:class:`~ppnets.arch.base.ClassificationModel`):

    >>> model = build_model("MobileNetV2_x0_5", class_num=10)
    >>> backbone = build_model("MobileNetV2_x0_5", features_only=True, out_indices=(1, 3, 6))
    >>> maps = backbone(paddle.zeros([1, 3, 224, 224]))   # 3 maps, strides 4, 16, 32
    """
    if not isinstance(name, str):
        raise ConfigError(f"Arch.name: expected a model name (str), got {short_repr(name)}")
    if num_classes is not None:
        if "class_num" in kwargs and kwargs["class_num"] != num_classes:
            raise ConfigError(f"{name}: num_classes={num_classes!r} and class_num={kwargs['class_num']!r} disagree "
                              "(num_classes is timm's name for class_num: give one)")
        kwargs["class_num"] = num_classes
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
