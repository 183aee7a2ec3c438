"""Knowledge distillation in PaddleClas's form: ``Arch: {name: DistillationModel, models: [...]}``.

::

    Arch:
      name: DistillationModel
      models:
        - Teacher: {name: MobileNetV2, class_num: 10, pretrained: output/teacher/best_model}
        - Student: {name: ShuffleNetV2_x0_25, class_num: 10}
      freeze_params_list: [true, false]
      infer_model_name: Student

Any zoo model can take any role. The model runs every sub-model on the same batch and returns
``{label: logits}`` for the Distillation* losses. A frozen sub-model (a teacher) comes from its
weights, has no gradients and always runs in eval mode (BatchNorm statistics and dropout
included), so training leaves it unchanged. Only ``infer_model_name`` is evaluated, saved as
``best_model`` and exported (:func:`inference_arch`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import paddle
import paddle.nn as nn

from ..errors import ConfigError
from .registry import WEIGHTS_KEYS, build_model

__all__ = ["DistillationModel", "DISTILLATION", "is_distillation", "build_arch", "inference_arch",
           "inference_model", "submodels", "arch_problems", "single_output"]

DISTILLATION = "DistillationModel"

#: a sub-model: its label (Teacher, Student …) and its own Arch-like spec {name, class_num, pretrained, …}
SubModel = Tuple[str, Dict[str, Any]]


def is_distillation(arch: Dict[str, Any]) -> bool:
    return isinstance(arch, dict) and arch.get("name") == DISTILLATION


def submodels(arch: Dict[str, Any]) -> List[SubModel]:
    """``[(label, spec), …]`` of a DistillationModel Arch, in order (malformed items left out)."""
    models = arch.get("models")
    return [next(iter(item.items())) for item in (models if isinstance(models, list) else [])
            if isinstance(item, dict) and len(item) == 1 and isinstance(next(iter(item.values())), dict)]


def _infer_label(labels: List[str], frozen: List[bool], name: Optional[str]) -> Optional[str]:
    """``infer_model_name``, or else the only sub-model that trains (None when that is ambiguous)."""
    if name is not None:
        return name
    trainable = [label for label, f in zip(labels, frozen) if not f]
    return trainable[0] if len(trainable) == 1 else None


def _frozen_flags(arch: Dict[str, Any], count: int) -> List[bool]:
    flags = arch.get("freeze_params_list")
    return [bool(f) for f in flags] if isinstance(flags, list) and len(flags) == count else [False] * count


def _weights_of(arch: Dict[str, Any], index: int, spec: Dict[str, Any]) -> Optional[str]:
    listed = arch.get("pretrained_list")
    listed = listed if isinstance(listed, list) else []
    return spec.get("pretrained") or (listed[index] if index < len(listed) else None)


def arch_problems(arch: Dict[str, Any], where: str = "Arch") -> List[str]:
    """What is wrong with a DistillationModel Arch as a whole (its sub-models' own options are
    checked against their models by the config validation); one message per problem."""
    models = submodels(arch)
    labels = [label for label, _ in models]
    problems = []
    if not models:
        return [f"{where}.models: expected at least one {{Label: {{name: <model>, …}}}} entry"]
    for label in sorted({x for x in labels if labels.count(x) > 1}):
        problems.append(f"{where}.models: the label {label!r} is used twice")
    for key in ("freeze_params_list", "pretrained_list"):
        value = arch.get(key)
        if isinstance(value, list) and len(value) != len(models):
            problems.append(f"{where}.{key}: {len(value)} entries for {len(models)} models ({', '.join(labels)})")
    if problems:
        return problems
    frozen = _frozen_flags(arch, len(models))
    for i, (label, spec) in enumerate(models):
        if spec.get("pretrained") and _weights_of(arch, i, {}):
            problems.append(f"{where}.models.{i}.{label}.pretrained and {where}.pretrained_list.{i} both give "
                            "weights; keep one")
        if frozen[i] and not _weights_of(arch, i, spec):
            problems.append(f"{where}.models.{i}.{label}: frozen (freeze_params_list) but it has no weights; set "
                            f"{where}.models.{i}.{label}.pretrained=<path of its .pdparams>")
    if all(frozen):
        problems.append(f"{where}.freeze_params_list: every model is frozen, nothing would train")
    name = arch.get("infer_model_name")
    if name is not None and name not in labels:
        problems.append(f"{where}.infer_model_name: {name!r} is not one of the models ({', '.join(labels)})")
    elif _infer_label(labels, frozen, name) is None:
        problems.append(f"{where}.infer_model_name: required when several models train; one of {', '.join(labels)}")
    counts = {label: spec.get("class_num") for label, spec in models}
    if len(set(counts.values())) > 1:
        problems.append(f"{where}.models: the models must have the same class_num to compare their outputs, got "
                        + ", ".join(f"{label}: {n}" for label, n in counts.items()))
    elif arch.get("class_num") not in (None, next(iter(counts.values()))):
        problems.append(f"{where}.class_num: {arch['class_num']} but the models have class_num "
                        f"{next(iter(counts.values()))}")
    return problems


class DistillationModel(nn.Layer):
    """Several zoo models side by side; ``forward`` returns ``{label: logits}``.

    Args:
        models: ``[{label: {name, class_num, pretrained, <model options>}}, …]``; ``pretrained``
            is a weights file (a prefix or ``.pdparams``, PaddleClas's accepted) loaded into that model.
        freeze_params_list: per model, whether it is frozen (a teacher); a frozen model needs weights.
        pretrained_list: per model, weights (or null) — PaddleClas's other way of giving them.
        infer_model_name: the model evaluated, saved as ``best_model`` and exported (default:
            the only one that trains).
        class_num: the models' class count (they must agree).

    The constructor builds the models; it reads no file. The weights each sub-model names are
    listed in :attr:`submodel_weights` (``{label: (model name, path, strict)}``, strict for a frozen teacher,
    which must get all of its weights) and loaded by whoever builds the model
    (:func:`ppnets.checkpoint.build_run_model`).
    """

    def __init__(self, models: List[Dict[str, Dict[str, Any]]], freeze_params_list: Optional[List[bool]] = None,
                 pretrained_list: Optional[List[Optional[str]]] = None, infer_model_name: Optional[str] = None,
                 class_num: Optional[int] = None) -> None:
        super().__init__()
        arch = {"models": models, "freeze_params_list": freeze_params_list, "pretrained_list": pretrained_list,
                "infer_model_name": infer_model_name, "class_num": class_num}
        problems = arch_problems(arch)
        if problems:
            raise ConfigError("\n".join(problems))
        self.model_names: List[str] = []
        self.submodel_weights: Dict[str, Tuple[str, str, bool]] = {}
        self.frozen: Dict[str, bool] = {}
        flags = _frozen_flags(arch, len(models))
        for i, (label, spec) in enumerate(submodels(arch)):
            weights = _weights_of(arch, i, spec)
            spec = {k: v for k, v in spec.items() if k != "pretrained"}
            name = spec.pop("name")
            model = build_model(name, **spec)
            if weights:
                self.submodel_weights[label] = (name, weights, flags[i])
            if flags[i]:
                for p in model.parameters():
                    p.stop_gradient = True
            self.add_sublayer(label, model)
            self.model_names.append(label)
            self.frozen[label] = flags[i]
        self.infer_model_name = _infer_label(self.model_names, flags, infer_model_name)
        self.class_num = getattr(self.infer_model, "class_num", class_num)

    @property
    def infer_model(self) -> nn.Layer:
        """The sub-model that is evaluated, saved as ``best_model`` and exported."""
        return getattr(self, self.infer_model_name)

    def forward(self, x: paddle.Tensor) -> Dict[str, paddle.Tensor]:
        out: Dict[str, paddle.Tensor] = {}
        for label in self.model_names:
            model = getattr(self, label)
            if self.frozen[label]:
                # eval mode whatever the caller set (Layer.train() reaches every sublayer directly)
                for layer in model.sublayers(include_self=True):
                    layer.training = False
                with paddle.no_grad():
                    out[label] = model(x)
            else:
                out[label] = model(x)
        return out


def single_output(outputs: Any, where: str, instead: str) -> Any:
    """``outputs`` of one model, for a loss or metric that takes a single model's logits; a
    DistillationModel's ``{label: logits}`` is a ConfigError suggesting ``instead``."""
    if isinstance(outputs, dict):
        raise ConfigError(f"{where}: the model outputs {{{', '.join(outputs)}}} (a DistillationModel); use {instead}")
    return outputs


def build_arch(arch: Dict[str, Any]) -> nn.Layer:
    """The model of an ``Arch`` section: a zoo model, or a :class:`DistillationModel` (its sub-models'
    weights are not loaded: see :attr:`DistillationModel.submodel_weights`)."""
    arch = {k: v for k, v in arch.items() if k not in WEIGHTS_KEYS}
    name = arch.pop("name")
    return DistillationModel(**arch) if name == DISTILLATION else build_model(name, **arch)


def inference_arch(arch: Dict[str, Any]) -> Tuple[Dict[str, Any], Optional[str]]:
    """``(Arch of the model to evaluate/export, its label)``: a zoo model's Arch is itself (label
    None); a DistillationModel's is its ``infer_model_name`` sub-model (without its weights, which
    come from ``Global.pretrained_model``)."""
    if not is_distillation(arch):
        return dict(arch), None
    models = submodels(arch)
    label = _infer_label([m for m, _ in models], _frozen_flags(arch, len(models)), arch.get("infer_model_name"))
    spec = dict(dict(models)[label])
    spec.pop("pretrained", None)
    return spec, label


def inference_model(model: nn.Layer) -> nn.Layer:
    """The model that is evaluated and exported: a DistillationModel's ``infer_model``, else ``model``."""
    return model.infer_model if isinstance(model, DistillationModel) else model
