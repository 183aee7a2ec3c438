"""``--split 0.8``: PaddleClas file lists from a folder-per-class dataset, stratified and seeded.

Each class's sorted files are permuted on their own, by a NumPy generator seeded with ``(seed,
a hash of the class name)``, and the first ``round(fraction × n)`` go to training (at least one
file to each side when the class has two or more). The same folder and seed give the same lists,
byte for byte; adding a class does not move the files of the others.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ...errors import ConfigError, DataError
from ...utils.files import atomic_write
from ..datasets import _list_images

__all__ = ["split_folder", "LIST_FILES"]

#: what :func:`split_folder` writes, PaddleClas's names
LIST_FILES = {"train": "train_list.txt", "val": "val_list.txt", "labels": "label_list.txt"}


def split_folder(root: str, train_fraction: float, seed: int = 0, out_dir: Optional[str] = None,
                 overwrite: bool = False) -> Dict[str, Any]:
    """Write ``train_list.txt``, ``val_list.txt`` (``relative/path label`` lines, relative to ``root``)
    and ``label_list.txt`` (``id name`` lines) into ``out_dir`` (default ``root``).

    Returns ``{"train": path, "val": path, "labels": path, "counts": {"train": n, "val": n}}``.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(f"--split: expected the training fraction, between 0 and 1 (e.g. 0.8), got {train_fraction}")
    if not os.path.isdir(root):
        raise DataError(f"dataset root not found: {root}")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class sub-folders to split (expected {root}/<class name>/<images>)")
    out_dir = out_dir or root
    paths = {k: os.path.join(out_dir, f) for k, f in LIST_FILES.items()}
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise DataError(f"{existing[0]} exists: add --overwrite to replace it, or write elsewhere with --out DIR")
    train: List[Tuple[str, int]] = []
    val: List[Tuple[str, int]] = []
    for label, name in enumerate(classes):
        files = sorted(os.path.relpath(p, root).replace(os.sep, "/") for p in _list_images(os.path.join(root, name)))
        files = [files[i] for i in _class_rng(seed, name).permutation(len(files))]
        n = round(len(files) * train_fraction)
        if len(files) >= 2:
            n = min(max(n, 1), len(files) - 1)
        train += [(f, label) for f in files[:n]]
        val += [(f, label) for f in files[n:]]
    os.makedirs(out_dir, exist_ok=True)
    for key, rows in (("train", train), ("val", val)):
        atomic_write(paths[key], "".join(f"{f} {label}\n" for f, label in sorted(rows, key=lambda r: (r[1], r[0]))))
    atomic_write(paths["labels"], "".join(f"{i} {name}\n" for i, name in enumerate(classes)))
    return {**paths, "counts": {"train": len(train), "val": len(val)}}


def _class_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of one class's permutation: ``(seed, the class name's SHA-256)``."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).digest()
    return np.random.default_rng(np.random.SeedSequence([int(seed) % 2 ** 64, int.from_bytes(digest[:8], "little")]))
