"""Model architectures. Importing this package registers every model family."""
from . import mobilenet_v2  # noqa: F401  (registers models)
from .registry import ModelInfo, build_model, list_models, model_info, register_model

__all__ = ["build_model", "list_models", "model_info", "register_model", "ModelInfo"]
