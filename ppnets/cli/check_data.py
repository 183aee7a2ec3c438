"""Check a dataset before training on it: counts per class and split, bad images, duplicates and
train/val leakage, labels and label maps, missing paths — all at once.

    ppnets check-data -c CONFIG [-o KEY=VALUE]       # the config's DataLoader datasets, Arch.class_num, label map
    ppnets check-data dataset/digits                 # *_list.txt + label_list.txt, or train/ val/ folders, or a class-folder root
    ppnets check-data --train data/train --val data/val [--class-num 10] [--label-map labels.txt]
    ppnets check-data data/all --split 0.8 [--seed 0] # write train/val file lists (stratified, seeded), then check them

(or ``python tools/check_dataset.py …``). Prints a one-line summary and writes the full report as
JSON and Markdown (``--report``). Exit code 0 when no error was found (warnings allowed), 1 when
one was, 2 for a mistake on the command line. Only image headers and end markers are read, and
every file is hashed in chunks; ``--decode`` also decodes every image (slow), ``--no-hash`` skips
the duplicate and leakage checks (fast). The problem kinds are listed in docs/data.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Tuple

from ..data.check import Source, check_dataset, sources_for_path, split_folder
from ..errors import ConfigError
from .common import load_config_args

#: DataLoader sections checked with -c, and the split names they get
CONFIG_SPLITS = (("Train", "train"), ("Eval", "eval"), ("Test", "test"))
FILE_LISTS = ("FileListDataset", "ImageNetDataset")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("dataset (one of)")
    src.add_argument("dataset", nargs="?", help="a dataset folder or a file list")
    src.add_argument("-c", "--config", help="a config (file or shipped name): check its DataLoader datasets")
    src.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key (with -c)")
    for split in ("train", "val", "test"):
        src.add_argument(f"--{split}", metavar="PATH", help=f"the {split} split: a class-folder root or a file list")
    p.add_argument("--image-root", metavar="DIR", help="what file-list paths are relative to (default: the list's folder)")
    p.add_argument("--class-num", type=int, help="number of classes (with -c: Arch.class_num)")
    p.add_argument("--label-map", metavar="FILE", help="label names, one per line or 'id name' (with -c: "
                                                      "Infer.class_id_map_file; in a dataset folder: label_list.txt)")
    spl = p.add_argument_group("writing file lists")
    spl.add_argument("--split", type=float, metavar="FRACTION",
                     help="write train_list.txt / val_list.txt / label_list.txt from a class-folder root, this "
                          "fraction of each class for training (e.g. 0.8)")
    spl.add_argument("--seed", type=int, default=0, help="seed of --split (default 0): same seed, same lists")
    spl.add_argument("--out", metavar="DIR", help="where --split writes the lists (default: the dataset folder)")
    spl.add_argument("--overwrite", action="store_true", help="let --split replace existing lists")
    chk = p.add_argument_group("checks")
    chk.add_argument("--report", metavar="PATH", help="report path without extension: writes PATH.json and PATH.md "
                                                      "(default: <Global.output_dir or output>/check_data/report)")
    chk.add_argument("--decode", action="store_true", help="also decode every image with the training's decoder")
    chk.add_argument("--no-hash", action="store_true", help="do not read whole files: no duplicate or leakage check")
    chk.add_argument("--size-factor", type=float, default=4.0,
                     help="a size outlier is this many times wider/taller or narrower/shorter than the median (4)")
    chk.add_argument("--max-imbalance", type=float, default=10.0,
                     help="warn when the largest class has more than this many times the smallest's images (10)")
    chk.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="threads reading files")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    given = [x for x in (args.dataset, args.config, args.train or args.val or args.test) if x]
    if len(given) != 1:
        raise ConfigError("give one dataset: a folder or file list, -c CONFIG, or --train/--val/--test PATH "
                          "(see --help)")
    for flag, value in (("--class-num", args.class_num), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag}: expected a positive integer, got {value}")
    if args.size_factor <= 1 or args.max_imbalance < 1:
        raise ConfigError("--size-factor must be above 1 and --max-imbalance at least 1")
    if args.override and not args.config:
        raise ConfigError("-o/--override needs -c CONFIG")
    if args.split is not None and not (args.dataset and os.path.isdir(args.dataset)):
        raise ConfigError("--split writes file lists from a class-folder root: ppnets check-data DIR --split 0.8")
    output_dir, notes, found_map, class_num = "output", [], None, args.class_num
    if args.config:
        cfg = load_config_args(args)
        sources, notes = sources_from_config(cfg)
        class_num = args.class_num or cfg["Arch"].get("class_num")
        found_map = cfg["Infer"].get("class_id_map_file")
        output_dir = cfg["Global"]["output_dir"]
    elif args.split is not None:
        result = split_folder(args.dataset, args.split, args.seed, args.out, args.overwrite)
        print(f"wrote {result['train']} ({result['counts']['train']:,} images), {result['val']} "
              f"({result['counts']['val']:,}) and {result['labels']} (seed {args.seed}); train on them with "
              f"DataLoader.Train.dataset: {{name: FileListDataset, image_root: {args.dataset}, "
              f"cls_label_path: {result['train']}}}")
        sources = [Source("train", args.dataset, file_list=result["train"]),
                   Source("val", args.dataset, file_list=result["val"])]
        found_map = result["labels"]
    elif args.dataset:
        sources, found_map = sources_for_path(args.dataset, args.image_root)
    else:
        sources = [s for split in ("train", "val", "test") if getattr(args, split)
                   for s in sources_for_path(getattr(args, split), args.image_root, split)[0]]
    label_map = args.label_map or found_map
    report = check_dataset(sources, class_num=class_num, label_map=label_map, hash_files=not args.no_hash,
                           decode=args.decode, size_factor=args.size_factor, max_imbalance=args.max_imbalance,
                           workers=args.workers, progress=_progress)
    report.notes[:0] = notes
    stem = args.report or os.path.join(output_dir, "check_data", "report")
    paths = report.write(stem)
    verdict = "OK" if report.ok else "FAILED"
    print(f"check-data: {verdict}: {report.summary()}; report: {paths[1]} (and .json)")
    sys.stdout.flush()
    if not report.ok:
        sys.exit(1)


def sources_from_config(cfg: Dict[str, Any]) -> Tuple[List[Source], List[str]]:
    """The splits of a config's ``DataLoader`` sections, and notes on those that cannot be checked."""
    sources, notes = [], []
    for section, split in CONFIG_SPLITS:
        loader = (cfg.get("DataLoader") or {}).get(section)
        if not loader:
            continue
        ds = loader["dataset"]
        name = ds.get("name", "ImageFolder")
        if name == "ImageFolder":
            sources.append(Source(split, ds.get("root") or ds.get("image_root") or ""))
        elif name in FILE_LISTS:
            sources.append(Source(split, ds["image_root"], file_list=ds["cls_label_path"],
                                  delimiter=ds.get("delimiter"), allow_outside_root=bool(ds.get("allow_outside_root")),
                                  relabel=bool(ds.get("relabel")), class_names_file=ds.get("class_names_file")))
        else:
            notes.append(f"DataLoader.{section}: {name} is not checked (check-data reads ImageFolder and "
                         "file-list datasets)")
    if not sources:
        raise ConfigError("the config has no ImageFolder or file-list dataset in DataLoader.Train/Eval/Test")
    return sources, notes


def _progress(results, total: int):
    """A progress bar on stderr for big datasets, when stderr is a terminal."""
    from tqdm import tqdm
    return tqdm(results, total=total, desc="checking images", unit="img", disable=None if total > 2000 else True,
                leave=False, file=sys.stderr)
