"""Small training runs for the tests: the repository's paths, the tools as modules, a slice of the shipped
digits, ``-o`` overrides turning the default config into a seconds-long run, and a run's VisualDL history."""
from __future__ import annotations

import importlib.util
import os
import shutil
from types import ModuleType

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/
REPO = os.path.dirname(HERE)
DIGITS = os.path.join(REPO, "dataset", "digits")
TOOLS = os.path.join(REPO, "tools")


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_digits_slice(dst: str, classes=("0", "1", "2"), n_train: int = 40, n_val: int = 10) -> str:
    """Copy the first images of a few digit classes into ``dst/train`` and ``dst/val``."""
    for split, n in (("train", n_train), ("val", n_val)):
        for c in classes:
            src = os.path.join(DIGITS, split, c)
            os.makedirs(os.path.join(dst, split, c), exist_ok=True)
            for f in sorted(os.listdir(src))[:n]:
                shutil.copy(os.path.join(src, f), os.path.join(dst, split, c, f))
    return dst


def small_overrides(data_root: str, out_dir: str, **extra) -> list:
    """``-o`` overrides turning configs/mobilenetv2.yaml into a seconds-long run on ``data_root``."""
    items = {
        "Global.epochs": 2, "Global.output_dir": out_dir, "Global.print_batch_step": 1,
        "Global.save_inference_dir": os.path.join(out_dir, "inference"),
        "Arch.name": "MobileNetV2_x0_25", "Arch.class_num": 3,
        "DataLoader.Train.dataset.root": os.path.join(data_root, "train"),
        "DataLoader.Eval.dataset.root": os.path.join(data_root, "val"),
        "DataLoader.Train.sampler.batch_size": 16, "DataLoader.Train.loader.num_workers": 0,
        "DataLoader.Eval.sampler.batch_size": 8,
        "Optimizer.lr.learning_rate": 0.01,
        # no crop augmentation: a few dozen steps must visibly lower the loss
        "DataLoader.Train.dataset.transform_ops.1": "{ResizeImage: {size: 32}}",
        "Infer.infer_imgs": os.path.join(data_root, "val"),
    }
    items.update(extra)
    return [f"{k}={v}" for k, v in items.items()]


def load_small_config(data_root: str, out_dir: str, **extra) -> dict:
    from ppnets.config import load_config
    return load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"), small_overrides(data_root, out_dir, **extra))


def visualdl_history(run_dir: str) -> dict:
    """What VisualDL shows for a run folder: the record file its reader picks in ``vdl/`` (one per
    folder, the newest), read back with VisualDL's own reader as ``{tag: [(step, value), ...]}``."""
    from visualdl import LogReader

    (shown_dir, shown), = LogReader(logdir=os.path.join(run_dir, "vdl")).logs().items()
    reader = LogReader(file_path=os.path.join(shown_dir, shown))
    return {tag: [(r.id, r.value) for r in reader.get_data("scalar", tag)] for tag in reader.get_tags()["scalar"]}
