"""Label files: one class name per line, or PaddleClas's label map (``0 tench`` — id, space, name).

Every label file ppnets reads goes through :func:`read_label_file`: ``class_names_file`` of a
file-list dataset, ``Infer.class_id_map_file`` and the ``label_list.txt`` a training run writes.
"""
from __future__ import annotations

import os
import re
from typing import List

from ..errors import DataError

__all__ = ["read_label_file"]

_ID_NAME = re.compile(r"^(\d+)\s+(\S.*)$")


def read_label_file(path: str) -> List[str]:
    """The class names of ``path`` in id order.

    A file whose every non-empty line is ``<id> <name>`` is a label map: the ids must be 0…N-1,
    each once, in any order. Any other file lists one name per line, the first being class 0.
    """
    if not os.path.isfile(path):
        raise DataError(f"label file not found: {path}")
    try:
        with open(path, encoding="utf-8-sig") as f:  # a byte-order mark is not part of the first name
            lines = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file (expected one class name per line, or 'id name' lines)") \
            from None
    if not lines:
        raise DataError(f"{path}: no class names (expected one name per line, or 'id name' lines)")
    matches = [_ID_NAME.match(text) for _, text in lines]
    if not all(matches):
        return [text for _, text in lines]
    names = {}
    for (lineno, _), m in zip(lines, matches):
        class_id = int(m.group(1))
        if class_id in names:
            raise DataError(f"{path}:{lineno}: class id {class_id} appears twice")
        names[class_id] = m.group(2).strip()
    missing = sorted(set(range(len(names))) - set(names))
    if missing:
        raise DataError(f"{path}: a label map needs the ids 0…{len(names) - 1}, each once; id {missing[0]} is "
                        "missing")
    return [names[i] for i in range(len(names))]
