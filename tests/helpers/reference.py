"""Reference figures for the tests: ``tests/reference/model_sizes.md`` and the PaddleClas key manifests.

Both are copies of the project's read-only reference material, committed so CI can use them;
``tools/make_reference.py --ppcls PATH NAME…`` writes them for a new family from a PaddleClas checkout.
"""
from __future__ import annotations

import os
import re
from typing import Dict, List, Tuple

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "reference")

#: models that share their small siblings' code paths and are too big to train or export in CI: the
#: tests build and count them (sizes, keys, timm's logits) but do not train or export them
HEAVY = ({f"EfficientNetB{i}" for i in range(3, 8)} | {f"PPHGNetV2_B{i}" for i in range(3, 7)}
         | {"StarNet_S3", "StarNet_S4", "FasterNet_S", "FasterNet_M", "FasterNet_L"}
         | {f"GhostNetV3_x{s}" for s in ("1_0", "1_3", "1_6")}
         # MobileOne S2–S4 run S1's blocks (S4's squeeze-excite trains in tests/test_mobileone.py at a small
         # width and is exported by tests/test_zoo_export.py); the deep RepViTs run M0.9's blocks
         | {"MobileOne_s2", "MobileOne_s3", "MobileOne_s4", "RepViT_m1_5", "RepViT_m2_3"})


def model_sizes() -> Dict[str, Tuple[int, int, int]]:
    """name → (input size, params, MACs) from the PaddleClas-layout table."""
    out = {}
    with open(os.path.join(HERE, "model_sizes.md"), encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 4 and re.fullmatch(r"\d+", cells[1]) and re.fullmatch(r"[\d,]+", cells[2]):
                out[cells[0]] = (int(cells[1]), int(cells[2].replace(",", "")), int(cells[3].replace(",", "")))
    return out


def manifest(name: str) -> List[Tuple[str, List[int]]]:
    """PaddleClas's state_dict of ``name`` (class_num=1000): [(key, shape)] in order."""
    return _read_manifest(os.path.join(HERE, "paddleclas_keys", f"{name}.txt"))


def _read_manifest(path: str) -> List[Tuple[str, List[int]]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                key, shape = line.rstrip("\n").split(" ", 1)
                rows.append((key, [int(x) for x in re.findall(r"\d+", shape)]))
    return rows


def manifest_names() -> List[str]:
    """Names of every key manifest in ``paddleclas_keys/``."""
    return sorted(f[:-4] for f in os.listdir(os.path.join(HERE, "paddleclas_keys")) if f.endswith(".txt"))


def has_manifest(name: str) -> bool:
    return os.path.exists(os.path.join(HERE, "paddleclas_keys", f"{name}.txt"))


def write_paddleclas_file(name: str, path: str, seed: int = 0) -> Dict[str, np.ndarray]:
    """Write a ``.pdparams`` with PaddleClas's keys and shapes of ``name`` (random values) to ``path``.

    Stands in for PaddleClas's pretrained file, which CI cannot download; returns the arrays written.
    """
    import paddle

    rng = np.random.default_rng(seed)
    arrays = {key: rng.standard_normal(shape).astype("float32") for key, shape in manifest(name)}
    for key, value in arrays.items():
        if key.endswith("_variance"):
            arrays[key] = np.abs(value) + 0.5
    paddle.save(arrays, path)
    return arrays


def check_paddleclas_file_loads(name: str, directory: str) -> None:
    """A PaddleClas-layout ``.pdparams`` of ``name`` loads into ppnets's model with nothing missing,
    unexpected or skipped (strict), and the model then holds exactly the file's values."""
    import os

    import ppnets
    from ppnets.checkpoint import load_pretrained

    path = os.path.join(directory, f"{name}_pretrained.pdparams")
    arrays = write_paddleclas_file(name, path)
    model = ppnets.build_model(name)
    report = load_pretrained(model, path, arch=name, strict=True)
    assert report["missing"] == report["unexpected"] == report["skipped"] == []
    assert all(np.array_equal(v.numpy(), arrays[k]) for k, v in model.state_dict().items())


TIMM = os.path.join(HERE, "timm")


def timm_reference_names() -> List[str]:
    """timm's model names with a reference in ``tests/reference/timm/`` (a copy of the project's
    read-only timm references: key manifest and timm's logits on deterministic stand-in weights)."""
    return sorted(f[:-4] for f in os.listdir(TIMM) if f.endswith(".npz"))


def timm_manifest(name: str) -> List[Tuple[str, List[int]]]:
    """timm's state_dict of timm's model ``name``: [(key, shape)] in order (its floating-point tensors)."""
    return _read_manifest(os.path.join(TIMM, f"{name}.keys.txt"))


def timm_reference(name: str):
    """``(state_dict, x, logits, logits_fused)`` of timm's model ``name`` (see ``timm/README.md``)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("timm_reference_weights", os.path.join(TIMM, "weights.py"))
    weights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(weights)
    return weights.load_reference(TIMM, name)


def timm_tolerance(logits: np.ndarray) -> float:
    """The agreement a faithful conversion reaches: ``1e-4 * (1 + max |logits|)``."""
    return 1e-4 * (1.0 + float(np.abs(logits).max()))


def timm_param_count(name: str) -> int:
    """Trainable parameters of timm's ``name``: every tensor of its manifest but BatchNorm statistics."""
    return sum(int(np.prod(shape)) for key, shape in timm_manifest(name)
               if not key.endswith((".running_mean", ".running_var")))


def timm_layout(model) -> List[Tuple[str, List[int]]]:
    """The model's ``state_dict`` as timm names and orients it (BN statistics, Linear ``[out, in]``)."""
    import paddle.nn as nn

    linear = {f"{n}.weight" for n, layer in model.named_sublayers() if isinstance(layer, nn.Linear)}
    rows = []
    for key, value in model.state_dict().items():
        shape = list(value.shape)[::-1] if key in linear else list(value.shape)
        rows.append((key.replace("._mean", ".running_mean").replace("._variance", ".running_var"), shape))
    return rows
