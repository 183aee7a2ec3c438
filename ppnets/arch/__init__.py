"""Model architectures. Importing this package registers every model family: each module of the
package other than the shared ones below is a family file that registers its models on import,
so a new family is one new file here (see docs/adding_a_family.md)."""
import importlib
import pkgutil

from .base import ClassificationModel
from .registry import ModelInfo, build_model, list_models, model_info, register_model

#: modules of this package that are not model families
SHARED_MODULES = frozenset({"base", "blocks", "convert", "layers", "onednn", "registry"})

FAMILY_MODULES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)
                              if m.name not in SHARED_MODULES and not m.name.startswith("_")))
for _module in FAMILY_MODULES:
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["build_model", "list_models", "model_info", "register_model", "ModelInfo", "ClassificationModel",
           "FAMILY_MODULES"]
