"""ppnets: config-driven PaddlePaddle image classification for the lightweight CNNs."""
import warnings

with warnings.catch_warnings():  # importing paddle warns about a C++ compiler cache ppnets never uses
    warnings.filterwarnings("ignore", message="No ccache found")
    from .arch import build_model, list_models, model_info, reparameterize

__version__ = "0.2.0"
__all__ = ["build_model", "list_models", "model_info", "reparameterize", "__version__"]
