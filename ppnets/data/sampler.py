"""A resumable batch sampler: skip the batches an interrupted epoch already consumed."""
from __future__ import annotations

import itertools
from typing import Iterator, List

import paddle


class ResumableBatchSampler(paddle.io.BatchSampler):
    """Wraps a (Distributed)BatchSampler; after ``skip(k)`` the next epoch starts at batch ``k``.

    The wrapped sampler's order is a function of the epoch only (``set_epoch``), so a run
    resumed mid-epoch sees exactly the batches the uninterrupted run would have seen.
    """

    def __init__(self, inner: paddle.io.BatchSampler) -> None:
        self.inner = inner
        self.sampler = getattr(inner, "sampler", None)
        self.batch_size = inner.batch_size
        self.drop_last = inner.drop_last
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def skip(self, batches: int) -> None:
        """Skip the first ``batches`` batches of the next iteration only."""
        self._skip = int(batches)

    def __iter__(self) -> Iterator[List[int]]:
        skip, self._skip = self._skip, 0
        return itertools.islice(iter(self.inner), skip, None)

    def __len__(self) -> int:
        return len(self.inner)
