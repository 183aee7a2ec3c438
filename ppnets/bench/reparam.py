"""Re-parameterized models on every runtime: the fused export against the unfused one, beside plain
models, in one run. Each (model, form) is exported once (random weights, softmax head, Paddle + ONNX);
then, per runtime and batch size, every export is timed in a benchmark worker of its own
(:class:`~ppnets.bench.workers.Worker`) through :func:`~ppnets.utils.timing.interleaved`, so a busy
spell of a shared machine falls on all models alike and the ratios between them hold."""
from __future__ import annotations

import os
import statistics
import tempfile
from typing import Dict, List, Sequence, Tuple

import paddle

from ..analysis.zoo import export_for_benchmark
from ..arch import build_model
from ..arch.profile import profile_model
from ..arch.reparam import has_fused_form
from ..deploy.runtimes import ONNX_FILE
from ..utils.timing import Progress, interleaved, no_progress
from .results import Result
from .workers import Worker

__all__ = ["REPARAM_MODELS", "bench_reparam"]

#: the default models: the re-parameterized families' small variants and two plain peers
REPARAM_MODELS = ("MobileOne_s0", "MobileOne_s1", "RepViT_m0_9", "PPLCNetV2_small", "MobileNetV2",
                  "MobileNetV3_large_x1_0")
#: the pause before each timed run (Intel OpenMP spins 200 ms after its work, see bench.runtimes)
_SETTLE_S = 0.3


def _exports(models: Sequence[str], size: int, work_dir: str) -> Dict[Tuple[str, str], Tuple[str, Dict[str, int]]]:
    """``{(model, form): (export dir, {"params", "macs"})}``; ``form`` is ``fused`` or ``unfused``
    (plain models: ``plain``, exported once)."""
    out = {}
    for name in models:
        paddle.seed(0)
        fusable = has_fused_form(build_model(name))
        for form in (("unfused", "fused") if fusable else ("plain",)):
            model = build_model(name)
            model.eval()
            if form == "fused":
                model.reparameterize()
            prof = profile_model(model, (size, size))
            folder = os.path.join(work_dir, f"reparam_{name}_{form}_{size}")
            if not os.path.isfile(os.path.join(folder, ONNX_FILE)):
                export_for_benchmark(model, folder, size, name, formats=("paddle", "onnx"), reparameterize=False)
            out[(name, form)] = (folder, {"params": prof.params, "macs": prof.macs})
    return out


def bench_reparam(models: Sequence[str], size: int, work_dir: str, batches: Sequence[int] = (1, 16),
                  backends: Sequence[str] = ("paddle", "onnxruntime", "openvino"), threads: int = 0,
                  rounds: int = 5, warmup: int = 2, images_per_call: int = 16,
                  progress: Progress = no_progress) -> List[Result]:
    """img/s and latency of every (model, form) on every runtime and batch; rows of section ``reparam``
    with the speed-up of the fused form over the unfused one, and each export's size."""
    threads = threads or os.cpu_count() or 1
    exports = _exports(models, size, work_dir)
    rows: List[Result] = []
    with tempfile.TemporaryDirectory(prefix="ppnets_reparam_") as logs:
        for backend in backends:
            for b in batches:
                calls = max(1, -(-images_per_call // b))
                workers: Dict[Tuple[str, str], Worker] = {}
                try:
                    for (name, form), (folder, _) in exports.items():
                        spec = {"model_dir": os.path.abspath(folder), "backend": backend, "precision": "fp32",
                                "threads": threads, "shape": [3, size, size], "batch": b, "calls": calls}
                        workers[(name, form)] = Worker("ppnets.bench.runtimes:predictor_runner", spec,
                                                       os.path.join(logs, f"{name}_{form}_{backend}_b{b}.log"))
                        workers[(name, form)].wait_ready()
                    times = interleaved(workers, rounds, warmup, progress, f"reparam {backend} b{b}")
                finally:
                    for worker in workers.values():
                        worker.close()
                medians = {key: statistics.median(ts) / calls for key, ts in times.items()}
                for (name, form), med in medians.items():
                    size_info = exports[(name, form)][1]
                    metrics = {"img_s": b / med, "latency_ms": med * 1000.0,
                               "params_m": size_info["params"] / 1e6, "macs_g": size_info["macs"] / 1e9}
                    if form == "fused":
                        metrics["fused_speedup"] = medians[(name, "unfused")] / med
                    rows.append(Result("reparam", f"{backend} fp32, {form}", name, size, b, metrics,
                                       {"backend": backend, "form": form, "threads": threads, "rounds": rounds}))
    return rows
