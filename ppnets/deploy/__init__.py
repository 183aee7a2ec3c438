"""Deployment: reading an exported folder and answering with it. Nothing here imports the training
engine or the exporter, so ``tools/predict.py`` and ``tools/serve.py`` load no training code.

- :mod:`.predictor` — :class:`Predictor`: an exported folder on a runtime;
- :mod:`.exported` — ``inference.yml`` and the integrity of the export folder (only listed files load);
- :mod:`.folders` — replacing an export folder as a unit (staging folder, atomic swap);
- :mod:`.runtimes` — paddle.inference, ONNX Runtime and OpenVINO, and the ``backend="auto"`` rule;
- :mod:`.inputs` / :mod:`.postprocess` — image files to batches; softmax, top-k, threshold;
- :mod:`.quantize` — static INT8 post-training quantization with ONNX Runtime;
- :mod:`.server` — the HTTP JSON endpoint of ``tools/serve.py``; :mod:`.batcher` its batching,
  :mod:`.limits` its limits, :mod:`.protocol` its connections, :mod:`.serving` running it.
"""
from .predictor import Predictor

__all__ = ["Predictor"]
