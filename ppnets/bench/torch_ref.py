"""The PyTorch reference variant of the training benchmark: torchvision's model of the same
architecture, trained with the same data, optimizer and loss on the same threads.

This file imports nothing of ppnets (nor Paddle): :class:`~ppnets.bench.workers.Worker`
loads it by path in a process of its own. PyTorch is not a ppnets dependency; the benchmark
offers the variant only where ``torch`` and ``torchvision`` are importable (:func:`available`).
"""
from __future__ import annotations

import importlib.util
import re
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ["available", "torchvision_model", "make_runner"]

_FIXED = {
    "MobileNetV3_large_x1_0": ("mobilenet_v3_large", {}), "MobileNetV3_small_x1_0": ("mobilenet_v3_small", {}),
    "SqueezeNet1_0": ("squeezenet1_0", {}), "SqueezeNet1_1": ("squeezenet1_1", {}),
}


def available() -> bool:
    """True when ``torch`` and ``torchvision`` can be imported (checked without importing them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))


def torchvision_model(name: str) -> Optional[Tuple[str, Dict[str, Any]]]:
    """``(torchvision.models function, kwargs)`` of the architecture of the ppnets model ``name``,
    or None when torchvision has none (MobileNetV1, ShuffleNetV1, GhostNet …)."""
    if name in _FIXED:
        return _FIXED[name]
    m = re.fullmatch(r"MobileNetV2(?:_x(\d+)_(\d+))?", name)
    if m:
        return "mobilenet_v2", {"width_mult": float(f"{m.group(1)}.{m.group(2)}") if m.group(1) else 1.0}
    m = re.fullmatch(r"EfficientNetB([0-7])", name)
    if m:
        return f"efficientnet_b{m.group(1)}", {}
    m = re.fullmatch(r"ShuffleNetV2_x(0_5|1_0|1_5|2_0)", name)
    if m:
        return f"shufflenet_v2_x{m.group(1)}", {}
    return None


def make_runner(spec: Dict[str, Any]) -> Callable[[], None]:
    """One timed call = ``spec["steps"]`` training steps (SGD with momentum, cross-entropy)."""
    import numpy as np
    import torch
    import torchvision

    torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    fn, kwargs = torchvision_model(spec["model"])
    net = getattr(torchvision.models, fn)(num_classes=int(spec["class_num"]), **kwargs)
    net.train()
    fmt = torch.channels_last if spec["channels_last"] else torch.contiguous_format
    net = net.to(memory_format=fmt)
    with np.load(spec["data"], allow_pickle=False) as data:
        images, labels = data["images"], data["labels"].reshape(-1)
    batch = int(spec["batch"])
    batches = [(torch.from_numpy(images[i:i + batch]).contiguous(memory_format=fmt),
                torch.from_numpy(labels[i:i + batch])) for i in range(0, len(images), batch)]
    opt = torch.optim.SGD(net.parameters(), lr=spec["lr"], momentum=spec["momentum"],
                          weight_decay=spec["weight_decay"])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=spec["label_smoothing"])

    def run() -> None:
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x), y).backward()
            opt.step()

    run.info = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "torchvision_model": fn, "threads": torch.get_num_threads()}
    return run
