"""ppnets: config-driven PaddlePaddle image classification for the lightweight CNNs."""
from .utils.quiet import quiet_paddle

quiet_paddle()  # Paddle's harmless warnings and C++ notes stay off the console (not with --debug)

from .arch import build_model, list_models, model_info, reparameterize  # noqa: E402

__version__ = "0.2.0"
__all__ = ["build_model", "list_models", "model_info", "reparameterize", "__version__"]
