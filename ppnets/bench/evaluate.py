"""Dynamic-mode evaluation throughput: the oneDNN conv backend against Paddle's kernels."""
from __future__ import annotations

from typing import List, Optional

import paddle

from ..arch import backend, build_model
from ..engine.models import forward_in_chunks
from ..utils.timing import Progress, interleaved, median, no_progress
from .data import random_batches
from .results import Result

__all__ = ["bench_eval"]


def bench_eval(model: str, size: int, batch: int, rounds: int = 3, warmup: int = 1, class_num: int = 10,
               threads: Optional[int] = None, progress: Progress = no_progress) -> List[Result]:
    """``no_grad`` forward img/s of ``model`` in eval mode as the engine evaluates (in slices of
    :data:`~ppnets.engine.models.EVAL_CHUNK` images on the CPU), conv backend ``onednn`` (where
    available) vs ``paddle``, in one process (the same network and batch)."""
    paddle.seed(0)
    net = build_model(model, class_num=class_num)
    net.eval()
    x = paddle.to_tensor(random_batches(1, batch, size, class_num)[0])
    fast_backend = backend.resolve("auto")

    def runner(name: str):
        def run() -> None:
            with paddle.no_grad(), backend.use(name):
                forward_in_chunks(net, x)
        return run

    times = interleaved({"fast": runner(fast_backend), "native": runner("paddle")}, rounds, warmup, progress,
                        f"eval {model} {size}px b{batch}")
    out = []
    for key, name in (("fast", "ppnets (dynamic)"), ("native", "ppnets, Paddle's conv kernels (before)")):
        out.append(Result("eval", name, model, size, batch, {"img_s": batch / median(times[key])},
                          {"rounds": rounds, "threads": threads}))
    out[0].metrics["ppnets_speedup"] = out[0].metrics["img_s"] / out[1].metrics["img_s"]
    return out
