"""YAML configs: loading, ``_base_`` inheritance, ``-o`` overrides and schema validation.

A config has PaddleClas's sections (``Global``, ``Arch``, ``Loss``, ``Optimizer``,
``DataLoader``, ``Metric``, ``Infer``, ``Export``). Files are read with
``yaml.safe_load`` semantics only; command-line values are parsed as YAML scalars or
lists, never evaluated. :data:`SCHEMA` is the single description of every fixed key
(type, default, meaning); the keyword arguments of named components (a model, a
transform op, an optimizer …) are checked against the signature of the component
they configure.
"""
from __future__ import annotations

import copy
import os
import re
import typing
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from .errors import ConfigError, did_you_mean

__all__ = ["load_config", "parse_overrides", "apply_overrides", "merge", "validate", "dump_config",
           "SCHEMA", "Key", "check_type", "config_reference", "component_reference"]


# --------------------------------------------------------------------------- YAML

class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _yaml_load(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        pos = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}:{pos}: malformed YAML: {problem}") from None


def _read_yaml_file(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    data = _yaml_load(text, path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def merge(base: Dict[str, Any], child: Dict[str, Any]) -> Dict[str, Any]:
    """Deep-merge ``child`` into a copy of ``base``: dicts merge, everything else is replaced.

    A child dict with ``_delete_: true`` replaces the base dict instead of merging (mmpretrain's rule).
    """
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and value.get("_delete_"):
            out[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "_delete_"}
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_with_bases(path: str, chain: Tuple[str, ...] = ()) -> Dict[str, Any]:
    path = os.path.abspath(path)
    if path in chain:
        raise ConfigError(f"{path}: _base_ inheritance cycle: {' -> '.join(chain + (path,))}")
    data = _read_yaml_file(path)
    bases = data.pop("_base_", None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: _base_: expected a file name or a list of file names, got {bases!r}")
    merged: Dict[str, Any] = {}
    for base in bases:
        base_path = base if os.path.isabs(base) else os.path.join(os.path.dirname(path), base)
        merged = merge(merged, _load_with_bases(base_path, chain + (path,)))
    return merge(merged, data)


# --------------------------------------------------------------------------- overrides

def parse_overrides(items: Optional[Sequence[str]]) -> List[Tuple[List[str], Any]]:
    """Parse ``["Global.epochs=5", …]`` into ``[(["Global", "epochs"], 5), …]``.

    Values are YAML (``5`` → int, ``0.5`` → float, ``[1, 2]`` → list, ``null`` → None,
    ``abc`` → str); nothing is evaluated.
    """
    parsed = []
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"bad override '{item}': expected Section.key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not key.strip() or any(not p for p in parts):
            raise ConfigError(f"bad override '{item}': expected Section.key=value")
        parsed.append((parts, _yaml_load(value, f"override '{item}'") if value.strip() else ""))
    return parsed


def apply_overrides(cfg: Dict[str, Any], overrides: Sequence[Tuple[List[str], Any]]) -> Dict[str, Any]:
    """Set each dotted path in ``cfg`` (list items by index), creating missing dict levels."""
    for parts, value in overrides:
        node: Any = cfg
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            where = ".".join(parts[:depth + 1])
            if isinstance(node, list):
                if not re.fullmatch(r"-?\d+", part):
                    raise ConfigError(f"override {'.'.join(parts)}: '{'.'.join(parts[:depth])}' is a list; "
                                      f"expected an index, got '{part}'")
                idx = int(part)
                if not -len(node) <= idx < len(node):
                    raise ConfigError(f"override {'.'.join(parts)}: index {idx} out of range "
                                      f"(the list has {len(node)} items)")
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(f"override {'.'.join(parts)}: '{where}' cannot be set, "
                                  f"its parent is a {type(node).__name__}")
    return cfg


# --------------------------------------------------------------------------- schema

REQUIRED = object()


@dataclass
class Key:
    """One fixed config key: expected type (a typing annotation), default and meaning."""

    type: Any
    default: Any = None
    doc: str = ""
    choices: Optional[Tuple[Any, ...]] = None
    minimum: Optional[int] = None  #: smallest allowed value of a number (null always passes)
    length: Optional[int] = None  #: required number of items of a list


#: A component spec like ``{name: Cosine, learning_rate: 0.1}`` (validated by its registry).
NAMED = "named"
#: A list of single-key dicts like ``[{CELoss: {epsilon: 0.1}}]`` (validated by its registry).
NAMED_LIST = "named_list"

_DATASET = {
    "name": Key(str, "ImageFolder", "dataset class: ImageFolder (class = sub-folder) or FileListDataset"),
    "batch_transform_ops": Key(NAMED_LIST, None, "training batch ops, e.g. [{MixupOperator: {alpha: 0.2}}] or "
                               "[{MixupCutmix: {mixup_alpha: 0.8, cutmix_alpha: 1.0, switch_prob: 0.5}}]; "
                               "targets become soft (N, Arch.class_num)"),
    "_rest_": NAMED,  # the other keys are the dataset's keyword arguments
}
_LOADER_SPLIT = {
    "dataset": _DATASET,
    "sampler": {
        "name": Key(str, "DistributedBatchSampler", "batch sampler", ("DistributedBatchSampler", "BatchSampler")),
        "batch_size": Key(int, 64, "samples per batch and per process", minimum=1),
        "shuffle": Key(bool, False, "shuffle every epoch (seeded by Global.seed and the epoch)"),
        "drop_last": Key(bool, False, "drop the last incomplete batch"),
    },
    "loader": {
        "num_workers": Key(int, 0, "worker processes decoding images (0 = in the main process)", minimum=0),
        "use_shared_memory": Key(bool, True, "pass batches from workers through shared memory"),
    },
}

SCHEMA: Dict[str, Any] = {
    "Global": {
        "epochs": Key(int, 10, "number of training epochs", minimum=1),
        "output_dir": Key(str, "./output", "checkpoints, logs, VisualDL and the resolved config go to <output_dir>/<Arch.name>"),
        "device": Key(str, "cpu", "cpu or gpu", ("cpu", "gpu")),
        "seed": Key(Optional[int], 42, "random seed of weights, data order and augmentation (null = unseeded)"),
        "save_interval": Key(int, 1, "write epoch_N checkpoints every this many epochs (0 = never)", minimum=0),
        "eval_during_train": Key(bool, True, "evaluate on DataLoader.Eval during training"),
        "eval_interval": Key(int, 1, "evaluate every this many epochs", minimum=1),
        "print_batch_step": Key(int, 10, "log a training line every this many iterations", minimum=1),
        "use_visualdl": Key(bool, True, "write VisualDL scalars under <output_dir>/<Arch.name>/vdl"),
        "image_shape": Key(List[int], [3, 224, 224], "C, H, W of the network input (export and analysis)",
                           minimum=1, length=3),
        "pretrained_model": Key(Optional[str], None, "weights prefix or .pdparams to initialise from (PaddleClas files accepted); shape-mismatched keys are skipped and reported"),
        "checkpoints": Key(Optional[str], None, "checkpoint prefix to resume from (epoch, optimizer, LR, best metric)"),
        "save_inference_dir": Key(str, "./inference", "where tools/export_model.py writes the inference model"),
        "update_freq": Key(int, 1, "gradient accumulation: one optimizer step every this many iterations",
                           minimum=1),
        "save_steps": Key(int, 0, "also save 'latest' every this many iterations, mid-epoch (0 = only at epoch ends)",
                          minimum=0),
        "to_static": Key(bool, False, "train through paddle.jit.to_static (static graph)"),
    },
    "Arch": {
        "name": Key(str, REQUIRED, "registered model name (ppnets.list_models())"),
        "class_num": Key(int, 1000, "number of classes", minimum=1),
        "_rest_": "model",  # the model's own keyword arguments (e.g. scale, dropout)
    },
    "Loss": {
        "Train": Key(NAMED_LIST, [{"CELoss": {}}], "losses summed during training, e.g. [{CELoss: {epsilon: 0.1}}]"),
        "Eval": Key(NAMED_LIST, [{"CELoss": {}}], "losses reported during evaluation"),
    },
    "Optimizer": {
        "name": Key(str, "Momentum", "Momentum, SGD, Adam, AdamW or RMSProp"),
        "lr": Key(NAMED, {"name": "Cosine", "learning_rate": 0.1}, "LR schedule {name, learning_rate, warmup_epoch, "
                  "warmup_start_lr, by_epoch, …}: Constant, Cosine, Piecewise, Step, MultiStep, Exponential, "
                  "Polynomial or OneCycle"),
        "regularizer": Key(Optional[dict], None, "coupled weight decay {name: L2 or L1, coeff}"),
        "clip_norm": Key(Optional[float], None, "clip the gradients to this global L2 norm (null = no clipping)"),
        "one_dim_param_no_weight_decay": Key(bool, False, "no weight decay on 1-D parameters: norm-layer "
                                             "scales/shifts and all biases"),
        "no_weight_decay_name": Key(Union[str, List[str], None], None, "no weight decay on parameters whose "
                                    "structured name contains one of these strings, e.g. [bn, bias] or "
                                    "'bn bias' (PaddleClas's form)"),
        "_rest_": "optimizer",  # momentum, weight_decay, beta1 … checked against the optimizer
    },
    "DataLoader": {
        "Train": _LOADER_SPLIT,
        "Eval": _LOADER_SPLIT,
    },
    "Metric": {
        "Train": Key(NAMED_LIST, [{"TopkAcc": {"topk": [1, 5]}}], "metrics logged during training"),
        "Eval": Key(NAMED_LIST, [{"TopkAcc": {"topk": [1, 5]}}], "metrics of evaluation; the first value picks best_model"),
    },
    "EMA": {
        "decay": Key(Optional[float], None, "keep an exponential moving average of the weights with this decay "
                                            "(e.g. 0.9999); evaluated beside the raw model, saved as .pdema"),
    },
    "AMP": {
        "enabled": Key(bool, False, "automatic mixed precision (paddle.amp)"),
        "level": Key(str, "O1", "O1: per-op casting; O2: fp16/bf16 weights with fp32 master copies", ("O1", "O2")),
        "dtype": Key(str, "auto", "float16 (GPU), bfloat16 (CPUs with bf16 support) or auto",
                     ("auto", "float16", "bfloat16")),
        "scale_loss": Key(float, 65536.0, "initial loss scale (float16 only)"),
        "use_dynamic_loss_scaling": Key(bool, True, "adapt the loss scale on overflow (float16 only)"),
    },
    "Infer": {
        "infer_imgs": Key(Optional[str], None, "an image file or a folder of images for tools/infer.py"),
        "batch_size": Key(int, 8, "images per forward pass", minimum=1),
        "transforms": Key(NAMED_LIST, None, "preprocessing ops (default: DataLoader.Eval's)"),
        "topk": Key(int, 5, "how many classes to print per image", minimum=1),
        "class_id_map_file": Key(Optional[str], None, "label names, one per line (default: the training label list)"),
    },
    "Export": {
        "softmax": Key(bool, True, "append a softmax so the inference model outputs probabilities"),
        "batch_size": Key(Optional[int], None, "fixed batch size of the exported input (null = dynamic)", minimum=1),
        "formats": Key(List[str], ["paddle"], "what to write: paddle (inference.json/.pdiparams) and/or onnx "
                       "(inference.onnx, paddle2onnx, checked against paddle.inference)"),
        "onnx_opset": Key(int, 13, "ONNX opset of inference.onnx (13 or higher)", minimum=13),
    },
}


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, Sequence, typing.Sequence) or tp in (list, tuple):
        args = typing.get_args(tp)
        return f"list of {_type_name(args[0])}" if args and args[0] is not Ellipsis else "list"
    if origin is dict or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def check_type(value: Any, tp: Any) -> Tuple[bool, Any]:
    """Return ``(ok, value)`` for ``value`` against the annotation ``tp``; ints are accepted as floats."""
    if tp is Any or tp is None or isinstance(tp, str):
        return True, value
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        for arg in typing.get_args(tp):
            ok, v = check_type(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if origin in (list, tuple, typing.Sequence) or origin is not None and origin.__name__ == "Sequence" \
            or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return False, value
            items = [check_type(v, a) for v, a in zip(value, args)]
        else:
            inner = args[0] if args else Any
            items = [check_type(v, inner) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, [v for _, v in items]
    if origin is dict or tp is dict:
        return isinstance(value, dict), value
    if isinstance(tp, type):
        return isinstance(value, tp), value
    return True, value


def _type_error(where: str, value: Any, tp: Any) -> ConfigError:
    return ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r} ({_type_name(type(value))})")


def _check_kwargs_typed(fn: Any, kwargs: Dict[str, Any], where: str, untyped: Tuple[str, ...] = ()) -> None:
    """Check keyword names and types against ``fn``'s signature and annotations (``untyped``: names only)."""
    import inspect

    from .registry import check_kwargs

    check_kwargs(fn, kwargs, where)
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: names were checked, types are not
        hints = {}
    for key, value in kwargs.items():
        if key in hints and key not in untyped:
            ok, new = check_type(value, hints[key])
            if not ok:
                raise _type_error(f"{where}.{key}", value, hints[key])
            kwargs[key] = new


def _validate_named_list(value: Any, where: str, registry: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of {{Name: {{options}}}} items, got {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{where}.{i}: expected one {{Name: {{options}}}} mapping, got {item!r}")
        (name, kwargs), = item.items()
        fn = registry.get(name, f"{where}.{i}")
        if kwargs is None:
            item[name] = kwargs = {}
        if not isinstance(kwargs, dict):
            raise ConfigError(f"{where}.{i}.{name}: expected a mapping of options, got {kwargs!r}")
        _check_kwargs_typed(fn, kwargs, f"{where}.{i}.{name}")


def _component_registries() -> Dict[str, Any]:
    from .arch.registry import MODELS
    from .data import BATCH_TRANSFORMS, DATASETS, TRANSFORMS
    from .loss import LOSSES
    from .metric import METRICS
    from .optimizer import LR_SCHEDULES, OPTIMIZERS
    return {"model": MODELS, "dataset": DATASETS, "transform": TRANSFORMS, "batch_transform": BATCH_TRANSFORMS,
            "loss": LOSSES,
            "metric": METRICS, "optimizer": OPTIMIZERS, "lr": LR_SCHEDULES}


def _validate_section(node: Any, schema: Dict[str, Any], where: str, regs: Dict[str, Any]) -> Dict[str, Any]:
    if node is None:
        node = {}
    if not isinstance(node, dict):
        raise ConfigError(f"{where}: expected a mapping, got {node!r}")
    rest = schema.get("_rest_")
    fixed = {k: v for k, v in schema.items() if k != "_rest_"}
    for key in list(node):
        if key not in fixed and rest is None:
            raise ConfigError(f"{where}: unknown key '{key}'{did_you_mean(key, fixed)}; "
                              f"valid: {', '.join(fixed)}")
    for key, spec in fixed.items():
        path = f"{where}.{key}"
        if isinstance(spec, dict):
            node[key] = _validate_section(node.get(key), spec, path, regs)
            continue
        if key not in node:
            if spec.default is REQUIRED:
                raise ConfigError(f"{path}: required key is missing")
            node[key] = copy.deepcopy(spec.default)
            continue
        value = node[key]
        if spec.type == NAMED_LIST:
            kind = "batch_transform" if key == "batch_transform_ops" else \
                {"Loss": "loss", "Metric": "metric"}.get(where.split(".")[0], "transform")
            _validate_named_list(value, path, regs[kind])
        elif spec.type == NAMED:
            if not isinstance(value, dict) or "name" not in value:
                raise ConfigError(f"{path}: expected a mapping with a 'name', got {value!r}")
            fn = regs["lr"].get(value["name"], f"{path}.name")
            kwargs = {k: v for k, v in value.items() if k != "name"}
            _check_kwargs_typed(fn, kwargs, path)
            node[key] = {"name": value["name"], **kwargs}
        else:
            ok, new = check_type(value, spec.type)
            if not ok:
                raise _type_error(path, value, spec.type)
            if spec.choices and new not in spec.choices:
                raise ConfigError(f"{path}: expected one of {', '.join(map(str, spec.choices))}, got {new!r}"
                                  f"{did_you_mean(str(new), map(str, spec.choices))}")
            if spec.length is not None and new is not None and len(new) != spec.length:
                raise ConfigError(f"{path}: expected {spec.length} items, got {new!r}")
            items = new if isinstance(new, list) else [new]
            if spec.minimum is not None and any(v is not None and v < spec.minimum for v in items):
                raise ConfigError(f"{path}: expected {'numbers' if isinstance(new, list) else 'a number'} "
                                  f">= {spec.minimum}, got {new!r}")
            node[key] = new
    if rest is not None:
        extra = {k: v for k, v in node.items() if k not in fixed}
        if rest == "model":
            info = regs["model"].get(node["name"], f"{where}.name")
            _check_kwargs_typed(info.cls, extra, where)
        elif rest == "optimizer":
            _check_kwargs_typed(regs["optimizer"].get(node["name"], f"{where}.name"), extra, where)
        elif rest == NAMED:
            if "transform_ops" in extra:
                _validate_named_list(extra["transform_ops"], f"{where}.transform_ops", regs["transform"])
            _check_kwargs_typed(regs["dataset"].get(node["name"], f"{where}.name"), extra, where,
                                untyped=("transform_ops",))
        node.update(extra)
    return node


def validate(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Check ``cfg`` against :data:`SCHEMA` and the components it names; fill defaults in place."""
    regs = _component_registries()
    for section in list(cfg):
        if section not in SCHEMA:
            raise ConfigError(f"unknown section '{section}'{did_you_mean(section, SCHEMA)}; "
                              f"valid: {', '.join(SCHEMA)}")
    if "Arch" not in cfg:
        raise ConfigError("Arch: required section is missing (at least Arch.name)")
    for section, schema in SCHEMA.items():
        if section == "DataLoader":
            node = cfg.get(section) or {}
            if not isinstance(node, dict):
                raise ConfigError(f"DataLoader: expected a mapping, got {node!r}")
            for split in list(node):
                if split not in schema:
                    raise ConfigError(f"DataLoader: unknown key '{split}'{did_you_mean(split, schema)}; "
                                      f"valid: {', '.join(schema)}")
            # only the splits a config declares are validated (an eval-only config has no Train)
            cfg[section] = {split: _validate_section(node[split], schema[split], f"DataLoader.{split}", regs)
                            for split in node}
        else:
            cfg[section] = _validate_section(cfg.get(section), schema, section, regs)
    return cfg


def load_config(path: str, overrides: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Read ``path`` (with its ``_base_`` chain), apply ``-o`` overrides, validate, fill defaults."""
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    cfg = _load_with_bases(path)
    apply_overrides(cfg, parse_overrides(overrides))
    return validate(cfg)


def dump_config(cfg: Dict[str, Any], path: str) -> None:
    """Write the resolved config as YAML (atomically)."""
    from .utils.files import atomic_open
    with atomic_open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, sort_keys=False, allow_unicode=True)


def config_reference() -> str:
    """A Markdown table of every fixed key of :data:`SCHEMA` (used by the README)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]

    def walk(schema: Dict[str, Any], prefix: str) -> None:
        for key, spec in schema.items():
            if key == "_rest_":
                rows.append(f"| `{prefix}.*` | | | other keys: the {'model' if spec == 'model' else spec if isinstance(spec, str) and spec != NAMED else 'dataset'}'s keyword arguments |")
                continue
            if isinstance(spec, dict):
                walk(spec, f"{prefix}.{key}")
                continue
            tp = spec.type if isinstance(spec.type, str) else _type_name(spec.type)
            tp = {"named_list": "list of {Name: {…}}", "named": "{name: …, …}"}.get(tp, tp)
            tp = tp.replace("list of ", f"list of {spec.length} ") if spec.length is not None else tp
            tp += f" ≥ {spec.minimum}" if spec.minimum is not None else ""
            default = "required" if spec.default is REQUIRED else yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix("...").strip()
            rows.append(f"| `{prefix}.{key}` | {tp} | `{default}` | {spec.doc} |")

    for section, schema in SCHEMA.items():
        walk(schema, section)
    return "\n".join(rows)


def _opt(p: Any) -> str:
    import inspect
    if p.default is inspect.Parameter.empty:
        return p.name
    text = repr(p.default)
    return f"{p.name}=…" if len(text) > 40 else f"{p.name}={text}"


def component_reference() -> str:
    """A Markdown table of every named component (ops, datasets, losses …) with its options and defaults."""
    import inspect

    from .arch.registry import MODELS

    regs = _component_registries()
    rows = ["| section | name | options (default) | description |", "|---|---|---|---|"]
    where = {"transform": "transform_ops", "batch_transform": "batch_transform_ops", "dataset": "dataset.name",
             "loss": "Loss", "metric": "Metric",
             "optimizer": "Optimizer.name", "lr": "Optimizer.lr.name"}
    for kind, label in where.items():
        for name in regs[kind].names():
            fn = regs[kind].get(name)
            target = fn.__init__ if inspect.isclass(fn) else fn
            opts = [_opt(p) for p in inspect.signature(target).parameters.values()
                    if p.name not in ("self", "seed") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            doc = (inspect.getdoc(fn) or "").split("\n")[0].replace("|", "\\|")
            rows.append(f"| {label} | `{name}` | {', '.join(f'`{o}`' for o in opts) or '-'} | {doc} |")
    seen = set()
    for name in MODELS.names():
        cls = MODELS.get(name).cls
        if cls in seen:
            continue
        seen.add(cls)
        opts = [_opt(p) for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
        doc = (inspect.getdoc(cls) or "").split("\n")[0].replace("|", "\\|")
        rows.append(f"| Arch | `{cls.__name__}` family | {', '.join(f'`{o}`' for o in opts)} | {doc} |")
    return "\n".join(rows)
