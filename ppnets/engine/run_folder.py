"""A run's folder: ``<Global.output_dir>/<model>``, named after the model the config builds, and
never taken over by another run without being asked.

- :func:`run_name`: ``Arch.name``, or — when ``Arch`` changes the model's options (``-o Arch.scale=0.75``)
  — the registered model those options make (``MobileNetV2_x0_75``), else ``Arch.name`` with the
  changed options (``MobileNetV2_x0_5-scale0.6``). ``class_num``, ``features_only``, ``out_indices``,
  ``freeze_stages`` and the options that only act during training (``dropout``, ``drop_path_rate``,
  ``bn_momentum`` …: the trained model computes the same function with any value of them) do not
  rename the folder.
- :func:`claim_run_folder`: a new run into a folder that already holds a run's checkpoints (finished,
  interrupted, or of another model) is refused with one line offering the three ways on; a resume
  from a checkpoint in the folder continues that run; ``Global.overwrite: true`` removes the previous
  run's checkpoints, VisualDL records and log first.
"""
from __future__ import annotations

import glob
import hashlib
import inspect
import os
from typing import Any, Dict, List, Optional, Tuple

import yaml

from ..arch.registry import MODELS, ModelInfo
from ..checkpoint.serialization import load
from ..errors import ConfigError

__all__ = ["run_name", "claim_run_folder", "run_checkpoints"]

#: Arch keys that change how a model is used, not which model it is
_NOT_IDENTITY = ("name", "class_num", "features_only", "out_indices", "freeze_stages")
#: an option whose name holds one of these acts only during training (dropout, drop path, BatchNorm momentum)
_TRAINING_ONLY = ("drop", "momentum")


def _identity(key: str) -> bool:
    return key not in _NOT_IDENTITY and not any(part in key for part in _TRAINING_ONLY)
_ABSENT = object()


def _options(info: ModelInfo) -> Dict[str, Any]:
    """Every option of a registered model: its class's defaults, then its registered values."""
    params = inspect.signature(info.cls).parameters.values()
    found = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
    found.update(info.defaults)
    return {k: v for k, v in found.items() if _identity(k)}


def _fmt(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if len(text) > 24:  # a table (Arch.arch): its digest
        return hashlib.sha1(text.encode()).hexdigest()[:8]
    return "".join(c if c.isalnum() or c in "._" else "_" for c in text)


def run_name(arch: Dict[str, Any]) -> str:
    """The folder name of the model ``arch`` builds (see the module docstring)."""
    name = arch.get("name")
    if not isinstance(name, str) or name not in MODELS:  # a DistillationModel keeps its name
        return str(name)
    info = MODELS.get(name)
    own = _options(info)
    changed = {k: v for k, v in arch.items() if _identity(k) and own.get(k, _ABSENT) != v}
    if not changed:
        return name
    wanted = {**own, **changed}
    for other in MODELS.names():
        candidate = MODELS.get(other)
        if candidate.cls is info.cls and _options(candidate) == wanted:
            return other
    return name + "".join(f"-{k}{_fmt(v)}" for k, v in sorted(changed.items()))


def run_checkpoints(folder: str) -> List[str]:
    """Prefixes of the checkpoints in ``folder`` (``latest``, ``best_model``, ``epoch_N`` …), sorted."""
    return sorted(p[: -len(".pdstates")] for p in glob.glob(os.path.join(glob.escape(folder), "*.pdstates")))


def _describe(folder: str, prefixes: List[str], arch: Dict[str, Any]) -> Tuple[str, bool]:
    """``a finished run (MobileNetV2_x0_5, 10 classes, epoch 30 of 30 done)`` from the run's checkpoints
    and config, and whether it finished."""
    latest = os.path.join(folder, "latest")
    prefix = latest if latest in prefixes else prefixes[-1]
    try:
        states, _ = load(prefix + ".pdstates", "checkpoint states")
        model, classes, done = states.get("arch"), states.get("class_num"), int(states.get("epoch", 0))
    except Exception:  # unreadable states: the files still belong to a run
        return f"the checkpoints of another run ({', '.join(os.path.basename(p) for p in prefixes)})", False
    epochs = None
    try:
        with open(os.path.join(folder, "config.yaml"), encoding="utf-8") as f:
            epochs = int(yaml.safe_load(f)["Global"]["epochs"])
    except Exception:  # no config.yaml (a folder from elsewhere): the epoch count is enough
        pass
    other = model not in (None, run_name(arch), arch.get("name")) or classes not in (None, arch.get("class_num"))
    finished = epochs is not None and done >= epochs
    kind = "a run of another model" if other else "a finished run" if finished else "an unfinished run"
    of = f" of {epochs}" if epochs is not None else ""
    return f"{kind} ({model or 'model unknown'}, {classes or '?'} classes, epoch {done}{of} done)", finished


def _free_output_dir(output_dir: str, name: str) -> str:
    base = output_dir.rstrip("/\\") or "."
    n = 2
    while run_checkpoints(os.path.join(f"{base}_{n}", name)):
        n += 1
    return f"{base}_{n}"


def _same_folder(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def claim_run_folder(config: Dict[str, Any], folder: str) -> Optional[str]:
    """Make ``folder`` this run's, or raise :class:`ConfigError` (see the module docstring).
    Returns a line for the log when a previous run was removed (``Global.overwrite: true``)."""
    g = config["Global"]
    prefixes = run_checkpoints(folder)
    if not prefixes:
        return None
    if g["checkpoints"] and _same_folder(os.path.dirname(os.path.abspath(g["checkpoints"])), folder):
        return None  # resuming the run this folder holds
    if not g["overwrite"]:
        held, finished = _describe(folder, prefixes, config["Arch"])
        resume = f"-o Global.checkpoints={os.path.join(folder, 'latest')}"
        resume = f"continue it with {resume} and a higher Global.epochs" if finished else f"resume it with {resume}"
        other = _free_output_dir(g["output_dir"], os.path.basename(folder))
        raise ConfigError(f"Global.output_dir: {folder} already holds {held}; {resume}, write this run elsewhere "
                          f"with -o Global.output_dir={other}, or replace it with -o Global.overwrite=true")
    for prefix in prefixes:
        stem = prefix[: -len(".bak")] if prefix.endswith(".bak") else prefix
        for path in glob.glob(glob.escape(stem) + ".*"):
            os.remove(path)
    gone = [os.path.basename(p) for p in prefixes if not p.endswith(".bak")]
    for path in glob.glob(os.path.join(glob.escape(folder), "vdl", "vdlrecords*")) + \
            glob.glob(os.path.join(glob.escape(folder), "train.log")):
        os.remove(path)
    return f"Global.overwrite: removed the previous run from {folder} ({', '.join(gone)}, VisualDL records, train.log)"
