"""Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization", ICCV 2017, arXiv:1610.02391) for any registered model, on any of its stages.

For a stage map ``A`` (C×h×w, a stage of ``model.feature_info``) and the score ``y`` of class
``k`` (the logit), the heatmap is ``relu(Σ_c α_c A_c)`` with ``α_c`` the spatial mean of
``∂y/∂A_c``, scaled to [0, 1] per image. The stage map is caught by a hook on the stage's
``module``; the model runs unchanged (eval mode, dynamic graph).

:func:`cam_files` is what ``tools/cam.py`` runs: the config's inference preprocessing, the
heatmap of the predicted (or given) class, and a PNG per image with the heatmap laid over the
image as the network saw it (after resizing/cropping, before normalisation).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import paddle
import paddle.nn as nn

from ..arch.interface import stages_of
from ..arch import backend
from ..errors import ConfigError, DataError

__all__ = ["CamResult", "resolve_stage", "grad_cam", "upsample", "overlay", "cam_files"]


@dataclass
class CamResult:
    """Grad-CAM of a batch: ``cams`` (N, h, w) in [0, 1] at the stage's resolution."""

    cams: np.ndarray
    class_ids: List[int]
    scores: np.ndarray              # (N, class_num) logits
    stage: int
    module: str


def resolve_stage(model: nn.Layer, stage: Union[None, int, str] = None) -> int:
    """Stage index from an index (negative from the end), a ``feature_info`` module name or
    ``"stageN"`` (1-based, as the analysis tables name them); None = the last stage."""
    info = stages_of(model)
    if not info:
        raise ConfigError(f"{type(model).__name__}: not a ppnets model (no feature_info), no stages to explain")
    n = len(info)
    names = [d["module"] for d in info]
    if stage is None:
        return n - 1
    if isinstance(stage, str) and stage.lstrip("-").isdigit():
        stage = int(stage)
    if isinstance(stage, int) and not isinstance(stage, bool) and -n <= stage < n:
        return stage % n
    if isinstance(stage, str) and stage in names:
        return names.index(stage)
    if isinstance(stage, str) and stage.startswith("stage") and stage[5:].isdigit() and 1 <= int(stage[5:]) <= n:
        return int(stage[5:]) - 1
    raise ConfigError(f"--stage: unknown stage {stage!r}; valid: 0 … {n - 1}, stage1 … stage{n} or a module "
                      f"({', '.join(names)})")


def grad_cam(model: nn.Layer, x: paddle.Tensor, stage: Union[None, int, str] = None,
             class_id: Optional[int] = None) -> CamResult:
    """Grad-CAM of ``model`` (put in eval mode) for the batch ``x`` on ``stage`` (default: the last).

    ``class_id``: the class to explain; None = each image's predicted class.
    """
    index = resolve_stage(model, stage)
    module_name = stages_of(model)[index]["module"]
    module = dict(model.named_sublayers())[module_name]
    caught: List[paddle.Tensor] = []
    hook = module.register_forward_post_hook(lambda layer, inputs, output: caught.append(output))
    model.eval()
    x = x.detach()
    x.stop_gradient = False  # so that the stage map is in the graph even when its layers are frozen
    # Paddle's own convolution kernels: the oneDNN training path (a PyLayer) cannot be differentiated
    # with respect to an intermediate tensor only (paddle.grad prunes the weights it returns gradients for)
    with backend.use("paddle"):
        try:
            logits = model(x)
        finally:
            hook.remove()
    if getattr(model, "features_only", False) or logits.ndim != 2 or not model.class_num:
        raise ConfigError("Grad-CAM needs a model with a classifier (not features_only, class_num > 0)")
    n, classes = logits.shape
    if class_id is not None and not 0 <= class_id < classes:
        raise ConfigError(f"--class: expected a class id in 0 … {classes - 1}, got {class_id}")
    scores = logits.numpy()
    ids = [int(class_id)] * n if class_id is not None else [int(i) for i in scores.argmax(axis=1)]
    fmap = caught[-1]
    target = (logits * paddle.nn.functional.one_hot(paddle.to_tensor(ids), classes)).sum()
    grad, = paddle.grad(target, fmap)
    weights = grad.mean(axis=[2, 3], keepdim=True)
    cam = paddle.nn.functional.relu((weights * fmap).sum(axis=1)).numpy()
    peak = cam.reshape(n, -1).max(axis=1).reshape(n, 1, 1)
    cams = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return CamResult(cams.astype(np.float32), ids, scores, index, module_name)


def upsample(cam: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one (h, w) heatmap to ``size`` = (H, W), the sample grid aligned with the image's."""
    import cv2
    return cv2.resize(cam.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def overlay(image: np.ndarray, cam: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB with ``cam`` (any size, values in [0, 1]) as a colour map on top."""
    import matplotlib
    heat = upsample(cam, image.shape[:2]) if cam.shape != image.shape[:2] else cam
    colors = matplotlib.colormaps[cmap](np.clip(heat, 0, 1))[..., :3] * 255.0
    return np.clip((1 - alpha) * image.astype(np.float32) + alpha * colors, 0, 255).astype(np.uint8)


def _views(transform: Any, data: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """(the image as the network sees it: the last uint8 H×W×3 stage of the preprocessing, its input CHW)."""
    view = None
    for op in transform.ops:
        data = op(data)
        if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 3 and data.shape[2] == 3:
            view = data
    if view is None or not isinstance(data, np.ndarray) or data.ndim != 3:
        raise ConfigError("Infer.transforms: Grad-CAM needs preprocessing that decodes to an H×W×3 image and "
                          "ends with a CHW array (DecodeImage … ToCHWImage)")
    return view, data


def cam_files(model: nn.Layer, transform: Any, files: Sequence[str], out_dir: str,
              stage: Union[None, int, str] = None, class_id: Optional[int] = None,
              label_names: Optional[Sequence[str]] = None, scale: int = 1) -> List[Dict[str, Any]]:
    """Write ``<out_dir>/<image name>_<stage module>_cam.png`` for each image file; returns, per image,
    ``{"file", "output", "class_id", "label", "score", "stage", "module"}``.

    ``scale`` enlarges the written picture (nearest-neighbour image, bilinear heatmap) for small inputs.
    """
    import cv2
    os.makedirs(out_dir, exist_ok=True)
    index = resolve_stage(model, stage)
    results = []
    for path in files:
        try:
            with open(path, "rb") as f:
                view, chw = _views(transform, f.read())
        except OSError as e:
            raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
        res = grad_cam(model, paddle.to_tensor(chw[None].astype(np.float32)), index, class_id)
        h, w = view.shape[:2]
        big = cv2.resize(view, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST) if scale > 1 else view
        picture = overlay(big, res.cams[0])
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(out_dir, f"{stem}_{res.module.replace('.', '_')}_cam.png")
        if not cv2.imwrite(out, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise DataError(f"cannot write {out}")
        k = res.class_ids[0]
        results.append({"file": path, "output": out, "class_id": k, "stage": index, "module": res.module,
                        "label": label_names[k] if label_names and k < len(label_names) else str(k),
                        "score": float(res.scores[0, k])})
    return results
