"""Writing an export folder: ``paddle.jit.save`` of the traced model, ``inference.onnx``,
``inference.yml`` and PaddleClas's deploy files, all into a staging folder beside it that then
replaces the whole folder (:mod:`ppnets.deploy.folders`)."""
from __future__ import annotations

import os
import time
from typing import Any, Dict, List, Optional, Sequence

import paddle
import yaml

from ..deploy.exported import write_export_meta
from ..deploy.folders import commit_folder, discard_folder, staging_folder
from ..deploy.runtimes import ONNX_FILE, PADDLE_FILES
from ..errors import ConfigError
from ..utils.logger import get_logger
from .onnx import MIN_OPSET, convert_to_onnx, parity
from .paddleclas import DEPLOY_CONFIG, LABEL_MAP, deploy_config, label_map_text

__all__ = ["save_inference_model", "WithActivation", "FORMATS"]

FORMATS = ("paddle", "onnx")


class WithActivation(paddle.nn.Layer):
    """``model`` followed by a softmax (class probabilities) or a sigmoid (multi-label: one per class)."""

    def __init__(self, model: paddle.nn.Layer, activation: str = "softmax") -> None:
        super().__init__()
        self.model = model
        self.activation = activation

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        logits = self.model(x)
        if self.activation == "sigmoid":
            return paddle.nn.functional.sigmoid(logits)
        return paddle.nn.functional.softmax(logits, axis=-1)


def _write_deploy_files(tmp_dir: str, save_dir: str, meta: Dict[str, Any]) -> None:
    """PaddleClas's deploy config and ``id name`` label map beside the model (see ppnets.deploy.paddleclas)."""
    config, reason = deploy_config(meta, save_dir)
    if config is None:
        get_logger().warning(f"no {DEPLOY_CONFIG} written: {reason}")
        return
    if "onnx" in meta["formats"] and "paddle" not in meta["formats"]:
        config["Global"]["use_onnx"] = True
    with open(os.path.join(tmp_dir, DEPLOY_CONFIG), "w", encoding="utf-8") as f:
        yaml.safe_dump(config, f, sort_keys=False, allow_unicode=True)
    if meta.get("label_names"):
        with open(os.path.join(tmp_dir, LABEL_MAP), "w", encoding="utf-8") as f:
            f.write(label_map_text(meta["label_names"]))


def save_inference_model(model: paddle.nn.Layer, save_dir: str, image_shape: List[int], meta: Dict[str, Any],
                         softmax: bool = True, batch_size: Optional[int] = None,
                         formats: Sequence[str] = ("paddle",), onnx_opset: int = MIN_OPSET) -> str:
    """``paddle.jit.to_static`` + ``paddle.jit.save`` of ``model`` (eval mode) into ``save_dir``,
    with ``inference.yml`` holding ``meta`` (preprocessing ops, label names …) for :class:`Predictor`.

    ``formats`` containing ``onnx`` adds ``inference.onnx`` (paddle2onnx; its max |Δ| from the
    Paddle model is logged); without ``paddle`` the Paddle files are not kept. PaddleClas's
    deploy config and label map are written beside them.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ConfigError(f"Export.formats: expected a non-empty list of {', '.join(FORMATS)}, got {list(formats)}")
    model.eval()
    net = WithActivation(model) if softmax else model
    net.eval()
    c, h, w = image_shape
    spec = paddle.static.InputSpec([batch_size, c, h, w], "float32", name="x")
    static = paddle.jit.to_static(net, input_spec=[spec], full_graph=True)
    # written complete into a staging folder beside save_dir, then swapped in: the folder is one unit
    stage = staging_folder(save_dir)
    try:
        log, started = get_logger(), time.time()
        paddle.jit.save(static, os.path.join(stage, "inference"))
        log.info(f"traced and saved the Paddle program in {time.time() - started:.1f} s")
        meta = dict(meta, input_shape=[c, h, w], softmax=softmax, formats=list(formats))
        meta.pop("files", None)
        if "onnx" in formats:
            log.info(f"converting to ONNX (paddle2onnx, opset {onnx_opset}) and checking it against paddle.inference")
            started = time.time()
            onnx_path = convert_to_onnx(stage, opset=onnx_opset)
            deltas, limit = parity(stage, onnx_path, [c, h, w], batch=batch_size or 2)
            delta = deltas["onnxruntime"]
            (log.info if delta <= limit else log.warning)(
                f"{ONNX_FILE}: max |Δ| from paddle.inference = {delta:.3g} (limit {limit:.3g}), converted and "
                f"checked in {time.time() - started:.1f} s")
            meta["onnx"] = {"opset": onnx_opset, "parity_max_abs_diff": delta, "parity_limit": limit}
            if "openvino" in deltas:
                # OpenVINO is held to the limit, or to 10× ONNX Runtime's distance where float32 rounding
                # alone (an ill-conditioned model) puts every runtime farther than the limit
                ov_limit = max(limit, 10 * delta)
                meta["openvino"] = {"parity_max_abs_diff": deltas["openvino"], "parity_limit": ov_limit}
                if deltas["openvino"] > ov_limit:
                    log.warning(f"{ONNX_FILE}: OpenVINO's outputs differ from paddle.inference's by "
                                f"{deltas['openvino']:.3g} (limit {ov_limit:.3g}); the export will not run on "
                                "OpenVINO (ONNX Runtime and paddle.inference are unaffected)")
            if "paddle" not in formats:
                for name in PADDLE_FILES:
                    os.remove(os.path.join(stage, name))
        _write_deploy_files(stage, save_dir, meta)
        write_export_meta(stage, meta)   # the size and SHA-256 of every file above
        commit_folder(stage, save_dir)
    except OSError as e:
        raise ConfigError(f"Global.save_inference_dir: cannot write {save_dir}: {e.strerror or e}") from None
    finally:
        discard_folder(stage)   # a no-op after the commit
    return save_dir
