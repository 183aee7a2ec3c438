"""ppnets: config-driven PaddlePaddle image classification for the classic lightweight CNNs."""
from .arch import build_model, list_models, model_info

__version__ = "0.1.0"
__all__ = ["build_model", "list_models", "model_info", "__version__"]
