"""ppnets: config-driven PaddlePaddle image classification for the classic lightweight CNNs."""
import warnings

# paddle warns about a missing C++ compiler cache on every import; ppnets compiles nothing
warnings.filterwarnings("ignore", message="No ccache found")
# BatchNorm2D warns on every training forward that it tracks running statistics (it always has)
warnings.filterwarnings("ignore", message="When training, we now always track global mean and variance")

from .arch import build_model, list_models, model_info  # noqa: E402

__version__ = "0.1.0"
__all__ = ["build_model", "list_models", "model_info", "__version__"]
