"""Model architectures. Importing this package registers every model family."""
from . import (  # noqa: F401  (each module registers its models)
    efficientnet,
    ghostnet,
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    pp_lcnet,
    shufflenet_v1,
    shufflenet_v2,
    squeezenet,
)
from .registry import ModelInfo, build_model, list_models, model_info, register_model

__all__ = ["build_model", "list_models", "model_info", "register_model", "ModelInfo"]
