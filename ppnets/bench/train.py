"""Training throughput: the ppnets engine loop against Paddle's own kernels, ``to_static``,
``paddle.Model.fit`` and PyTorch, each variant in its own process, rounds interleaved.

Variants (:data:`TRAIN_VARIANTS`):

- ``ppnets``: :meth:`Trainer.train_epoch <ppnets.engine.trainer.Trainer.train_epoch>` on
  in-memory batches, conv backend ``auto``;
- ``native``: the same with ``Global.conv_backend: paddle`` (Paddle's convolution kernels);
- ``to_static``: the same engine with ``Global.to_static: true``;
- ``model_fit``: ``paddle.Model.fit`` on ``paddle.vision.models.mobilenet_v2`` (MobileNetV2 models);
- ``torch`` / ``torch_channels_last``: torchvision's model of the architecture in PyTorch,
  NCHW or channels-last memory (:mod:`ppnets.bench.torch_ref`; only where torch is importable).

Every variant trains on the same random batches (written once to an ``.npz`` file) with the
config's Momentum optimizer, L2 decay, learning rate and cross-entropy (label smoothing included).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import paddle

from ..arch import backend
from ..engine import Trainer
from ..errors import ConfigError
from ..utils.runtime import retain_freed_memory
from ..utils.timing import Progress, interleaved, median, no_progress
from . import torch_ref
from .data import DEFAULT_CONFIG, engine_config, random_batches, tensor_batches
from .machine import quiet_logger, set_threads
from .results import Result
from .workers import Worker

__all__ = ["TRAIN_VARIANTS", "default_variants", "bench_train", "make_runner"]

TRAIN_VARIANTS: Dict[str, str] = {
    "ppnets": "ppnets (dynamic)",
    "native": "ppnets, Paddle's conv kernels (before)",
    "to_static": "ppnets (to_static)",
    "model_fit": "paddle.Model.fit, paddle.vision mobilenet_v2",
    "torch": "PyTorch + torchvision, NCHW",
    "torch_channels_last": "PyTorch + torchvision, channels_last",
}
_TORCH = ("torch", "torch_channels_last")


def default_variants() -> List[str]:
    """Every variant, the PyTorch ones only where torch and torchvision are importable."""
    return [v for v in TRAIN_VARIANTS if v not in _TORCH or torch_ref.available()]


def vision_mobilenet_v2_scale(model: str) -> Optional[float]:
    """The ``scale`` of ``paddle.vision.models.mobilenet_v2`` equal to a ppnets MobileNetV2 name."""
    tv = torch_ref.torchvision_model(model)
    return tv[1]["width_mult"] if tv and tv[0] == "mobilenet_v2" else None


def _recipe(config: Dict[str, Any]) -> Dict[str, float]:
    """The optimizer and loss settings of ``config`` that the other frameworks' variants copy."""
    opt = config["Optimizer"]
    reg = opt.get("regularizer") or {}
    ce = next((list(d.values())[0] or {} for d in config["Loss"]["Train"] if "CELoss" in d), {})
    lr = opt.get("lr")
    return {"lr": float(lr["learning_rate"]) if isinstance(lr, dict) else 0.01,
            "momentum": float(opt.get("momentum", 0.9)),
            "weight_decay": float(reg.get("coeff", 0.0)) if reg.get("name", "L2") == "L2" else 0.0,
            "label_smoothing": float(ce.get("epsilon") or 0.0)}


def _engine_runner(spec: Dict[str, Any]) -> Callable[[], None]:
    extra = {"Global.conv_backend": "paddle" if spec["variant"] == "native" else "auto",
             "Global.to_static": spec["variant"] == "to_static"}
    cfg = engine_config(spec["data_root"], os.path.join(spec["work_dir"], spec["variant"]), spec["model"],
                        spec["size"], spec["batch"], spec["class_num"], extra=extra, config_path=spec["config_path"])
    with quiet_logger():
        engine = Trainer(cfg)
    with np.load(spec["data"], allow_pickle=False) as data:
        batches = tensor_batches(data["images"], data["labels"], spec["batch"])

    def run() -> None:
        with quiet_logger():
            engine.train_epoch(1, batches)

    run.info = {"conv_backend": engine.conv_backend}
    return run


def _model_fit_runner(spec: Dict[str, Any]) -> Callable[[], None]:
    net = paddle.vision.models.mobilenet_v2(scale=vision_mobilenet_v2_scale(spec["model"]),
                                            num_classes=spec["class_num"])
    hapi = paddle.Model(net)
    reg = paddle.regularizer.L2Decay(spec["weight_decay"]) if spec["weight_decay"] else None
    hapi.prepare(paddle.optimizer.Momentum(learning_rate=spec["lr"], momentum=spec["momentum"],
                                           parameters=net.parameters(), weight_decay=reg),
                 paddle.nn.CrossEntropyLoss())  # (its label_smoothing does not take class indices)
    with np.load(spec["data"], allow_pickle=False) as data:
        dataset = paddle.io.TensorDataset([paddle.to_tensor(data["images"]), paddle.to_tensor(data["labels"])])
    loader = paddle.io.DataLoader(dataset, batch_size=spec["batch"], shuffle=False, drop_last=True, num_workers=0)
    return lambda: hapi.fit(loader, epochs=1, verbose=0)


def make_runner(spec: Dict[str, Any]) -> Callable[[], None]:
    """The worker-side runner of a Paddle variant: one call = one pass over the batches."""
    if spec["retain_memory"]:
        retain_freed_memory()
    set_threads(spec["threads"], spec["paddle_threads"])
    paddle.seed(0)
    return _model_fit_runner(spec) if spec["variant"] == "model_fit" else _engine_runner(spec)


def bench_train(model: str, size: int, batch: int, data_root: str, work_dir: str, steps: int = 3, rounds: int = 3,
                warmup: int = 1, class_num: int = 10, variants: Sequence[str] = ("ppnets", "native", "to_static",
                                                                                 "model_fit"),
                threads: Optional[int] = None, paddle_threads: Optional[int] = None, retain_memory: bool = True,
                config_path: str = DEFAULT_CONFIG, progress: Progress = no_progress) -> List[Result]:
    """Training img/s of each variant (see the module docstring); ``steps`` batches per timed call.

    ``data_root`` is an ImageFolder the engine is configured with (it needs one to start);
    the timed loop itself runs on random in-memory batches, identical for every variant.
    ``threads``: of the oneDNN kernels and PyTorch (default: :func:`ppnets.arch.backend.num_threads`);
    ``paddle_threads``: of Paddle's own CPU kernels (default: Paddle's, 1).
    """
    unknown = [v for v in variants if v not in TRAIN_VARIANTS]
    if unknown:
        raise ConfigError(f"train variants: unknown {unknown}; valid: {', '.join(TRAIN_VARIANTS)}")
    if any(v in _TORCH for v in variants) and not torch_ref.available():
        raise ConfigError("train variants torch/torch_channels_last: PyTorch is not installed "
                          "(pip install torch torchvision)")
    variants = [v for v in variants if (v != "model_fit" or vision_mobilenet_v2_scale(model) is not None)
                and (v not in _TORCH or torch_ref.torchvision_model(model) is not None)]
    threads = threads or backend.num_threads()
    tag = f"{model}_{size}_b{batch}"
    data_path = os.path.join(work_dir, f"train_{tag}.npz")
    os.makedirs(work_dir, exist_ok=True)
    np.savez(data_path, **dict(zip(("images", "labels"), random_batches(steps, batch, size, class_num))))
    recipe = _recipe(engine_config(data_root, work_dir, model, size, batch, class_num, config_path=config_path))
    base = dict(model=model, size=size, batch=batch, class_num=class_num, data=data_path, data_root=data_root,
                threads=threads, paddle_threads=paddle_threads, retain_memory=retain_memory,
                config_path=config_path, **recipe)
    workers: Dict[str, Worker] = {}
    try:
        for v in variants:  # all start (import, build, trace) at once; timing waits for every one
            spec = dict(base, variant=v, work_dir=os.path.join(work_dir, f"train_{tag}"),
                        channels_last=v == "torch_channels_last")
            factory = f"{torch_ref.__file__}:make_runner" if v in _TORCH else f"{__name__}:make_runner"
            workers[v] = Worker(factory, spec, os.path.join(work_dir, "logs", f"train_{tag}_{v}.log"))
        infos = {v: w.wait_ready() for v, w in workers.items()}
        times = interleaved(workers, rounds, warmup, progress, f"train {model} {size}px b{batch}")
    finally:
        for w in workers.values():
            w.close()
    results = []
    for v, ts in times.items():
        settings = {"steps_per_round": steps, "rounds": rounds, "threads": threads, "process": "own"}
        settings.update(infos[v])
        results.append(Result("train", TRAIN_VARIANTS[v], model, size, batch,
                              {"img_s": steps * batch / median(ts), "step_s": median(ts) / steps}, settings))
    ours = times.get("ppnets")
    for r in results:
        if ours and r.variant != TRAIN_VARIANTS["ppnets"]:
            r.metrics["ppnets_speedup"] = steps * batch / median(ours) / r.metrics["img_s"]
    return results
