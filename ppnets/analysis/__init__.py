"""Architecture analysis: parameter/MAC counting, per-layer and per-block summaries, diagrams,
cost calculators, the model-zoo comparison and training-log plots.

- :mod:`ppnets.arch.profile`: :func:`profile_model` (per-layer params and MACs), :func:`count_params`;
- :mod:`.blocks` / :mod:`.summary`: :func:`summarize` — stem / stages (the model's ``feature_info``) /
  blocks (their ``block_paths()``) / head roll-up;
- :mod:`.diagram`: block-level Graphviz diagrams, the VisualDL graph;
- :mod:`.costs`: :func:`conv_cost` — standard vs depthwise-separable convolution;
- :mod:`.scaling`: :func:`compound_scaling` — EfficientNet's φ;
- :mod:`.zoo`: size / latency / accuracy comparison (``tools/compare_models.py``);
- :mod:`.logplot`: training-log curves (``tools/plot_log.py``).
"""
from .costs import ConvCost, conv_cost
from ..arch.profile import LayerStat, ModelProfile, count_params, profile_model
from .scaling import compound_scaling
from .summary import ModelSummary, summarize

__all__ = ["LayerStat", "ModelProfile", "count_params", "profile_model", "ModelSummary", "summarize",
           "ConvCost", "conv_cost", "compound_scaling"]
