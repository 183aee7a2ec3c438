"""Rules that span sections, checked after each section is valid on its own.

- A DistillationModel's outputs are ``{label: logits}``: training losses and metrics must be the
  Distillation* ones and name existing models; evaluation runs only ``Arch.infer_model_name``, so
  evaluation losses and metrics may name only that model (plain ones then apply to it).
- Distillation* losses and metrics need a DistillationModel.
- ``best_model`` is picked by the first value of ``Metric.Eval``, which must grow with quality.
- ``ClassBalancedSampler`` (and its options) is for training only.
- ``Global.use_multilabel`` goes with multi-label datasets, losses and metrics only (and neither
  Mixup/CutMix nor the class-balanced sampler, which need one class per image).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from ..arch.distillation import inference_arch, is_distillation, submodels
from ..data import DATASETS
from ..loss import LOSSES
from ..metric import METRICS
from ..registry import Registry

__all__ = ["cross_check"]

Add = Callable[[str], None]


def _model_names(options: Any) -> Optional[List[str]]:
    """The model labels a loss/metric names (PaddleClas's keys), or None for a single-model one."""
    if not isinstance(options, dict):
        return None
    if "model_name_pairs" in options:
        pairs = options["model_name_pairs"] or []
        return [n for p in pairs if isinstance(p, (list, tuple)) for n in p]
    if "model_names" in options:
        return list(options["model_names"] or [])
    if "model_key" in options:
        return [options["model_key"]]
    return None


def _items(section: Any, split: str) -> List[tuple]:
    items = (section or {}).get(split) if isinstance(section, dict) else None
    return [(i, *next(iter(item.items()))) for i, item in enumerate(items or []) if isinstance(item, dict) and item]


def _check_components(cfg: Dict[str, Any], section: str, registry: Registry, add: Add) -> None:
    arch = cfg.get("Arch") or {}
    distill = is_distillation(arch)
    labels = [label for label, _ in submodels(arch)] if distill else []
    evaluated = inference_arch(arch)[1] if distill else None
    plain = "DistillationGTCELoss with model_names" if registry is LOSSES else "DistillationTopkAcc with model_key"
    for split in ("Train", "Eval"):
        for i, name, options in _items(cfg.get(section), split):
            where = f"{section}.{split}.{i}.{name}"
            names = _model_names(options)
            if names is None:
                if distill and split == "Train":
                    add(f"{where}: Arch is a DistillationModel whose output is {{{', '.join(labels)}}}; use {plain} "
                        f"(e.g. [{evaluated or labels[-1]}])")
            elif not distill:
                add(f"{where}: needs Arch.name: DistillationModel (it compares the outputs of named models)")
            else:
                unknown = [n for n in names if n not in labels]
                if unknown:
                    add(f"{where}: unknown model {', '.join(map(repr, unknown))}; the models are {', '.join(labels)}")
                elif split == "Eval" and any(n != evaluated for n in names):
                    add(f"{where}: evaluation runs only Arch.infer_model_name ({evaluated}); name only it, "
                        f"e.g. model_names: [{evaluated}] / model_key: {evaluated}")


def _check_best_metric(cfg: Dict[str, Any], add: Add) -> None:
    items = _items(cfg.get("Metric"), "Eval")
    if not items or items[0][1] not in METRICS:
        return
    _, name, _ = items[0]
    if getattr(METRICS.get(name), "lower_is_better", ()):
        add(f"Metric.Eval.0.{name}: lower is better, but the first metric of Metric.Eval picks best_model (the "
            "highest value); list another metric first (e.g. AccuracyScore or MultiLabelMAP)")


def _check_samplers(cfg: Dict[str, Any], add: Add) -> None:
    loader = cfg.get("DataLoader") or {}
    for split, section in loader.items():
        sampler = section.get("sampler") if isinstance(section, dict) else None
        if not isinstance(sampler, dict):
            continue
        if sampler.get("name") == "ClassBalancedSampler":
            if split != "Train":
                add(f"DataLoader.{split}.sampler.name: ClassBalancedSampler draws with replacement, which is for "
                    "training only; use DistributedBatchSampler")
        else:
            for key in ("exponent", "num_samples"):
                if sampler.get(key) is not None:
                    add(f"DataLoader.{split}.sampler.{key}: only ClassBalancedSampler takes it (the sampler is "
                        f"{sampler.get('name')})")


def _multilabel(registry: Registry, name: Any) -> bool:
    return isinstance(name, str) and name in registry and bool(getattr(registry.get(name), "multilabel", False))


def _check_multilabel(cfg: Dict[str, Any], add: Add) -> None:
    on = bool((cfg.get("Global") or {}).get("use_multilabel"))
    for section, registry in (("Loss", LOSSES), ("Metric", METRICS)):
        kind = registry.kind
        choices = ", ".join(n for n in registry.names() if _multilabel(registry, n))
        for split in ("Train", "Eval"):
            for i, name, _ in _items(cfg.get(section), split):
                where = f"{section}.{split}.{i}.{name}"
                if on and not _multilabel(registry, name):
                    add(f"{where}: Global.use_multilabel is true; use a multi-label {kind} ({choices})")
                elif not on and _multilabel(registry, name):
                    add(f"{where}: a multi-label {kind}; set Global.use_multilabel: true (with MultiLabelDataset)")
    for split, section in (cfg.get("DataLoader") or {}).items():
        dataset = (section or {}).get("dataset") or {}
        if not isinstance(dataset, dict):
            continue
        where = f"DataLoader.{split}.dataset"
        if on != _multilabel(DATASETS, dataset.get("name")):
            add(f"{where}.name: {dataset.get('name')} with Global.use_multilabel: {str(on).lower()}; "
                + ("use MultiLabelDataset (PaddleClas's 'path<TAB>0,1,…' list)" if on
                   else "set Global.use_multilabel: true"))
        if on and dataset.get("batch_transform_ops"):
            add(f"{where}.batch_transform_ops: Mixup/CutMix build single-label soft targets; remove them for "
                "multi-label training")
        if on and ((section or {}).get("sampler") or {}).get("name") == "ClassBalancedSampler":
            add(f"DataLoader.{split}.sampler.name: ClassBalancedSampler needs one class per image; not for "
                "multi-label data")


def cross_check(cfg: Dict[str, Any], add: Add) -> None:
    """Report (``add(message)``) every rule of this module that ``cfg`` breaks."""
    arch = cfg.get("Arch")
    if not isinstance(arch, dict):
        return
    _check_components(cfg, "Loss", LOSSES, add)
    _check_components(cfg, "Metric", METRICS, add)
    _check_best_metric(cfg, add)
    _check_samplers(cfg, add)
    _check_multilabel(cfg, add)
    if is_distillation(arch) and (cfg.get("Global") or {}).get("to_static"):
        add("Global.to_static: not supported with Arch DistillationModel (it trains in dynamic graph); set it false")
