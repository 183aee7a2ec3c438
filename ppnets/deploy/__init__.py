"""Deployment: ONNX conversion, inference runtimes, INT8 quantization, PaddleClas's deploy format, serving.

- :mod:`.runtimes` — paddle.inference, ONNX Runtime and OpenVINO behind
  :class:`ppnets.engine.export.Predictor`, and the ``backend="auto"`` rule;
- :mod:`.onnx_export` — paddle2onnx conversion and its parity check;
- :mod:`.quantize` — static INT8 post-training quantization with ONNX Runtime;
- :mod:`.paddleclas` — PaddleClas deploy's ``inference_cls.yaml`` and label map;
- :mod:`.server` — the HTTP JSON endpoint of ``tools/serve.py``;
- :mod:`.bench` — every runtime timed in its own process.
"""
