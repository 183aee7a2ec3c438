"""Checkpoints and weights: reading files safely, the checkpoint set, PaddleClas's checkpoints, and
building a run's model with its weights.

- :mod:`.serialization` — the restricted unpickler and safetensors (no code runs from a file);
- :mod:`.checks` — a file's contents checked against the model before use;
- :mod:`.sets` — ``save_checkpoint`` / ``load_checkpoint``: the ``.pdparams/.pdopt/.pdstates`` set,
  replaced as a unit;
- :mod:`.weights` — ``Global.pretrained_model``: ``load_pretrained``, ``read_weights``;
- :mod:`.hub` — published weights: downloads (PaddleClas's URLs, timm's hub), caches, digests;
  :mod:`.sources` — where they are (data); :mod:`.pretrained` — ``ppnets.build_model(pretrained=…)``,
  ``ppnets.list_models(pretrained=True)``, the weights table, file conversion;
- :mod:`.paddleclas` — PaddleClas's ``epoch_N`` checkpoints;
- :mod:`.models` — the model a run builds (a DistillationModel's sub-models get their weights here).
"""
from .models import build_run_model, load_model_for_inference, load_run_weights
from .optimizer_state import portable_optimizer_state, restore_optimizer_state
from .sets import WEIGHTS_FORMATS, load_checkpoint, save_checkpoint
from .weights import checkpoint_prefix, load_pretrained, read_weights, trained_class_names, weights_path

__all__ = ["save_checkpoint", "load_checkpoint", "load_pretrained", "read_weights", "weights_path",
           "checkpoint_prefix", "trained_class_names", "portable_optimizer_state", "restore_optimizer_state",
           "build_run_model", "load_run_weights", "load_model_for_inference", "WEIGHTS_FORMATS"]
