"""Architecture analysis: parameter/MAC counting and per-layer profiles."""
from .counter import LayerStat, ModelProfile, count_params, profile_model

__all__ = ["LayerStat", "ModelProfile", "count_params", "profile_model"]
