"""The dataset checker (``ppnets check-data``, ``tools/check_dataset.py``): everything wrong with a
folder-per-class dataset or a set of PaddleClas file lists, found at once, before training.

:func:`check_dataset` reads every split as training would (:mod:`.sources`), inspects every image
cheaply (:mod:`.files`: header, hash, end marker) and reports (:mod:`.report`):

- images per class and split, and the imbalance ratio (largest / smallest class);
- missing, zero-byte, unreadable, truncated and oversized images (errors); CMYK, 16-bit, grayscale
  and EXIF-rotated images and size outliers (warnings; a property every image shares is a note);
- exact duplicates by hash (a warning within a split, an error across labels or across splits);
- labels outside ``class_num``, a label map that does not match the class folders or labels,
  splits whose class folders differ, paths that do not exist.

:func:`split_folder` (:mod:`.split`) writes stratified, seeded file lists from a class-folder root.
"""
from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterable, List, Optional, Sequence

from PIL import Image

from ...errors import DataError
from ...utils.files import shown_path
from ..datasets import IMG_EXTENSIONS
from ..labels import read_label_file
from ..transforms import DecodeImage
from ..transforms.limits import DEFAULT_MAX_PIXELS
from .files import ImageInfo, inspect_image
from .report import KINDS, Problem, Report
from .sources import Source, Split, read_source, sources_for_path
from .split import split_folder

__all__ = ["check_dataset", "split_folder", "sources_for_path", "Source", "Report", "Problem", "KINDS"]

Progress = Callable[[Iterable, int], Iterable]


def check_dataset(sources: Sequence[Source], class_num: Optional[int] = None, label_map: Optional[str] = None,
                  hash_files: bool = True, decode: bool = False, size_factor: float = 4.0,
                  max_imbalance: float = 10.0, max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = 4,
                  progress: Optional[Progress] = None) -> Report:
    """Check the splits ``sources`` (with ``Arch.class_num`` and a label map, when known).

    ``hash_files`` reads every file whole (duplicates and leakage); ``decode`` also decodes every
    image with the training's decoder (slow; otherwise only headers and end markers are read).
    ``progress(iterable, total)`` may wrap the per-image loop (a progress bar).
    """
    report = Report(settings={"class_num": class_num, "label_map": label_map, "hash": hash_files, "decode": decode,
                              "size_factor": size_factor, "max_imbalance": max_imbalance})
    splits: List[Split] = []
    for source in _unique_names(sources):
        splits.append(read_source(source, lambda kind, msg, path, s=source.split: report.add(kind, msg, s, path)))
    names = None
    if label_map:
        try:
            names = read_label_file(label_map)
        except DataError as e:
            report.add("label-map", str(e), path=label_map)
    _check_classes(report, splits, class_num, names, label_map)
    infos = _inspect(report, splits, hash_files, decode, max_pixels, workers, progress)
    _check_images(report, infos, size_factor)
    if hash_files:
        _check_duplicates(report, splits, infos)
    _count(report, splits, class_num, names, max_imbalance)
    return report


def _unique_names(sources: Sequence[Source]) -> List[Source]:
    seen: Counter = Counter()
    out = []
    for s in sources:
        seen[s.split] += 1
        if seen[s.split] > 1:
            s = Source(**{**s.__dict__, "split": f"{s.split}{seen[s.split]}"})
        out.append(s)
    return out


def _check_classes(report: Report, splits: List[Split], class_num: Optional[int], names: Optional[List[str]],
                   label_map: Optional[str]) -> None:
    """Class folders across splits, against the label map and class_num; labels of file lists."""
    folders = [s for s in splits if not s.source.file_list and s.class_names]
    for s in folders[1:]:
        ref, got = folders[0].class_names, s.class_names
        if got != ref:
            missing, extra = sorted(set(ref) - set(got)), sorted(set(got) - set(ref))
            detail = f"missing: {missing or 'none'}, unexpected: {extra or 'none'}" if missing or extra else \
                "the same names in another order"
            report.add("class-mismatch", f"{s.source.root}: class folders differ from {folders[0].source.split}'s "
                                         f"({detail})", s.source.split, s.source.root)
    if names is not None:
        if class_num is not None and len(names) != class_num:
            report.add("label-map", f"{label_map} names {len(names)} classes, Arch.class_num is {class_num}",
                       path=label_map)
        for s in folders:
            if s.class_names != names:
                report.add("label-map", f"{label_map} does not match the class folders of {s.source.root}: "
                                        f"{_first_difference(names, s.class_names)}", s.source.split, label_map)
    for s in folders:
        n = len(s.class_names)
        if class_num is not None and n > class_num:
            report.add("label-range", f"{s.source.root}: {n} class folders but Arch.class_num is {class_num}: "
                                      f"{', '.join(repr(c) for c in s.class_names[class_num:][:5])} have no output",
                       s.source.split, s.source.root)
        elif class_num is not None and n < class_num:
            report.add("class-num", f"{s.source.root}: {n} class folders, Arch.class_num is {class_num}: "
                                    f"{class_num - n} outputs are never trained", s.source.split, s.source.root)
    for s in (s for s in splits if s.source.file_list):
        _check_list_labels(report, s, class_num, s.class_names or names,
                           s.source.class_names_file if s.class_names else label_map)


def _check_list_labels(report: Report, split: Split, class_num: Optional[int], names: Optional[List[str]],
                       names_file: Optional[str]) -> None:
    name = split.source.split
    for path, label, where in split.entries:
        if class_num is not None and label >= class_num:
            report.add("label-range", f"{where}: label {label} out of range [0, {class_num}) (Arch.class_num)",
                       name, where)
        elif names is not None and label >= len(names):
            report.add("label-map", f"{where}: label {label} has no name: {names_file} names {len(names)} classes",
                       name, where)
    if not names:
        return
    # a list whose files sit in class-named folders: each label's name must be its folder's
    folder_of = [(os.path.basename(os.path.dirname(p)), label, where) for p, label, where in split.entries]
    if len({f for f, _, _ in folder_of}) < 2 or not {f for f, _, _ in folder_of} <= set(names):
        return
    wrong = [(f, label, where) for f, label, where in folder_of if label < len(names) and names[label] != f]
    if wrong:
        f, label, where = wrong[0]
        report.add("label-map", f"{len(wrong)} line(s) of {split.source.file_list} label a file with another class "
                                f"than its folder's, e.g. {where}: label {label} ({names[label]!r}) for a file in "
                                f"folder {f!r} (is {names_file} in another order?)", name, split.source.file_list,
                   [w for _, _, w in wrong])


def _first_difference(names: List[str], folders: List[str]) -> str:
    if len(names) != len(folders):
        missing, extra = sorted(set(folders) - set(names)), sorted(set(names) - set(folders))
        return f"it names {len(names)} classes, there are {len(folders)} folders (folders not in it: " \
               f"{missing[:5] or 'none'}, names without a folder: {extra[:5] or 'none'})"
    i = next(i for i, (a, b) in enumerate(zip(names, folders)) if a != b)
    return f"class {i} is {names[i]!r} in the map but folder {folders[i]!r} (ImageFolder numbers the sorted " \
           "folder names)"


def _inspect(report: Report, splits: List[Split], hash_files: bool, decode: bool, max_pixels: int, workers: int,
             progress: Optional[Progress]) -> Dict[str, ImageInfo]:
    """Inspect every listed file once (in ``workers`` threads); per-file defects go to the report."""
    in_splits: Dict[str, List[str]] = defaultdict(list)
    for s in splits:
        for path, _, _ in s.entries:
            if s.source.split not in in_splits[path]:
                in_splits[path].append(s.source.split)
    decoder = DecodeImage() if decode else None
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # sizes are judged against max_pixels here
    try:
        with ThreadPoolExecutor(max(1, workers)) as pool:
            results = pool.map(lambda p: inspect_image(p, hash_files, decoder, max_pixels), list(in_splits))
            infos = {info.path: info for info in (progress(results, len(in_splits)) if progress else results)}
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    for path, info in infos.items():
        info.splits = ",".join(in_splits[path])
        for kind, detail in info.defects:
            report.add(kind, f"{shown_path(path)}: {detail}", info.splits, path)
    return infos


def _check_images(report: Report, infos: Dict[str, ImageInfo], size_factor: float) -> None:
    """Colour, depth and orientation of the readable images, and size outliers."""
    ok = [i for i in infos.values() if i.readable]
    if not ok:
        return

    def add(kind: str, info: ImageInfo, detail: str) -> None:
        report.add(kind, f"{shown_path(info.path)}: {detail}", info.splits, info.path)

    for kind, has, what in (("grayscale", lambda i: i.gray, "grayscale (decoded as RGB, the channel repeated)"),
                            ("16-bit", lambda i: i.bits > 8, "more than 8 bits per channel (scaled to 8 bits)"),
                            ("cmyk", lambda i: i.mode == "CMYK", "CMYK (converted to RGB)")):
        flagged = [i for i in ok if has(i)]
        if flagged and len(flagged) == len(ok):
            report.notes.append(f"all {len(ok):,} images are {what}")
            continue
        for i in flagged:
            add(kind, i, f"{i.format} {i.mode} {i.bits}-bit: {what}")
    for i in ok:
        if i.orientation not in (0, 1):
            add("exif-rotated", i, f"EXIF orientation {i.orientation}: decoded rotated, as viewers show it (the label "
                                   "must fit that view)")
    mw, mh = statistics.median(i.width for i in ok), statistics.median(i.height for i in ok)
    for i in ok:
        if not (mw / size_factor <= i.width <= mw * size_factor and mh / size_factor <= i.height <= mh * size_factor):
            add("size-outlier", i, f"{i.width}×{i.height}, the median image is {mw:g}×{mh:g} (more than "
                                   f"{size_factor:g}× off)")


def _check_duplicates(report: Report, splits: List[Split], infos: Dict[str, ImageInfo]) -> None:
    """Files with the same bytes: leakage across splits, conflicting labels, duplicates."""
    groups: Dict[str, list] = defaultdict(list)
    for s in splits:
        for path, label, where in s.entries:
            digest = infos[path].digest if path in infos else None
            if digest:
                groups[digest].append((s.source.split, label, path, where))
    for members in groups.values():
        if len(members) < 2:
            continue
        in_splits = sorted({m[0] for m in members}, key=[s.source.split for s in splits].index)
        listed = [f"[{split}] {where}" + (f" (label {label})" if where != path else "")
                  for split, label, path, where in members]
        first = shown_path(members[0][2])
        if len(in_splits) > 1:
            report.add("leakage", f"{first}: the same image in {' and '.join(in_splits)} ({len(members)} files)",
                       ",".join(in_splits), members[0][2], listed)
        elif len({m[1] for m in members}) > 1:
            report.add("conflicting-labels", f"{first}: the same image under labels "
                                             f"{sorted({m[1] for m in members})} ({len(members)} files)",
                       in_splits[0], members[0][2], listed)
        else:
            report.add("duplicate", f"{first}: {len(members)} copies of the same image", in_splits[0],
                       members[0][2], listed)


def _count(report: Report, splits: List[Split], class_num: Optional[int], names: Optional[List[str]],
           max_imbalance: float) -> None:
    """Images per class and split, empty classes and the imbalance ratio."""
    for s in splits:
        split_names = s.class_names or names
        counts = Counter(label for _, label, _ in s.entries)
        known = len(split_names) if split_names else class_num
        labels = list(range(known)) if known else sorted(counts)
        labels += sorted(set(counts) - set(labels))

        def name(label: int) -> str:
            return split_names[label] if split_names and label < len(split_names) else str(label)

        classes = {name(label): counts[label] for label in labels}
        present = [c for c in classes.values() if c]
        ratio = max(present) / min(present) if present else None
        report.splits[s.source.split] = {"source": s.source.describe(), "kind": s.source.kind,
                                         "images": len(s.entries), "classes": classes, "imbalance_ratio": ratio}
        if s.ignored_files:
            report.notes.append(f"{s.source.split}: {s.ignored_files} file(s) in the class folders are not images "
                                f"({', '.join(IMG_EXTENSIONS)}) and are ignored")
        if s.source.file_list and s.entries:
            for label in labels:
                if not counts[label]:
                    report.add("empty-class", f"{s.source.split}: no images of class {label} ({name(label)!r})",
                               s.source.split, s.source.file_list)
        if ratio is not None and ratio > max_imbalance:
            big = max(classes, key=classes.get)
            small = min((c for c in classes if classes[c]), key=classes.get)
            report.add("imbalance", f"{s.source.split}: class {big!r} has {classes[big]} images, {small!r} "
                                    f"{classes[small]} (ratio {ratio:.1f}, above {max_imbalance:g})", s.source.split)

