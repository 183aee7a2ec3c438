"""Where the data pipeline's randomness comes from.

Nothing in ppnets draws from (or reseeds) Python's ``random`` or numpy's global generator.
Each random draw of the data pipeline comes from a :class:`numpy.random.Generator` that is
handed to the op, derived with :class:`numpy.random.SeedSequence` from ``Global.seed`` and
the draw's position:

- a sample's transform ops: ``(seed, epoch, sample index)`` (:func:`sample_rng`);
- a batch's batch ops (Mixup/CutMix): ``(seed, epoch, batch number)`` (:func:`batch_seed`), where
  the batch number counts the epoch's batches over all ranks (``batch * nranks + rank``);
- the epoch's shuffle order: ``(seed, epoch)`` (:func:`epoch_shuffle_seed`).

So the data a run sees depends neither on ``num_workers`` nor on which worker loads what, and
a run resumed mid-epoch sees exactly the draws of the uninterrupted run. Without a seed
(``Global.seed: null``) every generator draws fresh entropy from the OS.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["SAMPLE_STREAM", "BATCH_STREAM", "as_generator", "seed_sequence", "sample_rng", "batch_seed",
           "epoch_shuffle_seed"]

#: the first word of the spawn key: keeps the per-sample and per-batch streams apart
SAMPLE_STREAM, BATCH_STREAM = 0, 1


def as_generator(rng: Optional[np.random.Generator]) -> np.random.Generator:
    """``rng`` itself, or a generator on fresh entropy when it is None (an op called on its own)."""
    return rng if rng is not None else np.random.default_rng()


def seed_sequence(seed: Optional[int], stream: int, epoch: int, position: int) -> np.random.SeedSequence:
    """The seed sequence of draw ``position`` of ``stream`` in ``epoch``; fresh entropy if ``seed`` is None."""
    if seed is None:
        return np.random.SeedSequence()
    return np.random.SeedSequence(int(seed) % 2 ** 64, spawn_key=(int(stream), int(epoch), int(position)))


def sample_rng(seed: Optional[int], epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index``'s transform ops in ``epoch``."""
    return np.random.default_rng(seed_sequence(seed, SAMPLE_STREAM, epoch, index))


def batch_seed(seed: Optional[int], epoch: int, batch: int) -> np.random.SeedSequence:
    """The seed sequence of batch ``batch``'s batch ops in ``epoch`` (it travels with the batch's samples)."""
    return seed_sequence(seed, BATCH_STREAM, epoch, batch)


def epoch_shuffle_seed(seed: Optional[int], epoch: int) -> int:
    """The 32-bit seed of epoch ``epoch``'s shuffle: ``epoch`` itself when unseeded (Paddle's
    default), else a mix of ``(seed, epoch)`` — different seeds give different orders."""
    if seed is None:
        return int(epoch)
    return int(np.random.SeedSequence([int(seed) % 2 ** 64, int(epoch)]).generate_state(1)[0])
