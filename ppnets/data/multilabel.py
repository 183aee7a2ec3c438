"""PaddleClas's multi-label file list (``MultiLabelDataset``, for ``Global.use_multilabel: true``).

Each line of ``cls_label_path`` is ``relative/path<TAB>f_0,f_1,…,f_{C-1}``: the image path, a
tab, and one 0/1 flag per class — the image shows class ``c`` when ``f_c`` is 1 (a multi-hot
vector, as PaddleClas's ``multilabel_dataset.py`` reads it; e.g. ``img/0517.jpg\\t0,1,0,0,1``).
Samples carry that vector as a float32 (C,) target.
"""
from __future__ import annotations

import os
from typing import List, Optional

import numpy as np

from ..errors import ConfigError, DataError
from .datasets import DATASETS, ClassificationDataset, list_entry_path
from .labels import read_label_file

__all__ = ["MultiLabelDataset"]


@DATASETS.register
class MultiLabelDataset(ClassificationDataset):
    """A multi-label file list (see the module docstring).

    Args:
        image_root: the folder the list's paths are relative to.
        cls_label_path: the list.
        transform_ops: the preprocessing ops.
        delimiter: between the path and the flags (default: a tab, as PaddleClas).
        class_num: the number of flags each line must have (default: the first line's).
        class_names_file: label names, one per line or PaddleClas's ``id name`` map (default: the ids).
        label_ratio: PaddleClas's attribute-recognition option; ``true`` is refused.
        allow_outside_root, bad_image: as for ``FileListDataset``.
    """

    multilabel = True

    def __init__(self, image_root: str, cls_label_path: str, transform_ops: Optional[List[dict]] = None,
                 delimiter: str = "\t", class_num: Optional[int] = None, class_names_file: Optional[str] = None,
                 label_ratio: bool = False, allow_outside_root: bool = False, bad_image: str = "stop",
                 seed: Optional[int] = None) -> None:
        super().__init__(transform_ops, seed, bad_image)
        if label_ratio:
            raise ConfigError("MultiLabelDataset.label_ratio: true feeds PaddleClas's attribute-recognition loss "
                              "weighting, which ppnets does not have; remove it")
        if not isinstance(delimiter, str) or not delimiter:
            raise ConfigError(f"MultiLabelDataset.delimiter: expected a non-empty string, got {delimiter!r}")
        if not os.path.isdir(image_root):
            raise DataError(f"dataset root not found: {image_root}")
        if not os.path.isfile(cls_label_path):
            raise DataError(f"file list not found: {cls_label_path}")
        self.samples = []
        with open(cls_label_path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if not line.strip():
                    continue
                where = f"{cls_label_path}:{lineno}"
                parts = line.rsplit(delimiter, 1)
                if len(parts) != 2:
                    raise DataError(f"{where}: expected 'relative/path{delimiter!r}0,1,…' (one 0/1 flag per class), "
                                    f"got {line!r}")
                flags = _flags(parts[1], where)
                if class_num is None:
                    class_num = len(flags)
                if len(flags) != class_num:
                    raise DataError(f"{where}: {len(flags)} flags, expected {class_num} (one per class)")
                self.samples.append((list_entry_path(image_root, parts[0].strip(), where, allow_outside_root),
                                     flags))
        if not self.samples:
            raise DataError(f"{cls_label_path}: the file list is empty")
        if class_names_file:
            self.class_names = read_label_file(class_names_file)
            if len(self.class_names) != class_num:
                raise DataError(f"{class_names_file}: names {len(self.class_names)} classes, but {cls_label_path} "
                                f"has {class_num} flags per line")
        else:
            self.class_names = [str(i) for i in range(class_num)]

    def target(self, index: int) -> np.ndarray:
        return np.asarray(self.samples[index][1], dtype=np.float32)

    def label_matrix(self) -> np.ndarray:
        """(N, C) multi-hot labels of every sample."""
        return np.asarray([flags for _, flags in self.samples], dtype=np.int64)


def _flags(text: str, where: str) -> tuple:
    values = [v.strip() for v in text.split(",")]
    if not all(v in ("0", "1") for v in values):
        raise DataError(f"{where}: expected comma-separated 0/1 flags, one per class (PaddleClas's multi-hot "
                        f"labels), got {text.strip()!r}")
    return tuple(int(v) for v in values)
