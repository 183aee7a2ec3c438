"""Data: datasets, transform ops, batch ops (Mixup/CutMix) and the one dataloader builder."""
from __future__ import annotations

import ctypes
import signal
import sys
import traceback
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from ..errors import ConfigError, DataError, PPNetsError
from .balanced import ClassBalancedSampler, class_counts
from .batch_ops import BATCH_TRANSFORMS, BatchCollate, build_batch_transforms
from .datasets import (CHECK_HINT, DATASETS, ClassificationDataset, FailedSample, FileListDataset, ImageFolder,
                       ImageNetDataset, build_dataset)
from .labels import read_label_file
from .multilabel import MultiLabelDataset
from .sampler import ResumableBatchSampler
from .transforms import TRANSFORMS, Compose, build_transforms, check_model_input, ensure_chw

__all__ = ["DATASETS", "TRANSFORMS", "BATCH_TRANSFORMS", "build_dataloader", "build_dataset", "build_transforms",
           "build_batch_transforms", "BatchCollate", "Compose",
           "ClassificationDataset", "ImageFolder", "FileListDataset", "ImageNetDataset", "MultiLabelDataset", "FailedSample", "SafeCollate",
           "read_label_file", "ensure_chw", "check_model_input",
           "ResumableBatchSampler", "ClassBalancedSampler", "class_counts", "iterate_loader"]

def iterate_loader(loader: paddle.io.DataLoader) -> Iterator[Tuple[paddle.Tensor, paddle.Tensor, int]]:
    """Iterate a loader of :func:`build_dataloader`, yielding ``(images, labels, n_skipped)``.

    A sample that failed to load raises here, in the main process: a :class:`DataError`
    naming the file, or a RuntimeError carrying the worker's traceback for internal errors.
    A batch that is not NCHW with 3 channels is a :class:`ConfigError` naming the transform list.
    """
    transform = getattr(loader.dataset, "transform", None)
    where = getattr(transform, "where", "transform_ops")
    batches = iter(loader)
    try:
        for images, labels, skipped, status in batches:
            text = bytes(status.numpy().tobytes()).decode("utf-8")
            if text[0] == "D":
                raise DataError(text[1:])
            if text[0] == "I":
                raise RuntimeError(text[1:])
            if text[0] == "E":  # every sample of the batch was unreadable and skipped
                images, labels = images[:0], labels[:0]
            else:
                check_model_input(images.shape, where)
            yield images, labels, int(skipped)
    finally:
        shut_down(batches)


def shut_down(batches: Iterator) -> None:
    """Stop a Paddle DataLoader iterator's prefetch thread and worker processes now.

    An iterator left part-way (an error, a ``break``, one ``next``) keeps its prefetch thread
    blocked on a full queue, and that thread holds a reference to the iterator, so it is never
    collected. A later loader that forks its workers while such a thread runs can deadlock in
    the child; this runs Paddle's own shutdown (the one its ``__del__`` would run) instead.
    """
    stop = getattr(batches, "_try_shutdown_all", None)
    if stop is not None:
        stop()


class SafeCollate:
    """The loader's ``collate_fn``: applies the ``bad_image`` policy and never raises.

    Unreadable samples (:class:`FailedSample`) are dropped and counted (``skip``/``warn``) or,
    with ``stop``, turned into an error that :func:`iterate_loader` raises in the main
    process. The kept ``(image, label)`` pairs are stacked by ``batch_ops``
    (:class:`~ppnets.data.batch_ops.BatchCollate`) with a generator on the batch's seed sequence
    (which the dataset hands on with each sample, see :meth:`ClassificationDataset.__getitem__`),
    or else by Paddle's default collate. Returns ``[images, labels, n_skipped, status]``.
    """

    def __init__(self, policy: str, batch_ops: Optional[BatchCollate] = None) -> None:
        self.policy = policy
        self.batch_ops = batch_ops

    # The status travels as a uint8 array whose first byte is O (ok), E (every sample skipped),
    # D (data error) or I (internal error), followed by the message. Zero-size arrays cannot
    # cross the workers' shared memory, hence the one-element placeholders.
    @staticmethod
    def _status(kind: str, skipped: int = 0, message: str = "") -> List[Any]:
        blob = np.frombuffer((kind + message).encode("utf-8"), np.uint8)
        return [np.zeros((1,), np.float32), np.zeros((1,), np.int64), np.array(skipped, np.int64), blob]

    def __call__(self, batch: List[Any]) -> List[Any]:
        failed = [item for item in batch if isinstance(item, FailedSample)]
        for item in failed:
            if item.internal or self.policy == "stop":
                return self._status("I" if item.internal else "D", message=item.message)
        kept = [item for item in batch if not isinstance(item, FailedSample)]
        if not kept:
            return self._status("E", skipped=len(failed))
        seed = kept[0][2] if len(kept[0]) > 2 else None  # the same for every sample of a seeded batch
        pairs = [item[:2] for item in kept]
        try:
            out = list(self.batch_ops(pairs, np.random.default_rng(seed)) if self.batch_ops is not None
                       else default_collate_fn(pairs))
        except PPNetsError as e:
            return self._status("D", message=str(e))
        except Exception:
            return self._status("I", message=f"collating a batch failed:\n{traceback.format_exc()}")
        return out + [np.array(len(failed), np.int64), np.frombuffer(b"O", np.uint8)]


def _die_with_parent(worker_id: int) -> None:
    """Loader workers exit with the training process (a ``kill -9`` would otherwise orphan them)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def build_dataloader(cfg: Dict[str, Any], split: str, seed: Optional[int] = None,
                     class_names: Optional[List[str]] = None, class_num: Optional[int] = None) -> paddle.io.DataLoader:
    """Build the ``paddle.io.DataLoader`` of ``DataLoader.<split>``.

    The batch sampler is a :class:`~ppnets.data.sampler.ResumableBatchSampler` around a
    ``DistributedBatchSampler`` (it shards by rank when launched with ``paddle.distributed.launch``
    and is a plain sampler otherwise; ``sampler.name: BatchSampler`` never shards), so multi-process
    training needs no change here. With ``shuffle`` the order of an epoch is a function of
    ``(seed, epoch)`` (``loader.batch_sampler.set_epoch``), the same on every rank; ``skip(k)``
    resumes an epoch at batch ``k``. ``class_names`` forces an ImageFolder to the training
    classes. The dataset is reachable as ``loader.dataset``.

    With ``dataset.batch_transform_ops`` (Mixup/CutMix, training only) batches are collated by
    :class:`~ppnets.data.batch_ops.BatchCollate` and carry float32 soft targets of shape
    ``(N, class_num)``; ``class_num`` should be ``Arch.class_num`` (default: the dataset's class count).
    """
    section = cfg["DataLoader"].get(split)
    if section is None:
        raise DataError(f"DataLoader.{split}: section is missing from the config")
    where = f"DataLoader.{split}.dataset"
    try:
        dataset = build_dataset(section["dataset"], where, seed=seed, class_names=class_names)
    except DataError as e:  # a missing root, a bad file list …: the checker lists all of them
        raise DataError(f"{e}{CHECK_HINT}") from None
    dataset.transform.where = f"{where}.transform_ops"  # errors about the batches name the config key
    sampler_cfg = section["sampler"]
    batch_size = sampler_cfg["batch_size"]
    if batch_size < 1:
        raise ConfigError(f"DataLoader.{split}.sampler.batch_size: expected a positive integer, got {batch_size}")
    if sampler_cfg["drop_last"] and batch_size > len(dataset):
        raise DataError(f"DataLoader.{split}.sampler.batch_size={batch_size} is larger than the dataset "
                        f"({len(dataset)} samples) and drop_last is true: no batch would be produced")
    collate = None
    batch_ops = section["dataset"].get("batch_transform_ops")
    if batch_ops:
        if split != "Train":
            raise ConfigError(f"{where}.batch_transform_ops: batch ops (Mixup/CutMix) are for training only; "
                              f"remove them from DataLoader.{split}")
        collate = build_batch_transforms(batch_ops, class_num if class_num is not None else len(dataset.class_names),
                                         where=f"{where}.batch_transform_ops")
    collate = SafeCollate(dataset.bad_image, collate)
    # BatchSampler (every rank reads the whole dataset) is a one-replica DistributedBatchSampler:
    # Paddle's own BatchSampler shuffles from numpy's global generator, so its order would not
    # follow Global.seed and not replay on resume
    shard = {} if sampler_cfg["name"] in ("DistributedBatchSampler", "ClassBalancedSampler") \
        else {"num_replicas": 1, "rank": 0}
    if sampler_cfg["name"] == "ClassBalancedSampler":
        inner = ClassBalancedSampler(dataset, batch_size, exponent=sampler_cfg["exponent"] or 0.0,
                                     num_samples=sampler_cfg["num_samples"], drop_last=sampler_cfg["drop_last"])
    else:
        inner = paddle.io.DistributedBatchSampler(dataset, batch_size=batch_size, shuffle=sampler_cfg["shuffle"],
                                                  drop_last=sampler_cfg["drop_last"], **shard)
    sampler = ResumableBatchSampler(inner, seed=seed)
    loader_cfg = section["loader"]
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, num_workers=loader_cfg["num_workers"],
                                use_shared_memory=loader_cfg["use_shared_memory"], return_list=True,
                                worker_init_fn=_die_with_parent,
                                collate_fn=collate)
