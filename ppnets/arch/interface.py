"""The constructor keys every registered model accepts besides its family's own
(``features_only``, ``out_indices``, ``freeze_stages``), added to each family's ``__init__``
signature by :class:`~ppnets.arch.base.ClassificationModel`."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import ConfigError

__all__ = ["INTERFACE_KWARGS", "FeatureInfo", "stages_of", "with_interface_kwargs", "check_class_num"]

#: Constructor keys every :class:`ClassificationModel` subclass accepts besides its own:
#: name → (type, default). They are applied after the family's ``__init__`` has run.
INTERFACE_KWARGS: Dict[str, Tuple[Any, Any]] = {
    "features_only": (bool, False),
    "out_indices": (Optional[List[int]], None),
    "freeze_stages": (int, -1),
}


def with_interface_kwargs(init):
    """Wrap a family's ``__init__`` so that it also takes :data:`INTERFACE_KWARGS` (and says so in its
    signature, which ``check_kwargs`` and the config schema read), then finishes the model."""

    sig = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self, *args: Any, features_only: bool = False, out_indices: Optional[Sequence[int]] = None,
                 freeze_stages: int = -1, **kwargs: Any) -> None:
        if "class_num" in sig.parameters:  # fail before building anything
            bound = sig.bind_partial(self, *args, **kwargs).arguments
            check_class_num(type(self).__name__, bound.get("class_num", sig.parameters["class_num"].default))
        init(self, *args, **kwargs)
        if type(self).__init__ is __init__:  # the outermost constructor finishes the model
            self._finish_model(features_only, out_indices, freeze_stages)

    params = list(sig.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=tp)
             for name, (tp, default) in INTERFACE_KWARGS.items() if name not in sig.parameters]
    __init__.__signature__ = sig.replace(parameters=params[:at] + extra + params[at:])
    __init__.__annotations__ = {**getattr(init, "__annotations__", {}),
                                **{name: tp for name, (tp, _) in INTERFACE_KWARGS.items()}}
    __init__._ppnets_interface = True
    return __init__


def check_class_num(owner: str, class_num: Any) -> int:
    if isinstance(class_num, bool) or not isinstance(class_num, int) or class_num < 0:
        raise ConfigError(f"{owner}: class_num must be an integer >= 0 (0 = no classifier: the model returns "
                          f"pooled features), got {class_num!r}")
    return class_num


class FeatureInfo(list):
    """A model's ``feature_info``: one dict per stage — or, for a ``features_only`` model, one per
    output map, in the order ``forward`` returns them — ``{"module", "num_chs", "reduction",
    "modules", "index"}`` (``index``: the stage's position among all stages). A list, with timm's
    accessors: ``channels()``, ``reduction()``, ``module_name()`` give the value of every entry, or
    of entry ``idx`` (an int or a list of ints)."""

    def get(self, key: str, idx: Union[None, int, Sequence[int]] = None) -> Any:
        if idx is None:
            return [d[key] for d in self]
        if isinstance(idx, (list, tuple)):
            return [self[i][key] for i in idx]
        return self[idx][key]

    def channels(self, idx: Union[None, int, Sequence[int]] = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: Union[None, int, Sequence[int]] = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: Union[None, int, Sequence[int]] = None) -> Any:
        return self.get("module", idx)


def stages_of(model: Any) -> Optional[List[Dict[str, Any]]]:
    """Every stage a model runs (``stage_info``; a ``features_only`` model's ``feature_info`` lists only
    its outputs), or the ``feature_info`` of a model that has no ``stage_info``; None if neither."""
    return getattr(model, "stage_info", None) or getattr(model, "feature_info", None)
