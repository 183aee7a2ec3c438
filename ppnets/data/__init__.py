"""Data: datasets, transform ops and the one dataloader builder."""
from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, Optional

import paddle

from ..errors import DataError, PPNetsError
from .datasets import DATASETS, ClassificationDataset, FileListDataset, ImageFolder, build_dataset
from .transforms import TRANSFORMS, Compose, build_transforms

__all__ = ["DATASETS", "TRANSFORMS", "build_dataloader", "build_dataset", "build_transforms", "Compose",
           "ClassificationDataset", "ImageFolder", "FileListDataset", "iterate_loader"]

# Paddle re-raises a worker's exception in its reader thread, and the main thread only sees
# "Blocking queue is killed". The hook keeps ppnets's own errors so iterate_loader can show them.
_thread_errors: List[BaseException] = []
_previous_hook = threading.excepthook


def _record_thread_error(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is not None and issubclass(args.exc_type, PPNetsError):
        _thread_errors.append(args.exc_value)
    else:
        _previous_hook(args)


threading.excepthook = _record_thread_error


def _worker_message(exc: BaseException) -> str:
    """The original message of a worker error re-raised by Paddle (the last line of its traceback text)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    last = lines[-1] if lines else str(exc)
    for prefix in (f"{type(exc).__module__}.{type(exc).__name__}: ", f"{type(exc).__name__}: "):
        if last.startswith(prefix):
            return last[len(prefix):]
    return last


def iterate_loader(loader: paddle.io.DataLoader) -> Iterator[Any]:
    """Iterate ``loader``; an error raised in a worker surfaces as itself (e.g. naming the bad file)."""
    del _thread_errors[:]
    try:
        yield from loader
    except PPNetsError:
        raise
    except Exception:
        if _thread_errors:
            err = _thread_errors[-1]
            raise type(err)(_worker_message(err)) from None
        raise


def build_dataloader(cfg: Dict[str, Any], split: str, seed: Optional[int] = None,
                     class_names: Optional[List[str]] = None) -> paddle.io.DataLoader:
    """Build the ``paddle.io.DataLoader`` of ``DataLoader.<split>``.

    The batch sampler is a ``DistributedBatchSampler`` (it shards by rank when launched
    with ``paddle.distributed.launch`` and is a plain sampler otherwise), so multi-process
    training needs no change here. ``class_names`` forces an ImageFolder to the training
    classes. The dataset is reachable as ``loader.dataset``.
    """
    section = cfg["DataLoader"].get(split)
    if section is None:
        raise DataError(f"DataLoader.{split}: section is missing from the config")
    where = f"DataLoader.{split}.dataset"
    dataset = build_dataset(section["dataset"], where, seed=seed, class_names=class_names)
    sampler_cfg = section["sampler"]
    batch_size = sampler_cfg["batch_size"]
    if batch_size < 1:
        raise DataError(f"DataLoader.{split}.sampler.batch_size: expected a positive integer, got {batch_size}")
    if sampler_cfg["drop_last"] and batch_size > len(dataset):
        raise DataError(f"DataLoader.{split}.sampler.batch_size={batch_size} is larger than the dataset "
                        f"({len(dataset)} samples) and drop_last is true: no batch would be produced")
    if sampler_cfg["name"] == "DistributedBatchSampler":
        sampler = paddle.io.DistributedBatchSampler(dataset, batch_size=batch_size, shuffle=sampler_cfg["shuffle"],
                                                    drop_last=sampler_cfg["drop_last"])
    else:
        sampler = paddle.io.BatchSampler(dataset, batch_size=batch_size, shuffle=sampler_cfg["shuffle"],
                                         drop_last=sampler_cfg["drop_last"])
    loader_cfg = section["loader"]
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, num_workers=loader_cfg["num_workers"],
                                use_shared_memory=loader_cfg["use_shared_memory"], return_list=True)
