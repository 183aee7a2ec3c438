"""Models with published weights: ``ppnets.build_model(name, pretrained=…)``, ``ppnets.list_models(…,
pretrained=True)``, the table of who publishes what (``tools/weights.py list``), the timm ↔ ppnets
table of docs/pretrained.md, and writing a converted weights file once (``tools/convert_weights.py``).

>>> model = build_model("MobileNetV3_large_x1_0", pretrained=True, num_classes=10)   # doctest: +SKIP
>>> list_models("*lcnet*", pretrained=True)                                           # doctest: +SKIP
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import paddle

from ..arch import registry
from ..arch.convert import convert_paddleclas_state_dict, is_paddleclas_layout
from ..arch.timm import convert_timm_state_dict, is_timm_layout
from ..errors import CheckpointError, ConfigError
from ..utils.files import atomic_write
from ..utils.tables import markdown_table
from .hub import cached_hub_file, paddleclas_cache, timm_hub_ids, timm_target
from .serialization import encode
from .sources import SSLD_TOP1, TIMM_HUB, paddleclas_top1, paddleclas_url
from .weights import fetch_weights, load_pretrained

__all__ = ["build_model", "list_models", "default_source", "WeightSource", "weight_sources", "timm_table",
           "convert_weights_file"]

Pretrained = Union[bool, str, None]


def default_source(name: str) -> str:
    """What ``pretrained=True`` loads: PaddleClas's weights, else timm's default ones."""
    if paddleclas_url(name) is not None:
        return "paddleclas"
    if timm_hub_ids(name):
        return "timm"
    raise CheckpointError(f"no published weights of {name} are known (neither PaddleClas's nor timm's); "
                          "ppnets.list_models(pretrained=True) lists the models that have some")


def build_model(name: str, pretrained: Pretrained = False, num_classes: Optional[int] = None, *,
                pretrained_sha256: Optional[str] = None, mirror: Optional[str] = None, trust: bool = False,
                **kwargs: Any) -> paddle.nn.Layer:
    """Build the registered model ``name`` (:func:`ppnets.arch.build_model`) and load its weights.

    ``pretrained``: ``True`` (PaddleClas's ImageNet weights, or timm's for a model PaddleClas does not
    have), ``"paddleclas"``, ``"ssld"``, ``"timm"``, a timm hub id ``"timm/<model>.<tag>"``, a URL or
    a local file; downloaded once into a cache (:mod:`~ppnets.checkpoint.hub`). With another class
    count (``num_classes``/``class_num``) the backbone is loaded and the classifier starts afresh,
    as the logged notice says. ``pretrained_sha256`` pins the file's digest.
    """
    model = registry.build_model(name, num_classes=num_classes, **kwargs)
    if pretrained is True:
        pretrained = default_source(name)
    if pretrained:
        if not isinstance(pretrained, str):
            raise ConfigError(f"pretrained: expected True, a source, a hub id, a URL or a path, got {pretrained!r}")
        load_pretrained(model, pretrained, name, trust=trust, sha256=pretrained_sha256, mirror=mirror)
    return model


def list_models(pattern: Optional[str] = None, family: Optional[str] = None, pretrained: bool = False) -> List[str]:
    """:func:`ppnets.arch.list_models`; ``pretrained=True`` keeps the models with published weights."""
    names = registry.list_models(pattern, family)
    return [n for n in names if weight_sources(n, cached=False)] if pretrained else names


@dataclass(frozen=True)
class WeightSource:
    """One published weights file of a model: ``spec`` is what ``pretrained=`` / ``Global.pretrained_model``
    take, ``location`` its URL or hub id, ``cached`` the local file when it is already there."""

    model: str
    source: str
    spec: str
    location: str
    top1: Optional[float]
    image_size: Optional[int]
    cached: Optional[str] = None


def weight_sources(name: str, cached: bool = True) -> List[WeightSource]:
    """The published weights of model ``name``: PaddleClas's, its SSLD ones, timm's hub ids."""
    out = []
    size = registry.model_info(name).input_size
    for source in ("paddleclas", "ssld"):
        url = paddleclas_url(name, ssld=source == "ssld")
        if url is None or (source == "ssld" and name not in SSLD_TOP1):
            continue
        path = os.path.join(paddleclas_cache(), os.path.basename(url))
        out.append(WeightSource(name, source, source, url, paddleclas_top1(name, source == "ssld"), size,
                                path if cached and os.path.isfile(path) else None))
    for hub_id, image_size, top1 in timm_hub_ids(name):
        path = cached_hub_file(hub_id) if cached else None
        out.append(WeightSource(name, "timm", hub_id, hub_id, top1, image_size, path))
    return out


#: the columns of :func:`timm_table`
TIMM_TABLE_HEAD = ("timm model", "ppnets model", "exact", "weights on timm's hub (ImageNet top-1 at size)")


def timm_table() -> str:
    """The Markdown table of every timm model registered as a ppnets model (:data:`TIMM_NAMES`), with
    its published hub weights; docs/pretrained.md holds it (``tools/weights.py docs --update``)."""
    rows = []
    for timm, name in sorted(registry.TIMM_NAMES.items()):
        hub = "; ".join(f"`{tag}` {top1:.2f} @ {size}" for tag, size, top1 in TIMM_HUB.get(timm, ())) or "none"
        rows.append([f"`{timm}`", f"`{name}`", "yes", hub])
    if not rows:
        rows.append(["(none registered yet)", "", "", ""])
    return markdown_table(TIMM_TABLE_HEAD, rows, left=4)


def convert_weights_file(model: str, src: str, dst: str, source: str = "auto", class_num: Optional[int] = None,
                         trust: bool = False, mirror: Optional[str] = None) -> Tuple[int, str]:
    """Read ``src`` (a file or any weights setting: ``paddleclas``, ``timm``, a hub id, a URL), convert
    it to ``model``'s layout from ``source`` (``paddleclas``, ``timm`` or ``auto``: by its keys), check
    that it fits the model exactly, write ``dst`` (``.pdparams`` or ``.safetensors``). Returns
    ``(tensors, what was done)``."""
    registry.model_info(model)  # unknown name → ConfigError listing the valid ones
    if source not in ("auto", "paddleclas", "timm"):
        raise ConfigError(f"--from: expected auto, paddleclas or timm, got {source!r}")
    state_dict, origin = fetch_weights(src, model, trust, mirror)
    timm = is_timm_layout(state_dict)
    if source == "timm" or (source == "auto" and timm):
        if not timm:
            raise CheckpointError(f"{origin.path}: not in timm's layout (no BatchNorm running_mean/running_var)")
        timm_target(origin, model)
        converted, how = convert_timm_state_dict(model, state_dict, class_num), "converted from timm's layout"
    else:
        from_pc = is_paddleclas_layout(model, state_dict)
        converted = convert_paddleclas_state_dict(model, state_dict, class_num=class_num or 1000)
        if registry.model_info(model).from_paddleclas is None:
            how = "checked (PaddleClas's layout is ppnets's for this model)"
        else:
            how = "converted from PaddleClas's layout" if from_pc else "already in ppnets's layout, checked"
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    atomic_write(dst, encode({k: paddle.to_tensor(v) for k, v in converted.items()}, dst))
    return len(converted), how
