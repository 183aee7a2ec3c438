"""ppnets: config-driven PaddlePaddle image classification for the lightweight CNNs."""
from typing import Any, List, Optional, Union

from .utils.quiet import quiet_paddle

quiet_paddle()  # Paddle's harmless warnings and C++ notes stay off the console (not with --debug)

from .arch import model_info, reparameterize  # noqa: E402
from .arch import build_model as _build_architecture  # noqa: E402
from .arch import list_models as _list_registered  # noqa: E402

__version__ = "0.2.0"
__all__ = ["build_model", "list_models", "model_info", "reparameterize", "__version__"]


def build_model(name: str, pretrained: Union[bool, str, None] = False, num_classes: Optional[int] = None,
                **kwargs: Any):
    """Build the registered model ``name``; ``kwargs`` (e.g. ``class_num=10``, or timm's
    ``num_classes=10``) override its defaults. ``pretrained``: ``True`` (PaddleClas's ImageNet
    weights, or timm's), ``"paddleclas"``, ``"ssld"``, ``"timm"``, ``"timm/<model>.<tag>"``, a URL or
    a file — downloaded once into a cache (:func:`ppnets.checkpoint.pretrained.build_model`;
    ``pretrained_sha256=``, ``mirror=`` and ``trust=`` go there)."""
    if not pretrained and not {"pretrained_sha256", "mirror", "trust"} & set(kwargs):
        return _build_architecture(name, num_classes=num_classes, **kwargs)
    from .checkpoint.pretrained import build_model as build_with_weights
    return build_with_weights(name, pretrained, num_classes, **kwargs)


def list_models(pattern: Optional[str] = None, family: Optional[str] = None, pretrained: bool = False) -> List[str]:
    """Sorted names of registered models, filtered by a glob ``pattern`` (case-insensitive) or a
    ``family``; ``pretrained=True`` keeps those with published weights (PaddleClas's or timm's)."""
    if not pretrained:
        return _list_registered(pattern, family)
    from .checkpoint.pretrained import list_models as list_with_weights
    return list_with_weights(pattern, family, pretrained=True)
