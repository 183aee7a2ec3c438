"""A seeded, resumable batch sampler: the epoch's order is a function of ``(seed, epoch)``."""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

import paddle

from .rng import epoch_shuffle_seed

__all__ = ["ResumableBatchSampler", "SampleKey", "epoch_shuffle_seed"]

#: what the sampler yields per sample: ``(sample index, batch number)``
SampleKey = Tuple[int, int]


class ResumableBatchSampler(paddle.io.BatchSampler):
    """Wraps a ``DistributedBatchSampler``; after ``skip(k)`` the next iteration starts at batch ``k``.

    The wrapped sampler shuffles with ``np.random.RandomState(<its epoch>)``; this wrapper sets
    that epoch to :func:`~ppnets.data.rng.epoch_shuffle_seed` ``(seed, epoch)`` at every iteration,
    so the order is a pure function of ``(seed, epoch)``: the same on every rank, changed by
    ``Global.seed``, and a run resumed mid-epoch sees exactly the batches the uninterrupted run
    would have seen.

    Each batch is a list of :data:`SampleKey` ``(sample index, batch number)``: the batch number
    (``batch * nranks + rank``, counted from the start of the epoch also after ``skip``) is what the
    batch ops' randomness derives from (:func:`~ppnets.data.rng.batch_seed`); the dataset hands it on
    with each sample to the loader's collate function.
    """

    def __init__(self, inner: paddle.io.DistributedBatchSampler, seed: Optional[int] = None) -> None:
        self.inner = inner
        self.seed = seed
        self.sampler = getattr(inner, "sampler", None)
        self.dataset = getattr(inner, "dataset", None)
        self.batch_size = inner.batch_size
        self.drop_last = inner.drop_last
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next iteration only."""
        self._skip = int(batches)

    def __iter__(self) -> Iterator[List[SampleKey]]:
        skip, self._skip = self._skip, 0
        # set at every iteration: Paddle's sampler advances its own epoch after a shuffled pass
        self.inner.set_epoch(epoch_shuffle_seed(self.seed, self.epoch))
        nranks, rank = self.inner.nranks, self.inner.local_rank
        for b, batch in enumerate(self.inner):
            if b >= skip:
                number = b * nranks + rank
                yield [(int(i), number) for i in batch]

    def sample_indices(self) -> List[int]:
        """The sample indices of one whole iteration, in order (padding included); leaves ``skip`` alone."""
        self.inner.set_epoch(epoch_shuffle_seed(self.seed, self.epoch))
        return [int(i) for batch in self.inner for i in batch]

    def __len__(self) -> int:
        return len(self.inner)
