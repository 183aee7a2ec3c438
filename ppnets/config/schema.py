"""The config schema: every fixed key with its type, default and meaning.

:data:`SCHEMA` maps each section to a :class:`Section`. A :class:`Section` holds fixed keys
(:class:`Key` or nested sections) and may take the keyword arguments of a named component as
its other keys (``options_of``: e.g. ``Arch``'s other keys are the model's arguments). Keys whose
value names components carry the registry that checks them (:class:`Named`, :class:`NamedList`).
A section whose ``name`` selects another layout lists it in ``variants`` (``Arch: {name:
DistillationModel, models: [...]}``, whose sub-models are checked as :class:`LabeledList` items).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ..arch.distillation import DISTILLATION, arch_problems, submodels
from ..arch.registry import MODELS
from ..data import BATCH_TRANSFORMS, DATASETS, TRANSFORMS
from ..data.datasets import MAX_CLASSES
from ..loss import LOSSES
from ..metric import METRICS
from ..optimizer import LR_SCHEDULES, OPTIMIZERS
from ..registry import Registry

__all__ = ["REQUIRED", "Key", "Named", "NamedList", "LabeledList", "Section", "SCHEMA", "ARCH_OPTION_RANGES"]

REQUIRED = object()


@dataclass(frozen=True)
class Named:
    """A component spec ``{name: Cosine, learning_rate: 0.1}`` checked by ``registry``."""

    registry: Registry


@dataclass(frozen=True)
class NamedList:
    """A list of single-key mappings ``[{CELoss: {epsilon: 0.1}}]`` checked by ``registry`` (or null)."""

    registry: Registry


@dataclass(frozen=True)
class LabeledList:
    """A list of single-key mappings ``[{Teacher: {...}}, {Student: {...}}]``: each label is the
    user's, each value is checked as ``section``."""

    section: "Section"


@dataclass
class Key:
    """One fixed config key: expected type (a typing annotation, :class:`Named` or
    :class:`NamedList`), default and meaning."""

    type: Any
    default: Any = None
    doc: str = ""
    choices: Optional[Tuple[Any, ...]] = None
    minimum: Optional[float] = None  #: smallest allowed value of a number (null always passes)
    maximum: Optional[float] = None  #: largest allowed value of a number
    length: Optional[int] = None  #: required number of items of a list
    greater_than: Optional[float] = None  #: numbers must be above this (exclusive minimum)
    less_than: Optional[float] = None  #: numbers must be below this (exclusive maximum)
    fill: bool = True  #: False: a key that is not set stays absent from the resolved config (its default applies)


@dataclass
class Section:
    """A mapping of fixed keys; with ``options_of``, its other keys are the keyword arguments of the
    component that ``keys["name"]`` names in that registry (checked against its signature), and
    those named in ``option_ranges`` must also be in its range (when the component takes them).

    ``variants`` maps a value of ``name`` to the section used instead (another layout);
    ``check(node, where)`` returns the problems of the section as a whole (and may fill derived
    keys); it runs even when some keys are wrong, so it must tolerate malformed values."""

    keys: Dict[str, Union[Key, "Section"]]
    options_of: Optional[Registry] = None
    option_ranges: Dict[str, Key] = field(default_factory=dict)
    variants: Dict[str, "Section"] = field(default_factory=dict)
    check: Optional[Callable[[Dict[str, Any], str], List[str]]] = None


def _loader_split() -> Section:
    return Section({
        "dataset": Section({
            "name": Key(str, "ImageFolder", "dataset class: ImageFolder (class = sub-folder), FileListDataset or "
                        "ImageNetDataset (PaddleClas's file list)"),
            "transform_ops": Key(NamedList(TRANSFORMS), None, "per-sample preprocessing and "
                                 "augmentation ops, e.g. [{DecodeImage: {}}, {RandCropImage: {size: 224}}]"),
            "batch_transform_ops": Key(NamedList(BATCH_TRANSFORMS), None,
                                       "training batch ops, e.g. [{MixupOperator: {alpha: 0.2}}] or "
                                       "[{MixupCutmix: {mixup_alpha: 0.8, cutmix_alpha: 1.0, switch_prob: 0.5}}]; "
                                       "targets become soft (N, Arch.class_num)"),
        }, options_of=DATASETS),
        "sampler": Section({
            "name": Key(str, "DistributedBatchSampler", "batch sampler: DistributedBatchSampler (sharded over "
                        "processes), BatchSampler (every process reads everything) or ClassBalancedSampler (draws "
                        "classes with probability ∝ n_c^exponent, with replacement; training only)",
                        ("DistributedBatchSampler", "BatchSampler", "ClassBalancedSampler")),
            "batch_size": Key(int, 64, "samples per batch and per process", minimum=1),
            "shuffle": Key(bool, False, "shuffle every epoch (seeded by Global.seed and the epoch); "
                           "ClassBalancedSampler draws at random anyway"),
            "drop_last": Key(bool, False, "drop the last incomplete batch"),
            "exponent": Key(Optional[float], None, "ClassBalancedSampler: class c is drawn with probability ∝ "
                            "n_c^exponent — 0 (default) every class alike, 0.5 square-root, 1 natural frequencies",
                            minimum=0.0, maximum=1.0),
            "num_samples": Key(Optional[int], None, "ClassBalancedSampler: images drawn per epoch (default: the "
                               "dataset size)", minimum=1),
        }),
        "loader": Section({
            "num_workers": Key(int, 0, "worker processes decoding images (0 = in the main process)", minimum=0,
                               maximum=256),
            "use_shared_memory": Key(bool, True, "pass batches from workers through shared memory"),
        }),
    })


def _fraction(doc: str) -> Key:
    return Key(float, doc=doc, minimum=0, less_than=1)


def _multiplier(doc: str) -> Key:
    return Key(float, doc=doc, greater_than=0, maximum=8)


#: ranges of the model options several families share (by argument name)
ARCH_OPTION_RANGES: Dict[str, Key] = {
    "scale": _multiplier("width multiplier"),
    "width_mult": _multiplier("width multiplier"),
    "depth_mult": _multiplier("depth multiplier"),
    "dropout": _fraction("dropout probability before the classifier"),
    "dropout_prob": _fraction("dropout probability before the classifier"),
    "drop_connect_rate": _fraction("stochastic depth rate"),
    "drop_path_rate": _fraction("stochastic depth rate"),
    "drop_path": _fraction("stochastic depth rate"),
}


def _check_distillation(arch: Dict[str, Any], where: str) -> List[str]:
    """The DistillationModel as a whole; fills each sub-model's class_num (default: Arch.class_num,
    else 1000) and Arch.class_num (the models' common class count)."""
    default = arch.get("class_num") or 1000
    for _, spec in submodels(arch):
        if isinstance(spec, dict) and spec.get("class_num") is None:
            spec["class_num"] = default
    problems = arch_problems(arch, where)
    if not problems:
        arch["class_num"] = submodels(arch)[0][1]["class_num"]
    return problems


#: one model of a DistillationModel: an Arch of its own, plus the weights it starts from
_SUBMODEL = Section({
    "name": Key(str, REQUIRED, "registered model name (ppnets.list_models())"),
    "class_num": Key(Optional[int], None, "number of classes (default: Arch.class_num, else 1000)", minimum=1,
                     maximum=MAX_CLASSES),
    "pretrained": Key(Optional[str], None, "weights this model starts from, as Global.pretrained_model (a "
                      "frozen teacher's are required)"),
}, options_of=MODELS, option_ranges=ARCH_OPTION_RANGES)

_DISTILLATION_ARCH = Section({
    "name": Key(str, REQUIRED, "DistillationModel"),
    "models": Key(LabeledList(_SUBMODEL), REQUIRED, "the models, each {Label: {name, class_num, pretrained, "
                  "<model options>}}, e.g. [{Teacher: {name: MobileNetV2, pretrained: t/best_model}}, "
                  "{Student: {name: ShuffleNetV2_x0_25}}]"),
    "freeze_params_list": Key(Optional[List[bool]], None, "per model: frozen (a teacher: eval mode, no gradients, "
                              "unchanged by training)"),
    "pretrained_list": Key(Optional[List[Optional[str]]], None, "per model: weights to start from (or null); "
                           "PaddleClas's alternative to each model's pretrained"),
    "infer_model_name": Key(Optional[str], None, "the model evaluated, saved as best_model and exported "
                            "(default: the only one that trains)"),
    "class_num": Key(Optional[int], None, "the models' number of classes (filled from them)", minimum=1),
}, check=_check_distillation)


SCHEMA: Dict[str, Section] = {
    "Global": Section({
        "epochs": Key(int, 10, "number of training epochs", minimum=1, maximum=1_000_000),
        "output_dir": Key(str, "./output", "checkpoints, logs, VisualDL and the resolved config go to "
                          "<output_dir>/<model>: Arch.name, or the model its options make (Arch.scale=0.75 on "
                          "MobileNetV2_x0_5: MobileNetV2_x0_75)"),
        "overwrite": Key(bool, False, "start a new run in a folder that holds another run's checkpoints, removing "
                         "them (default: refused; resuming from a checkpoint in the folder continues that run)"),
        "device": Key(str, "cpu", "cpu or gpu", ("cpu", "gpu")),
        "seed": Key(Optional[int], 42, "random seed of weights, data order and augmentation (null = unseeded)",
                    minimum=0, maximum=2 ** 32 - 1),
        "save_interval": Key(int, 1, "write epoch_N checkpoints every this many epochs (0 = never)", minimum=0),
        "eval_during_train": Key(bool, True, "evaluate on DataLoader.Eval during training"),
        "eval_interval": Key(int, 1, "evaluate every this many epochs", minimum=1),
        "print_batch_step": Key(int, 10, "log a training line every this many iterations", minimum=1),
        "use_visualdl": Key(bool, True, "write VisualDL scalars under <output_dir>/<model>/vdl, one "
                            "record file per run (a resumed run continues it)"),
        "image_shape": Key(List[int], [3, 224, 224], "C, H, W of the network input (export and analysis)",
                           minimum=1, maximum=16384, length=3),
        "pretrained_model": Key(Optional[str], None, "weights to initialise from: a prefix, .pdparams or "
                                ".safetensors (PaddleClas's and timm's layouts converted), a URL, paddleclas / ssld "
                                "(PaddleClas's ImageNet weights of Arch.name), timm (timm's) or a timm hub id "
                                "timm/<model>.<tag> — downloaded once into a cache (docs/pretrained.md); "
                                "shape-mismatched keys are skipped and reported"),
        "checkpoints": Key(Optional[str], None, "checkpoint prefix to resume from (epoch, optimizer, LR, best metric)"),
        "save_inference_dir": Key(str, "./inference", "where tools/export_model.py writes the inference model"),
        "update_freq": Key(int, 1, "gradient accumulation: one optimizer step every this many iterations",
                           minimum=1),
        "save_steps": Key(int, 0, "also save 'latest' every this many iterations, mid-epoch (0 = only at epoch "
                          "ends)", minimum=0),
        "to_static": Key(bool, False, "train through paddle.jit.to_static (static graph)"),
        "use_multilabel": Key(bool, False, "multi-label classification (PaddleClas's key): MultiLabelDataset, "
                              "multi-label losses and metrics, the export ends in a sigmoid and inference prints "
                              "the classes above Infer.threshold"),
        "conv_backend": Key(str, "auto", "convolution kernels of dynamic-mode training and evaluation: onednn "
                            "(ppnets's oneDNN kernels, CPU), paddle (Paddle's) or auto (onednn on the CPU)",
                            ("auto", "onednn", "paddle")),
        "trust_pickles": Key(bool, False, "read .pdparams/.pdopt/.pdstates/.pdema with Paddle's unrestricted "
                             "unpickler, which can run code from the file (default: only arrays, dicts, lists, "
                             "numbers and strings are read); only for files you trust"),
        "weights_format": Key(str, "pdparams", "file format of the model and EMA weights in checkpoints: pdparams "
                              "(Paddle's pickle, what PaddleClas reads) or safetensors (tensors only, "
                              "<prefix>.safetensors)", ("pdparams", "safetensors")),
    }),
    "Arch": Section({
        "name": Key(str, REQUIRED, "registered model name (ppnets.list_models()), or DistillationModel"),
        "class_num": Key(int, 1000, "number of classes", minimum=1, maximum=MAX_CLASSES),
        "pretrained_sha256": Key(Optional[str], None, "the SHA-256 the starting weights must have (of "
                                 "Global.pretrained_model when training, of published weights always), checked "
                                 "before they are read; a PaddleClas or URL download that differs is not cached",
                                 fill=False),
        "pretrained_mirror": Key(Optional[str], None, "a mirror of PaddleClas's weights: replaces "
                                 "https://paddle-imagenet-models-name.bj.bcebos.com in their URLs (also the "
                                 "PPNETS_PADDLECLAS_MIRROR variable; timm's hub: HF_ENDPOINT)", fill=False),
    }, options_of=MODELS, option_ranges=ARCH_OPTION_RANGES, variants={DISTILLATION: _DISTILLATION_ARCH}),
    "Loss": Section({
        "Train": Key(NamedList(LOSSES), [{"CELoss": {}}], "losses summed during training, e.g. "
                     "[{CELoss: {epsilon: 0.1}}]"),
        "Eval": Key(NamedList(LOSSES), [{"CELoss": {}}], "losses reported during evaluation"),
    }),
    "Optimizer": Section({
        "name": Key(str, "Momentum", "Momentum, SGD, Adam, AdamW or RMSProp"),
        "lr": Key(Named(LR_SCHEDULES), {"name": "Cosine", "learning_rate": 0.1}, "LR schedule {name, "
                  "learning_rate, warmup_epoch, warmup_start_lr, by_epoch, …}: Constant, Cosine, Piecewise, Step, "
                  "MultiStep, Exponential, Polynomial or OneCycle"),
        "regularizer": Key(Optional[dict], None, "coupled weight decay {name: L2 or L1, coeff}"),
        "clip_norm": Key(Optional[float], None, "clip the gradients to this global L2 norm (null = no clipping)",
                         greater_than=0),
        "one_dim_param_no_weight_decay": Key(bool, False, "no weight decay on 1-D parameters: norm-layer "
                                             "scales/shifts and all biases"),
        "no_weight_decay_name": Key(Union[str, List[str], None], None, "no weight decay on parameters whose "
                                    "structured name contains one of these strings, e.g. [bn, bias] or "
                                    "'bn bias' (PaddleClas's form)"),
    }, options_of=OPTIMIZERS),
    "DataLoader": Section({
        "Train": _loader_split(),
        "Eval": _loader_split(),
    }),
    "Metric": Section({
        "Train": Key(NamedList(METRICS), [{"TopkAcc": {"topk": [1, 5]}}], "metrics logged during training"),
        "Eval": Key(NamedList(METRICS), [{"TopkAcc": {"topk": [1, 5]}}], "metrics of evaluation; the first value "
                    "picks best_model"),
    }),
    "EMA": Section({
        "decay": Key(Optional[float], None, "keep an exponential moving average of the weights with this decay "
                                            "(e.g. 0.9999); evaluated beside the raw model, saved as .pdema",
                     greater_than=0, less_than=1),
    }),
    "AMP": Section({
        "enabled": Key(bool, False, "automatic mixed precision (paddle.amp)"),
        "level": Key(str, "O1", "O1: per-op casting; O2: fp16/bf16 weights with fp32 master copies", ("O1", "O2")),
        "dtype": Key(str, "auto", "float16 (GPU), bfloat16 (CPUs with bf16 support) or auto",
                     ("auto", "float16", "bfloat16")),
        "scale_loss": Key(float, 65536.0, "initial loss scale (float16 only)", greater_than=0),
        "use_dynamic_loss_scaling": Key(bool, True, "adapt the loss scale on overflow (float16 only)"),
        "eval": Key(bool, True, "also evaluate under autocast (PaddleClas: use_fp16_test); false = float32 "
                    "evaluation"),
        "use_promote": Key(bool, True, "paddle.amp.auto_cast's type promotion of ops with mixed input dtypes"),
    }),
    "Infer": Section({
        "infer_imgs": Key(Optional[str], None, "an image file or a folder of images for tools/infer.py"),
        "batch_size": Key(int, 8, "images per forward pass", minimum=1),
        "transforms": Key(NamedList(TRANSFORMS), None, "preprocessing ops (default: DataLoader.Eval's)"),
        "topk": Key(int, 5, "how many classes to print per image", minimum=1),
        "threshold": Key(float, 0.5, "multi-label models: print the classes whose sigmoid reaches this (PaddleClas: "
                         "PostProcess MultiLabelThreshOutput.threshold)", minimum=0.0, maximum=1.0),
        "class_id_map_file": Key(Optional[str], None, "label names: one per line, or PaddleClas's 'id name' lines "
                                 "(default: the training label list)"),
    }),
    "Export": Section({
        "softmax": Key(bool, True, "append a softmax so the inference model outputs probabilities"),
        "batch_size": Key(Optional[int], None, "fixed batch size of the exported input (null = dynamic)", minimum=1),
        "formats": Key(List[str], ["paddle"], "what to write: paddle (inference.json/.pdiparams) and/or onnx "
                       "(inference.onnx, paddle2onnx, checked against paddle.inference)"),
        "onnx_opset": Key(int, 13, "ONNX opset of inference.onnx (13 or higher)", minimum=13, maximum=23),
        "reparameterize": Key(bool, True, "fuse the model's re-parameterizable branches (MobileOne, RepViT, "
                              "PP-LCNetV2 …) into single convolutions before tracing; no effect on other models"),
    }),
}
