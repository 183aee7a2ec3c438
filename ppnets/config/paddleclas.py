"""PaddleClas configs as written: PaddleClas's own keys mapped onto ppnets's.

A config from PaddleClas (``ppcls/configs/...``) uses keys that ppnets names differently, keys
that only matter to PaddleClas's trainer, and a few that cannot apply here. :func:`translate`
handles each in one of three ways, before validation:

- **mapped** to its ppnets meaning (``AMP.use_amp`` → ``AMP.enabled``, ``Infer.PostProcess`` →
  ``Infer.topk`` / ``Infer.class_id_map_file``, ``MultiStepDecay`` → ``MultiStep`` …; also timm's
  ``Arch.num_classes`` → ``Arch.class_num``);
- **accepted and ignored**, with a one-line notice saying why, when the key has an effect in
  PaddleClas that ppnets does not reproduce (``Global.use_dali: true``, ``RandCropImage.backend:
  pil``, ``MultiScaleSampler``: trained at one scale); keys set to what ppnets does anyway
  (``use_dali: false``, ``last_epoch: -1``) are dropped without a word;
- **refused**, only where it cannot apply, with what to do instead (``Global.eval_mode:
  retrieval``).

``Arch.pretrained: true`` (``use_ssld``) becomes ``Global.pretrained_model: paddleclas`` (``ssld``):
PaddleClas's ImageNet weights of the model, from PaddleClas's cache or downloaded into it
(:mod:`ppnets.checkpoint.hub`).

Values are clipped as PaddleClas clips them (``warmup_epoch`` beyond ``Global.epochs``).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

__all__ = ["translate", "PADDLECLAS_WEIGHTS"]

#: where PaddleClas keeps the weights it downloaded (``ppcls/utils/download.py``'s WEIGHTS_HOME), shared
PADDLECLAS_WEIGHTS = "~/.paddleclas/weights"

Notices = List[str]
Refuse = Callable[[str], None]


def _is_number_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _amp(amp: Dict[str, Any], notices: Notices, refuse: Refuse) -> None:
    if not any(k in amp for k in ("use_amp", "use_fp16_test", "use_promote")) or "enabled" in amp:
        return  # ppnets's own form
    # PaddleClas: an AMP section turns AMP on unless use_amp says otherwise
    amp["enabled"] = bool(amp.pop("use_amp", True))
    if "use_fp16_test" in amp:
        amp["eval"] = bool(amp.pop("use_fp16_test"))


def _global(g: Dict[str, Any], cfg: Dict[str, Any], notices: Notices, refuse: Refuse) -> None:
    if g.pop("use_dali", False):
        notices.append("Global.use_dali: ignored — DALI is NVIDIA's GPU data pipeline; ppnets reads the same "
                       "transform_ops with paddle.io.DataLoader")
    mode = g.pop("eval_mode", "classification")
    if mode != "classification":
        refuse(f"Global.eval_mode: {mode!r} is not supported — ppnets trains and evaluates classifiers "
               "(eval_mode: classification); use PaddleClas for retrieval/face recognition")
    if "class_num" in g:  # PaddleClas's deprecated spelling of Arch.class_num
        value = g.pop("class_num")
        arch = cfg.setdefault("Arch", {}) or {}
        if isinstance(arch, dict) and "class_num" not in arch:
            arch["class_num"] = value
            notices.append(f"Global.class_num: used as Arch.class_num ({value}), as PaddleClas does")


def _arch(arch: Dict[str, Any], cfg: Dict[str, Any], notices: Notices, refuse: Refuse) -> None:
    if arch.get("name") == "RecModel" or any(k in arch for k in ("Backbone", "Head", "Neck")):
        refuse("Arch: RecModel (Backbone/Neck/Head) is PaddleClas's retrieval model and is not supported; "
               "use a classifier from ppnets.list_models() as Arch.name")
        for k in ("Backbone", "Head", "Neck", "BackboneStopLayer", "infer_output_key"):
            arch.pop(k, None)
    _num_classes(arch, "Arch", refuse)
    if arch.get("name") == "DistillationModel":
        _distillation(arch, notices, refuse)
        return
    _dropout_prob(arch)
    pretrained = arch.pop("pretrained", False)
    ssld = arch.pop("use_ssld", False)
    g = cfg.setdefault("Global", {}) or {}
    if pretrained is True and isinstance(g, dict) and not g.get("pretrained_model"):
        g["pretrained_model"] = _source(ssld)
        notices.append(f"Arch.pretrained: true{' (use_ssld)' if ssld else ''} — Global.pretrained_model: "
                       f"{_source(ssld)}, PaddleClas's ImageNet weights of {arch.get('name')} (from "
                       f"{PADDLECLAS_WEIGHTS}/, downloaded there if missing)")
    elif isinstance(pretrained, str) and pretrained and isinstance(g, dict) and not g.get("pretrained_model"):
        g["pretrained_model"] = pretrained
        notices.append(f"Arch.pretrained: used as Global.pretrained_model ({pretrained})")
    _unused_model_keys(arch, notices)
    if "infer_add_softmax" in arch:
        export = cfg.get("Export")
        export = cfg["Export"] = export if isinstance(export, dict) else {}
        export.setdefault("softmax", bool(arch.pop("infer_add_softmax")))


def _source(ssld: Any) -> str:
    """The weights setting of PaddleClas's ``pretrained: true`` (``use_ssld``: its distilled weights)."""
    return "ssld" if ssld else "paddleclas"


def _num_classes(spec: Dict[str, Any], where: str, refuse: Refuse) -> None:
    """timm's ``num_classes`` is ``class_num`` (as in :func:`ppnets.build_model`)."""
    if "num_classes" not in spec:
        return
    value = spec.pop("num_classes")
    if "class_num" in spec and spec["class_num"] != value:
        refuse(f"{where}.num_classes: {value!r}, but {where}.class_num is {spec['class_num']!r} (num_classes is "
               f"timm's name for class_num: give one, e.g. -o {where}.class_num={value})")
    else:
        spec["class_num"] = value


def _dropout_prob(spec: Dict[str, Any]) -> None:
    """PaddleClas's ``dropout_prob`` (null: no dropout) is ppnets's ``dropout``."""
    if "dropout_prob" in spec and "dropout" not in spec:
        spec["dropout"] = spec.pop("dropout_prob") or 0.0


def _distillation(arch: Dict[str, Any], notices: Notices, refuse: Refuse) -> None:
    """A DistillationModel's sub-models: ``pretrained: <path>`` stays theirs, ``false`` is dropped,
    ``true`` (a download) uses PaddleClas's downloaded copy if there is one, else is refused."""
    models = arch.get("models")
    for i, item in enumerate(models if isinstance(models, list) else []):
        if not isinstance(item, dict) or len(item) != 1 or not isinstance(next(iter(item.values())), dict):
            continue
        (label, spec), = item.items()
        _num_classes(spec, f"Arch.models.{i}.{label}", refuse)
        _dropout_prob(spec)
        ssld = spec.pop("use_ssld", False)
        if spec.get("pretrained") is True:
            spec["pretrained"] = _source(ssld)
            notices.append(f"Arch.models.{i}.{label}.pretrained: true — {_source(ssld)}, PaddleClas's ImageNet "
                           f"weights of {spec.get('name')} (from {PADDLECLAS_WEIGHTS}/, downloaded there if missing)")
        elif spec.get("pretrained") is False:
            spec.pop("pretrained")
    listed = arch.get("pretrained_list")
    if isinstance(listed, list) and any(p is True or p is False for p in listed):
        arch["pretrained_list"] = ["paddleclas" if p is True else p if isinstance(p, str) else None for p in listed]
        if any(p is True for p in listed):
            notices.append("Arch.pretrained_list: true — paddleclas, PaddleClas's ImageNet weights of that model")


#: PaddleClas model arguments that its own model code accepts without effect, or that select a kernel:
#: dropped (with a notice when set to something other than the values ppnets behaves as) when the
#: ppnets model does not take them; ``{family}`` is the model's family
_MODEL_KEYS = {
    "use_fused_attn": ((False,), "ppnets computes attention with paddle.matmul (no fused attention kernel)"),
    "drop_rate": ((None, 0), "PaddleClas's {family} accepts it but never applies it; Arch.dropout sets the "
                             "classifier dropout"),
}


def _unused_model_keys(arch: Dict[str, Any], notices: Notices) -> None:
    from ..arch.registry import MODELS
    from ..registry import accepted_kwargs

    name = arch.get("name")
    if not isinstance(name, str) or name not in MODELS:
        return
    valid = accepted_kwargs(MODELS.get(name).cls) or []
    for key, (neutral, why) in _MODEL_KEYS.items():
        if key in arch and key not in valid:
            value = arch.pop(key)
            if value not in neutral:
                notices.append(f"Arch.{key}: {value!r} ignored — {why.format(family=MODELS.get(name).family)}")


_LR_NAMES = {"MultiStepDecay": "MultiStep", "ConstLR": "Constant"}


def _optimizer(opt: Dict[str, Any], cfg: Dict[str, Any], notices: Notices, refuse: Refuse) -> None:
    for key, value in list(opt.items()):
        if _is_number_string(value):  # PaddleClas passes strings like '1e-8' to Paddle as they are
            opt[key] = float(value)
    if opt.get("name") != "AdamW" and isinstance(opt.get("weight_decay"), (int, float)):
        # PaddleClas's Momentum/SGD/RMSProp take a float weight_decay as coupled L2 decay
        coeff = opt.pop("weight_decay")
        if not opt.get("regularizer"):
            opt["regularizer"] = {"name": "L2", "coeff": float(coeff)}
    if "clip_grad" in opt:
        notices.append(f"Optimizer.clip_grad: ignored ({opt.pop('clip_grad')}) — PaddleClas's optimizers ignore "
                       "it too; set Optimizer.clip_norm to clip gradients by their global norm")
    lr = opt.get("lr")
    if not isinstance(lr, dict):
        return
    for key, value in list(lr.items()):
        if _is_number_string(value):
            lr[key] = float(value)
    if isinstance(lr.get("name"), str) and lr["name"] in _LR_NAMES:
        lr["name"] = _LR_NAMES[lr["name"]]
    lr.pop("verbose", None)
    for key in ("epochs", "step_each_epoch"):  # PaddleClas overwrites these itself; so does ppnets
        lr.pop(key, None)
    last = lr.pop("last_epoch", -1)
    if last != -1:
        refuse(f"Optimizer.lr.last_epoch: {last!r} — ppnets restores the schedule's position from a checkpoint; "
               "remove last_epoch and resume with Global.checkpoints=<prefix>")
    g = cfg.get("Global")
    epochs = g.get("epochs", 10) if isinstance(g, dict) else 10
    warmup = lr.get("warmup_epoch")
    if isinstance(warmup, (int, float)) and isinstance(epochs, int) and warmup > epochs > 0:
        lr["warmup_epoch"] = epochs
        notices.append(f"Optimizer.lr.warmup_epoch: {warmup} is more than Global.epochs ({epochs}); "
                       f"clipped to {epochs}, as PaddleClas does")


def _infer(infer: Dict[str, Any], cfg: Dict[str, Any], notices: Notices, refuse: Refuse) -> None:
    post = infer.pop("PostProcess", None)
    if not isinstance(post, dict):
        return
    name = post.get("name", "Topk")
    if name == "DistillationPostProcess":  # the Topk/threshold of Arch.infer_model_name's outputs
        model = post.get("model_name")  # PaddleClas's default, Student, is whatever infer_model_name says here
        chosen = cfg["Arch"].get("infer_model_name") if isinstance(cfg.get("Arch"), dict) else None
        if model is not None and chosen is not None and model != chosen:
            refuse(f"Infer.PostProcess.model_name: {model!r} differs from Arch.infer_model_name ({chosen!r}), "
                   "the model ppnets runs for inference; make them equal")
        if post.get("key") is not None:
            refuse("Infer.PostProcess.key: ppnets's models output their logits as one tensor; remove key")
        name = post.get("func", "Topk")
    if name == "MultiLabelThreshOutput":
        if "threshold" in post:
            infer.setdefault("threshold", post["threshold"])
    elif name != "Topk":
        refuse(f"Infer.PostProcess.name: {name!r} is not supported; ppnets's inference prints the top-k classes "
               "(Topk: Infer.topk, Infer.class_id_map_file) or, for multi-label models, the classes above "
               "a threshold (MultiLabelThreshOutput: Infer.threshold)")
        return
    if "topk" in post:
        infer.setdefault("topk", post["topk"])
    if post.get("class_id_map_file"):
        infer.setdefault("class_id_map_file", post["class_id_map_file"])


def _pil_decode_and_null_policy(ops: List[Any], where: str, notices: Notices) -> None:
    """Two spellings of PaddleClas's FasterNet configs. ``DecodeImage: {to_np: false}`` hands the next op
    an RGB PIL image (``backend: pil``; with cv2 the BGR array as decoded), which its resize returns as an
    array: ppnets decodes to that array (``to_rgb`` set accordingly).
    ``TimmAutoAugment: {config_str: null}`` names no policy (PaddleClas's op fails on it): left out."""
    for i in reversed(range(len(ops))):
        item = ops[i]
        if not isinstance(item, dict) or len(item) != 1 or not isinstance(next(iter(item.values())), dict):
            continue
        (name, options), = item.items()
        if name == "DecodeImage" and options.get("to_np") is False:
            options.pop("to_np")
            options["to_rgb"] = str(options.get("backend", "cv2")).lower() == "pil"
            options["channel_first"] = False
        elif name == "TimmAutoAugment" and "config_str" in options and options["config_str"] is None:
            del ops[i]
            notices.append(f"{where}.TimmAutoAugment: config_str null — no policy, the op is left out "
                           "(PaddleClas's TimmAutoAugment cannot build it)")


def _transform_ops(ops: Any, where: str, notices: Notices) -> None:
    if not isinstance(ops, list):
        return
    _pil_decode_and_null_policy(ops, where, notices)
    for item in ops:
        if not isinstance(item, dict) or len(item) != 1:
            continue
        (name, options), = item.items()
        if isinstance(options, dict) and options.get("backend") == "pil":
            options.pop("backend")
            notices.append(f"{where}.{name}.backend: pil ignored — ppnets decodes and resizes with OpenCV "
                           "(cv2), as PaddleClas does by default")


def _crop_size(ops: Any) -> Optional[Tuple[int, int]]:
    """``(w, h)`` of the first RandCropImage / CropImage / ResizeImage ``size`` in a transform list."""
    for item in ops if isinstance(ops, list) else []:
        if isinstance(item, dict) and len(item) == 1:
            (name, options), = item.items()
            size = options.get("size") if isinstance(options, dict) else None
            if name in ("RandCropImage", "CropImage", "ResizeImage") and size is not None:
                return _wh(size)
    return None


def _wh(size: Any) -> Optional[Tuple[int, int]]:
    if isinstance(size, int) and not isinstance(size, bool):
        return size, size
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) for v in size):
        return int(size[0]), int(size[1])
    return None


def _multi_scale(section: Dict[str, Any], split: str, notices: Notices) -> None:
    """PaddleClas's multi-scale training (PP-LCNetV2's recipe): ``MultiScaleSampler`` draws a
    resolution per batch from ``scales`` and sizes the batch to keep ``first_bs`` × the first
    scale's pixels; ``MultiScaleDataset`` crops to it. ppnets trains at one scale, its
    RandCropImage size: the sampler becomes a DistributedBatchSampler with the batch
    MultiScaleSampler gives that size, the dataset PaddleClas's file list."""
    dataset, sampler = section.get("dataset"), section.get("sampler")
    if isinstance(dataset, dict) and dataset.get("name") == "MultiScaleDataset":
        dataset["name"] = "ImageNetDataset"  # the same file list, without the per-batch crop size
        if not (isinstance(sampler, dict) and sampler.get("name") == "MultiScaleSampler"):
            notices.append(f"DataLoader.{split}.dataset.name: MultiScaleDataset read as ImageNetDataset (its "
                           "per-batch sizes come from a MultiScaleSampler, which this config does not use)")
    if not (isinstance(sampler, dict) and sampler.get("name") == "MultiScaleSampler"):
        return
    scales, first_bs = sampler.get("scales"), sampler.get("first_bs")
    base = _wh(scales[0]) if isinstance(scales, list) and scales else None
    size = _crop_size(dataset.get("transform_ops")) if isinstance(dataset, dict) else None
    if base is None or size is None or not isinstance(first_bs, int) or first_bs < 1:
        return  # left as it is: validation names what is wrong
    training = sampler.get("is_training", True)
    batch = max(1, int(first_bs * base[0] * base[1] / (size[0] * size[1]))) if training else first_bs
    section["sampler"] = {"name": "DistributedBatchSampler", "batch_size": batch,
                          "shuffle": bool(sampler.get("shuffle", True)), "drop_last": False}
    where = "RandCropImage" if training else "first scale"
    notices.append(f"DataLoader.{split}.sampler: MultiScaleSampler (scales {scales}, first_bs {first_bs}) read as "
                   f"one scale — ppnets trains at the {where} size {size[0]}x{size[1]}, with the batch size "
                   f"MultiScaleSampler gives it ({batch}; DistributedBatchSampler)")


def _dataloader(loader: Dict[str, Any], notices: Notices) -> None:
    for split, section in loader.items():
        if isinstance(section, dict) and isinstance(section.get("dataset"), dict):
            _multi_scale(section, split, notices)
            _transform_ops(section["dataset"].get("transform_ops"), f"DataLoader.{split}.dataset.transform_ops",
                           notices)


def translate(cfg: Dict[str, Any], refuse: Optional[Refuse] = None) -> Notices:
    """Rewrite PaddleClas's keys in ``cfg`` in place; return the notices to show the user.

    ``refuse(message)`` is called for each key that cannot apply (by default it collects nothing
    and the key is dropped; :func:`ppnets.config.load_config` reports them with the other problems).
    """
    notices: Notices = []
    refuse = refuse or (lambda message: None)
    sections: Dict[str, Callable[[Dict[str, Any]], None]] = {
        "AMP": lambda s: _amp(s, notices, refuse),
        "Global": lambda s: _global(s, cfg, notices, refuse),
        "Arch": lambda s: _arch(s, cfg, notices, refuse),
        "Optimizer": lambda s: _optimizer(s, cfg, notices, refuse),
        "Infer": lambda s: (_infer(s, cfg, notices, refuse),
                            _transform_ops(s.get("transforms"), "Infer.transforms", notices)),
        "DataLoader": lambda s: _dataloader(s, notices),
    }
    for name, fix in sections.items():
        if isinstance(cfg.get(name), dict):
            fix(cfg[name])
    return notices
