"""Model architectures. Importing this package imports every module in it; each family file
registers its models on import, so a new family is one new file here (see docs/adding_a_family.md).
Which modules are families is derived from the registry: those whose classes were registered."""
import importlib
import pkgutil

from .base import ClassificationModel, FamilyHead
from .registry import MODELS, ModelInfo, build_model, list_models, model_info, register_model
from .reparam import reparameterize

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")

#: modules of this package that define registered models, and the others (shared pieces)
FAMILY_MODULES = tuple(sorted({model_info(n).cls.__module__.rsplit(".", 1)[-1] for n in MODELS.names()}))
SHARED_MODULES = frozenset(m.name for m in pkgutil.iter_modules(__path__)) - set(FAMILY_MODULES)

__all__ = ["build_model", "list_models", "model_info", "register_model", "reparameterize", "ModelInfo",
           "ClassificationModel", "FamilyHead", "FAMILY_MODULES", "SHARED_MODULES"]
