"""A seeded, resumable batch sampler: the epoch's order is a function of ``(seed, epoch)``."""
from __future__ import annotations

import itertools
from typing import Iterator, List, Optional

import numpy as np
import paddle


def epoch_shuffle_seed(seed: Optional[int], epoch: int) -> int:
    """The 32-bit seed of epoch ``epoch``'s shuffle: ``epoch`` itself when unseeded (Paddle's
    default), else a mix of ``(seed, epoch)`` — different seeds give different orders."""
    if seed is None:
        return int(epoch)
    return int(np.random.SeedSequence([int(seed) % 2 ** 64, int(epoch)]).generate_state(1)[0])


class ResumableBatchSampler(paddle.io.BatchSampler):
    """Wraps a ``DistributedBatchSampler``; after ``skip(k)`` the next iteration starts at batch ``k``.

    The wrapped sampler shuffles with ``np.random.RandomState(<its epoch>)``; this wrapper sets
    that epoch to :func:`epoch_shuffle_seed` ``(seed, epoch)`` at every iteration, so the order
    is a pure function of ``(seed, epoch)``: the same on every rank, changed by ``Global.seed``,
    and a run resumed mid-epoch sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, inner: paddle.io.BatchSampler, seed: Optional[int] = None) -> None:
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

    def __iter__(self) -> Iterator[List[int]]:
        skip, self._skip = self._skip, 0
        if hasattr(self.inner, "set_epoch"):
            # set at every iteration: Paddle's sampler advances its own epoch after a shuffled pass
            self.inner.set_epoch(epoch_shuffle_seed(self.seed, self.epoch))
        return itertools.islice(iter(self.inner), skip, None)

    def __len__(self) -> int:
        return len(self.inner)
