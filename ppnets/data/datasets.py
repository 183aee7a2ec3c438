"""Datasets: a folder per class (``ImageFolder``) and PaddleClas's file list (``FileListDataset``,
also by its PaddleClas name ``ImageNetDataset``).

Both read the file's bytes and pass them through the configured transform ops, ending on a
CHW image: a list whose result is HWC is completed with ``ToCHWImage`` (PaddleClas's datasets
transpose the image themselves, so its lists end without it). A file
that cannot be read or decoded raises a :class:`~ppnets.errors.DataError` naming its
path (PaddleClas silently replaces it with a random other sample; ppnets never does).
Random augmentation draws from a generator derived from ``(seed, epoch, index)``
(:func:`~ppnets.data.rng.sample_rng`), so the data a run sees does not depend on the number
of workers and a resumed run sees the same data.
"""
from __future__ import annotations

import os
import traceback
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import paddle

from ..errors import ConfigError, DataError, short_repr
from ..registry import Registry
from ..utils.files import shown_path
from ..utils.logger import get_logger
from .labels import read_label_file
from .rng import batch_seed, sample_rng
from .transforms import build_transforms, ensure_chw

DATASETS = Registry("dataset")

#: what to do with an unreadable image: stop naming it, skip it (counted), or skip it and warn
BAD_IMAGE_POLICIES = ("stop", "skip", "warn")

#: the most classes a file list may imply from its largest label (Arch.class_num's maximum)
MAX_CLASSES = 100_000

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")

#: ends a data error of a training or evaluation run: the dataset checker finds all such problems at once
CHECK_HINT = "; ppnets check-data -c CONFIG lists every problem of the dataset"


class ClassificationDataset(paddle.io.Dataset):
    """Base class: ``samples`` is a list of ``(path, label)``; ``class_names`` the label names."""

    samples: List[Tuple[str, int]]
    class_names: List[str]

    def __init__(self, transform_ops: Optional[List[dict]] = None, seed: Optional[int] = None,
                 bad_image: str = "stop") -> None:
        super().__init__()
        if bad_image not in BAD_IMAGE_POLICIES:
            raise ConfigError(f"{type(self).__name__}.bad_image: expected one of "
                              f"{', '.join(BAD_IMAGE_POLICIES)}, got {short_repr(bad_image)}")
        where = f"{type(self).__name__}.transform_ops"
        # as PaddleClas's datasets do, hand the model CHW even if the list ends on an HWC image
        self.transform = build_transforms(ensure_chw(transform_ops, where), where=where)
        self.seed = seed
        self.bad_image = bad_image
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation randomness of ``epoch`` (call before creating the epoch's iterator)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> np.ndarray:
        """Read and transform sample ``index``; errors name the file."""
        path, _ = self.samples[index]
        return transform_file(path, lambda data: self.transform(data, sample_rng(self.seed, self.epoch, index)))

    def target(self, index: int) -> np.ndarray:
        """The label of sample ``index`` as the loss takes it: a class id (multi-label datasets: multi-hot)."""
        return np.int64(self.samples[index][1])

    def __getitem__(self, key: Union[int, Tuple[int, int]]) -> Any:
        """``(image, label)`` of sample ``key``, or a :class:`FailedSample` that the loader's collate
        turns into the configured behaviour (``bad_image``). Nothing is raised here: Paddle's
        single-process loader thread hangs on an exception (paddle 3.3), so failures travel as data.

        The loader's sampler passes ``(index, batch number)``
        (:data:`~ppnets.data.sampler.SampleKey`); the item then also carries the seed sequence of
        that batch's batch ops, ``(image, label, SeedSequence)``, for the collate function.
        """
        index, batch = key if isinstance(key, tuple) else (key, None)
        try:
            item = (self.load(index), self.target(index))
            return item if batch is None else item + (batch_seed(self.seed, self.epoch, batch),)
        except DataError as e:
            if self.bad_image == "warn":
                get_logger().warning(f"skipping unreadable image: {e}")
            return FailedSample(f"{e}{CHECK_HINT}", internal=False)  # raised with bad_image: stop
        except Exception:  # a bug, not bad data: keep the traceback for the main process
            return FailedSample(f"loading sample {index} ({self.samples[index][0]}) failed:\n"
                                f"{traceback.format_exc()}", internal=True)


class FailedSample:
    """A sample that could not be loaded: its message, and whether it is an internal error."""

    def __init__(self, message: str, internal: bool) -> None:
        self.message = message
        self.internal = internal


def transform_file(path: str, transform: Any) -> Any:
    """``transform`` of the bytes of the image file ``path``; a DataError naming the file when it cannot
    be read, and the transform's DataError prefixed with the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DataError(f"cannot read image {shown_path(path)}: {e.strerror or e}") from None
    try:
        return transform(data)
    except DataError as e:
        raise DataError(f"{shown_path(path)}: {e}") from None


def _list_images(folder: str) -> List[str]:
    """The images under ``folder``, sorted; symlinked folders are followed, each real folder once
    (a symlink cycle or a second link to a visited folder is not walked again)."""
    out = []
    visited = {os.path.realpath(folder)}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        kept = []
        for d in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real not in visited:
                visited.add(real)
                kept.append(d)
        dirnames[:] = kept
        out += [os.path.join(dirpath, f) for f in sorted(filenames)
                if f.lower().endswith(IMG_EXTENSIONS) and not f.startswith(".")]
    return out


@DATASETS.register
class ImageFolder(ClassificationDataset):
    """``root/<class name>/<image>``: classes are the sorted sub-folder names, ids 0…N-1.

    Args:
        root: the dataset folder (``image_root`` is accepted as an alias, as in PaddleClas).
        transform_ops: the preprocessing ops.
        class_names: expected class names in id order; when given, the folders must match it
            (an eval set must use the training set's classes).
        bad_image: an unreadable image ``stop``s the run naming the file (default), or is
            ``skip``ped (counted per epoch) or skipped with a ``warn``ing naming it.
    """

    def __init__(self, root: Optional[str] = None, transform_ops: Optional[List[dict]] = None,
                 image_root: Optional[str] = None, class_names: Optional[List[str]] = None,
                 bad_image: str = "stop", seed: Optional[int] = None) -> None:
        super().__init__(transform_ops, seed, bad_image)
        root = root or image_root
        if not root:
            raise ConfigError("ImageFolder: 'root' (the dataset folder) is required")
        if not os.path.isdir(root):
            raise DataError(f"dataset root not found: {root} (expected a folder with one sub-folder per class)")
        found = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
        if not found:
            raise DataError(f"{root}: no class sub-folders (expected {root}/<class name>/<images>)")
        for name in found:  # class names go to label_list.txt, logs and exports: they must be text
            if shown_path(name) != name:
                raise DataError(f"{shown_path(os.path.join(root, name))}: the class folder's name is not UTF-8 "
                                "(a Latin-1 name?); rename it, class names are written to label_list.txt and logs")
        if class_names is not None and list(class_names) != found:
            missing = sorted(set(class_names) - set(found))
            extra = sorted(set(found) - set(class_names))
            raise DataError(f"{root}: class folders differ from the training classes "
                            f"(missing: {missing or 'none'}, unexpected: {extra or 'none'})")
        self.root = root
        self.class_names = found
        self.samples = []
        for label, name in enumerate(found):
            files = _list_images(os.path.join(root, name))
            if not files:
                raise DataError(f"{os.path.join(root, name)}: class folder has no images "
                                f"({', '.join(IMG_EXTENSIONS)})")
            self.samples += [(p, label) for p in files]


@DATASETS.register
class FileListDataset(ClassificationDataset):
    """PaddleClas's list format: each line of ``cls_label_path`` is ``relative/path label``.

    Paths are relative to ``image_root``, or absolute paths under it; a path that escapes it
    (``../``, an absolute path elsewhere) is refused unless ``allow_outside_root`` is set
    (symbolic links inside the root are followed). The path and the label are split at the last
    ``delimiter`` (default: any whitespace). ``relabel`` maps the labels found, in increasing
    order, onto 0…N-1 (for lists whose labels have gaps or do not start at 0; the class names
    are then the original labels). Label names come from ``class_names_file`` (one name per line,
    or PaddleClas's ``id name`` label map) when given, else they are the ids.
    """

    def __init__(self, image_root: str, cls_label_path: str, transform_ops: Optional[List[dict]] = None,
                 delimiter: Optional[str] = None, relabel: bool = False, class_num: Optional[int] = None,
                 class_names_file: Optional[str] = None, allow_outside_root: bool = False,
                 bad_image: str = "stop", seed: Optional[int] = None) -> None:
        super().__init__(transform_ops, seed, bad_image)
        if delimiter is not None and (not isinstance(delimiter, str) or not delimiter):
            raise ConfigError(f"{type(self).__name__}.delimiter: expected a non-empty string, got {short_repr(delimiter)}")
        if not os.path.isdir(image_root):
            raise DataError(f"dataset root not found: {image_root}")
        if not os.path.isfile(cls_label_path):
            raise DataError(f"file list not found: {cls_label_path}")
        entries = _read_file_list(image_root, cls_label_path, delimiter, allow_outside_root)
        found = sorted({label for _, label, _ in entries})
        if relabel:
            new_id = {label: i for i, label in enumerate(found)}
            entries = [(path, new_id[label], lineno) for path, label, lineno in entries]
        names = read_label_file(class_names_file) if class_names_file else None
        for _, label, lineno in entries:
            where = f"{cls_label_path}:{lineno}"
            if class_num is not None and label >= class_num:
                raise DataError(f"{where}: label {label} out of range [0, {class_num})")
            if names is not None and label >= len(names):
                raise DataError(f"{where}: label {label} out of range: {class_names_file} names {len(names)} "
                                f"classes (labels 0…{len(names) - 1})")
        self.samples = [(path, label) for path, label, _ in entries]
        if names is not None:
            self.class_names = names
        elif relabel:
            self.class_names = [str(label) for label in found]
        else:
            n = class_num if class_num is not None else found[-1] + 1
            if n > MAX_CLASSES:  # the class count is the largest label + 1
                raise DataError(f"{cls_label_path}: label {found[-1]} would make {n:,} classes (more than "
                                f"{MAX_CLASSES:,}); set class_num, relabel: true or fix the label")
            self.class_names = [str(i) for i in range(n)]


@DATASETS.register
class ImageNetDataset(FileListDataset):
    """PaddleClas's name for FileListDataset: the same class, with the same options.

    ``image_root``, ``cls_label_path``, ``transform_ops``, ``delimiter`` and ``relabel`` are
    PaddleClas's options; as in PaddleClas, a ``transform_ops`` list without ``ToCHWImage`` hands
    the model CHW images.
    """


def _inside(image_root: str, rel: str) -> bool:
    """Whether the file-list path ``rel`` stays under ``image_root`` (lexically)."""
    if not os.path.isabs(rel):
        normal = os.path.normpath(rel)
        return not (normal == ".." or normal.startswith(".." + os.sep))
    path = os.path.normpath(rel)
    return any(os.path.commonpath([root, path]) == root
               for root in {os.path.abspath(image_root), os.path.realpath(image_root)})


def list_entry_path(image_root: str, rel: str, where: str, allow_outside_root: bool) -> str:
    """The image path of a file-list line's ``rel``; a missing file or one outside the root (unless
    ``allow_outside_root``) is a DataError naming ``where`` (the list and line)."""
    path = os.path.join(image_root, rel)
    # lexical: '../' leaves the root, and so does an absolute path unless it lies under the root
    # (as given, or with its symbolic links resolved); symlinks inside the root are the user's own
    # layout (e.g. dataset/ILSVRC2012/train -> /data/...) and are followed
    if not allow_outside_root and not _inside(image_root, rel):
        raise DataError(f"{where}: path {short_repr(rel)} escapes the dataset root {image_root} "
                        "(set allow_outside_root: true to permit it)")
    if not os.path.isfile(path):
        raise DataError(f"{where}: image not found: {shown_path(path)}")
    return path


def _read_file_list(image_root: str, cls_label_path: str, delimiter: Optional[str],
                    allow_outside_root: bool) -> List[Tuple[str, int, int]]:
    """``(path, label, line number)`` of every line of a file list; errors name the line."""
    entries = []
    for lineno, line in list_lines(cls_label_path):
        where = f"{cls_label_path}:{lineno}"
        rel, label = parse_list_line(line, delimiter, where)
        entries.append((list_entry_path(image_root, rel, where, allow_outside_root), label, lineno))
    if not entries:
        raise DataError(f"{cls_label_path}: the file list is empty")
    return entries


def list_lines(cls_label_path: str) -> Iterator[Tuple[int, str]]:
    """``(line number, text)`` of the non-empty lines of a file list, stripped.

    A UTF-8 byte-order mark is dropped. Bytes that are not UTF-8 (a list written in Latin-1) stay
    the bytes they are — Python's surrogate escapes, as ``os.listdir`` returns such names — so a
    path matches the file on disk whatever encoding both were written in.
    """
    with open(cls_label_path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                yield lineno, line.strip()


def parse_list_line(line: str, delimiter: Optional[str], where: str) -> Tuple[str, int]:
    """``(relative path, label)`` of a file-list line, split at the last ``delimiter`` (default:
    whitespace); a DataError naming ``where`` when it is not ``path label`` with a label ≥ 0."""
    parts = line.rsplit(delimiter, 1) if delimiter else line.rsplit(None, 1)
    if len(parts) != 2:
        raise DataError(f"{where}: expected 'relative/path label', got {short_repr(line)}")
    rel, label_text = parts[0].strip(), parts[1].strip()
    try:
        label = int(label_text)
    except ValueError:
        raise DataError(f"{where}: label must be an integer, got {short_repr(label_text)}") from None
    if label < 0:
        raise DataError(f"{where}: negative label {label}")
    return rel, label


def build_dataset(cfg: Dict[str, Any], where: str, seed: Optional[int] = None,
                  class_names: Optional[List[str]] = None) -> ClassificationDataset:
    """Build the dataset of one ``DataLoader.<split>.dataset`` section."""
    cfg = dict(cfg)
    name = cfg.pop("name", "ImageFolder")
    cfg.pop("batch_transform_ops", None)  # applied by the loader's collate_fn (build_dataloader)
    if class_names is not None and name == "ImageFolder":
        cfg.setdefault("class_names", class_names)
    return DATASETS.build(name, cfg, where=where, seed=seed)
