"""What a dataset is made of: the splits of a folder-per-class dataset (``ImageFolder``) or of
PaddleClas file lists (``FileListDataset``), read as training reads them but without stopping at
the first problem: every missing path and unusable line is recorded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from ...errors import DataError
from ..datasets import IMG_EXTENSIONS, _list_images, list_entry_path, list_lines, parse_list_line
from ..labels import read_label_file

__all__ = ["Source", "Split", "read_source", "sources_for_path", "SPLIT_NAMES"]

#: split names looked for in a dataset folder, in this order
SPLIT_NAMES = ("train", "val", "test")

#: ``add(kind, message, path_or_where)`` records a problem
AddProblem = Callable[[str, str, Optional[str]], None]


@dataclass
class Source:
    """One split: a class-folder root (``ImageFolder``), or a file list with its ``image_root``
    (``root``) and FileListDataset's options."""

    split: str
    root: str
    file_list: Optional[str] = None
    delimiter: Optional[str] = None
    allow_outside_root: bool = False
    relabel: bool = False
    class_names_file: Optional[str] = None

    @property
    def kind(self) -> str:
        return "file list" if self.file_list else "folder"

    def describe(self) -> str:
        return f"{self.file_list} (image_root {self.root})" if self.file_list else self.root


@dataclass
class Split:
    """A split as read: ``entries`` are ``(path, label, where)``; ``class_names`` are the class
    folders (folder) or the label names (list with names), else None."""

    source: Source
    entries: List[Tuple[str, int, str]] = field(default_factory=list)
    class_names: Optional[List[str]] = None
    ignored_files: int = 0


def read_source(source: Source, add: AddProblem) -> Split:
    """The entries of ``source``; problems (missing paths, unusable lines, empty class folders) go to ``add``."""
    return _read_list(source, add) if source.file_list else _read_folder(source, add)


def _read_folder(source: Source, add: AddProblem) -> Split:
    split = Split(source)
    root = source.root
    if not os.path.isdir(root):
        add("missing", f"dataset root not found: {root}", root)
        return split
    names = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    loose = [f for f in os.listdir(root) if f.lower().endswith(IMG_EXTENSIONS) and os.path.isfile(os.path.join(root, f))]
    if loose:
        add("not-in-class", f"{len(loose)} image(s) directly in {root}, outside every class folder: ImageFolder "
                            f"ignores them (e.g. {sorted(loose)[0]})", root)
    if not names:
        add("no-images", f"{root}: no class sub-folders (expected {root}/<class name>/<images>)", root)
        return split
    split.class_names = names
    for label, name in enumerate(names):
        folder = os.path.join(root, name)
        files = _list_images(folder)
        if not files:
            add("no-images", f"{folder}: class folder has no images ({', '.join(IMG_EXTENSIONS)}); "
                             "ImageFolder refuses it", folder)
        split.entries += [(p, label, p) for p in files]
        split.ignored_files += sum(1 for _, _, fs in os.walk(folder, followlinks=True) for f in fs
                                   if not f.lower().endswith(IMG_EXTENSIONS) and not f.startswith("."))
    return split


def _read_list(source: Source, add: AddProblem) -> Split:
    split = Split(source)
    if not os.path.isdir(source.root):
        add("missing", f"dataset root not found: {source.root}", source.root)
    if not os.path.isfile(source.file_list):
        add("missing", f"file list not found: {source.file_list}", source.file_list)
        return split
    if source.class_names_file:
        try:
            split.class_names = read_label_file(source.class_names_file)
        except DataError as e:
            add("label-map", str(e), source.class_names_file)
    if not os.path.isdir(source.root):
        return split
    lines = 0
    for lineno, line in list_lines(source.file_list):
        lines += 1
        where = f"{source.file_list}:{lineno}"
        try:
            rel, label = parse_list_line(line, source.delimiter, where)
        except DataError as e:
            add("malformed", str(e), where)
            continue
        try:
            path = list_entry_path(source.root, rel, where, source.allow_outside_root)
        except DataError as e:
            add("missing" if "image not found" in str(e) else "malformed", str(e), where)
            continue
        split.entries.append((path, label, where))
    if not lines:
        add("no-images", f"{source.file_list}: the file list is empty", source.file_list)
    if source.relabel:
        new_id = {label: i for i, label in enumerate(sorted({label for _, label, _ in split.entries}))}
        if split.class_names is None:
            split.class_names = [str(label) for label in sorted(new_id)]
        split.entries = [(p, new_id[label], w) for p, label, w in split.entries]
    return split


def sources_for_path(path: str, image_root: Optional[str] = None, split: Optional[str] = None
                     ) -> Tuple[List[Source], Optional[str]]:
    """The splits a path on the command line stands for, and the label map found beside them.

    - a file: a PaddleClas file list, its paths relative to ``image_root`` (default: its folder);
    - a folder with ``train_list.txt`` / ``val_list.txt`` / ``test_list.txt``: those lists,
      relative to the folder (PaddleClas's layout; ``label_list.txt`` is the label map);
    - a folder with ``train/`` / ``val/`` / ``test/`` class-folder roots: those;
    - any other folder: one class-folder root (split ``split`` or ``all``).
    """
    if os.path.isfile(path):
        root = image_root or os.path.dirname(path) or "."
        return [Source(split or _split_of(path), root, file_list=path)], None
    label_map = os.path.join(path, "label_list.txt")
    label_map = label_map if os.path.isfile(label_map) else None
    lists = [(s, os.path.join(path, f"{s}_list.txt")) for s in SPLIT_NAMES]
    found = [Source(s, image_root or path, file_list=p) for s, p in lists if os.path.isfile(p)]
    if found:
        return found, label_map
    folders = [Source(s, os.path.join(path, s)) for s in SPLIT_NAMES if os.path.isdir(os.path.join(path, s))]
    if folders:
        return folders, label_map
    return [Source(split or "all", path)], label_map


def _split_of(list_path: str) -> str:
    stem = os.path.splitext(os.path.basename(list_path))[0]
    return stem[:-len("_list")] if stem.endswith("_list") else stem
