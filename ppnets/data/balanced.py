"""Class-balanced sampling: ``DataLoader.Train.sampler.name: ClassBalancedSampler``.

Each epoch draws its samples with replacement so that class ``c`` is picked with probability
``∝ n_c ** exponent`` (``n_c`` images in the class): ``exponent: 0`` gives every class the same
share of the batches (class-balanced), ``0.5`` is square-root sampling, ``1`` the natural
frequencies (instance-balanced) — Mahajan et al., 2018; Kang et al., 2020. Within a class every
image is equally likely.

The draws of an epoch are a function of the generator seed it is given through ``set_epoch``
(:class:`~ppnets.data.sampler.ResumableBatchSampler` passes ``(Global.seed, epoch)``), the same
on every rank; under ``paddle.distributed.launch`` each rank takes its share of every global
batch as ``DistributedBatchSampler`` does, so two processes with batch B see exactly the batches
of one process with batch 2B, and a resumed run replays them (``skip``).
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["ClassBalancedSampler", "class_counts", "class_probabilities"]


def dataset_labels(dataset) -> np.ndarray:
    """The class id of each sample of a single-label dataset (``dataset.samples``: ``(path, label)``)."""
    samples = getattr(dataset, "samples", None)
    if samples is None or any(not isinstance(label, (int, np.integer)) for _, label in samples):
        raise ConfigError(f"{type(dataset).__name__}: class-balanced sampling and class_weight: auto need one class "
                          "id per sample (a single-label dataset)")
    return np.asarray([label for _, label in samples], dtype=np.int64)


def class_counts(dataset, num_classes: Optional[int] = None) -> np.ndarray:
    """Images per class of a single-label dataset, (C,) with C = ``num_classes`` or its class count."""
    n = num_classes if num_classes is not None else len(getattr(dataset, "class_names", [])) or None
    return np.bincount(dataset_labels(dataset), minlength=n or 0)


def class_probabilities(counts: Sequence[int], exponent: float) -> np.ndarray:
    """The probability of drawing each class: ``n_c ** exponent``, normalised (0 for empty classes)."""
    counts = np.asarray(counts, dtype=np.float64)
    weights = np.where(counts > 0, np.power(np.maximum(counts, 1.0), exponent), 0.0)
    return weights / weights.sum()


class ClassBalancedSampler:
    """A batch sampler drawing ``num_samples`` images per epoch (default: the dataset size)
    with class probabilities :func:`class_probabilities` ``(counts, exponent)``.

    It has the interface of ``paddle.io.DistributedBatchSampler`` that
    :class:`~ppnets.data.sampler.ResumableBatchSampler` wraps (``set_epoch``, ``nranks``,
    ``local_rank``, ``batch_size``, ``drop_last``).
    """

    def __init__(self, dataset, batch_size: int, exponent: float = 0.0, num_samples: Optional[int] = None,
                 drop_last: bool = False, num_replicas: Optional[int] = None, rank: Optional[int] = None) -> None:
        from paddle.distributed import ParallelEnv
        if not 0.0 <= exponent <= 1.0:
            raise ConfigError(f"DataLoader.Train.sampler.exponent: expected a value in [0, 1], got {exponent}")
        self.dataset = dataset
        self.sampler = None
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.nranks = num_replicas if num_replicas is not None else ParallelEnv().nranks
        self.local_rank = rank if rank is not None else ParallelEnv().local_rank
        labels = dataset_labels(dataset)
        counts = np.bincount(labels, minlength=len(getattr(dataset, "class_names", [])))
        self.probabilities = class_probabilities(counts, exponent)
        # the probability of each sample: its class's share, spread over the class's images
        self._sample_p = self.probabilities[labels] / counts[labels]
        self._sample_p /= self._sample_p.sum()
        total = num_samples if num_samples is not None else len(dataset)
        if total < 1:
            raise ConfigError(f"DataLoader.Train.sampler.num_samples: expected a positive integer, got {total}")
        self.per_rank = -(-total // self.nranks)  # every rank draws as many (the total rounded up)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the draws: ``epoch`` is the generator's seed (ResumableBatchSampler passes one of
        ``(Global.seed, epoch)``)."""
        self.epoch = int(epoch)

    def draws(self) -> np.ndarray:
        """All ranks' sample indices of the epoch, in global order."""
        rng = np.random.default_rng(self.epoch)
        return rng.choice(len(self._sample_p), size=self.per_rank * self.nranks, replace=True, p=self._sample_p)

    def __iter__(self) -> Iterator[List[int]]:
        draws = self.draws()
        step = self.batch_size * self.nranks  # one global batch: each rank's batch side by side
        for start in range(0, len(draws), step):
            chunk = draws[start:start + step]
            size = len(chunk) // self.nranks
            mine = chunk[self.local_rank * size:(self.local_rank + 1) * size]
            if len(mine) == self.batch_size or (len(mine) and not self.drop_last):
                yield [int(i) for i in mine]

    def __len__(self) -> int:
        full, rest = divmod(self.per_rank, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)
