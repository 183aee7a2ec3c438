"""PaddleClas's deploy format beside a ppnets export: ``inference_cls.yaml`` and ``class_id_map.txt``.

PaddleClas's ``deploy/python/predict_cls.py -c inference_cls.yaml`` reads a config with
``Global`` (model directory, batch size, threads, oneDNN …), ``PreProcess.transform_ops``
(applied to an RGB HWC image it decoded itself, so without ``DecodeImage``) and
``PostProcess`` (``Topk`` with a ``class_id_map_file`` of ``id name`` lines; for a multi-label
export ``MultiLabelThreshOutput`` with its ``threshold``). Its paths are
relative to the directory it runs in, so the ones written here are absolute; override them
with ``-o Global.inference_model_dir=…`` after moving an export.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..data.transforms.base import number

__all__ = ["DEPLOY_CONFIG", "LABEL_MAP", "deploy_config", "label_map_text"]

DEPLOY_CONFIG, LABEL_MAP = "inference_cls.yaml", "class_id_map.txt"
#: ops PaddleClas's deploy/python/preprocess.py has, with the options both sides share
_DEPLOY_OPS = {"ResizeImage": {"size", "resize_short", "interpolation", "backend"}, "CropImage": {"size"},
               "NormalizeImage": {"scale", "mean", "std", "order", "channel_num"}, "ToCHWImage": set()}


def _deploy_ops(ops: Sequence[Dict[str, Any]]) -> Tuple[Optional[List[Dict[str, Any]]], str]:
    """ppnets preprocessing → PaddleClas deploy's ``transform_ops``, or ``(None, reason)``."""
    out: List[Dict[str, Any]] = []
    for i, op in enumerate(ops):
        (name, opts), = op.items()
        opts = dict(opts or {})
        if name == "DecodeImage":
            if i != 0 or not opts.get("to_rgb", True) or opts.get("channel_first", False):
                return None, "PaddleClas deploy decodes to RGB HWC itself (DecodeImage must come first, to_rgb)"
            continue
        if name not in _DEPLOY_OPS or set(opts) - _DEPLOY_OPS[name]:
            return None, f"op {name} {sorted(opts)} has no PaddleClas deploy equivalent"
        if name == "NormalizeImage" and "scale" in opts:
            opts["scale"] = number(opts["scale"], "NormalizeImage.scale")   # PaddleClas would eval() a string
        out.append({name: opts or None})
    return out, ""


def deploy_config(meta: Dict[str, Any], model_dir: str, topk: int = 5,
                  batch_size: int = 1) -> Tuple[Optional[Dict[str, Any]], str]:
    """PaddleClas's ``inference_cls.yaml`` for an export, or ``(None, reason)`` when its
    preprocessing cannot be expressed with PaddleClas deploy's ops."""
    if not meta.get("transform_ops"):
        return None, "the export has no preprocessing ops"
    ops, reason = _deploy_ops(meta["transform_ops"])
    if ops is None:
        return None, reason
    model_dir = os.path.abspath(model_dir)
    topk = min(topk, int(meta.get("class_num") or topk))
    config = {
        "Global": {"infer_imgs": "./images", "inference_model_dir": model_dir, "batch_size": batch_size,
                   "use_gpu": False, "enable_mkldnn": True, "cpu_num_threads": os.cpu_count() or 1,
                   "enable_benchmark": False, "use_fp16": False, "ir_optim": True, "use_tensorrt": False,
                   "gpu_mem": 8000, "enable_profile": False,
                   "use_onnx": False},
        "PreProcess": {"transform_ops": ops},
        "PostProcess": {"main_indicator": "Topk", "Topk": {"topk": topk}},
    }
    if meta.get("multilabel"):
        config["PostProcess"] = {"main_indicator": "MultiLabelThreshOutput",
                                 "MultiLabelThreshOutput": {"threshold": meta["threshold"], "delimiter": " "}}
    if meta.get("label_names"):
        post = config["PostProcess"]
        post[post["main_indicator"]]["class_id_map_file"] = os.path.join(model_dir, LABEL_MAP)
    return config, ""


def label_map_text(names: Sequence[str]) -> str:
    """PaddleClas's ``class_id_map_file``: one ``id name`` line per class."""
    return "".join(f"{i} {name}\n" for i, name in enumerate(names))
