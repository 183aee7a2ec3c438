"""Request batching for the HTTP server: single images from concurrent requests, run as batches by
one inference thread.

- A batch holds images of **one shape**: images that arrive together but differ in size (a wide
  and a tall one, from preprocessing that does not fix the size) run as separate batches, so
  no batch ever fails to stack.
- A failure inside a batch (the runtime raises, or returns the wrong number of rows) fails that
  batch's requests with :class:`InferenceError` and the loop goes on with the next batch.
- Should the loop itself ever stop (a ``KeyboardInterrupt``/``SystemExit`` inside the runtime),
  :attr:`Batcher.alive` turns false and :attr:`Batcher.failure` says why: ``/health`` reports it,
  and new requests are refused at once instead of waiting for an answer that never comes.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

__all__ = ["Batcher", "InferenceError"]

log = logging.getLogger("uvicorn.error")

Item = Tuple[np.ndarray, asyncio.Future]


class InferenceError(Exception):
    """A batch could not be run (the runtime's error, one line), or the inference loop has stopped."""


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())[:300]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class Batcher:
    """Collects images from concurrent requests into batches of at most ``max_batch`` images of one
    shape, waiting at most ``max_wait_ms`` for a batch to fill, and runs them with ``run``
    (NCHW float32 batch → one output row per image) on a single thread."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], max_batch: int = 16, max_wait_ms: float = 5.0) -> None:
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ppnets-infer")
        self.queue: Optional[asyncio.Queue] = None
        self.task: Optional[asyncio.Task] = None
        self.failure: Optional[str] = None       #: why the loop stopped, when it did
        self.busy_since: Optional[float] = None  #: monotonic time at which the running batch started
        self.batches = self.images = self.largest_batch = self.failed_batches = 0

    @property
    def alive(self) -> bool:
        return self.task is not None and not self.task.done()

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        self._fail_waiting(InferenceError("the server is shutting down"))
        # a batch still running finishes on its own; shutting down does not wait for it here
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """One preprocessed CHW image → its output row, once its batch has run."""
        if not self.alive:
            raise InferenceError(f"the inference loop has stopped ({self.failure or 'not started'}); "
                                 "restart the server")
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((image, future))
        return await future

    async def _collect(self) -> List[Item]:
        items = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while len(items) < self.max_batch:
            if not self.queue.empty():
                items.append(self.queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                items.append(await asyncio.wait_for(self.queue.get(), remaining))
            except asyncio.TimeoutError:
                break
        return items

    async def _loop(self) -> None:
        collected: List[Item] = []
        try:
            while True:
                collected = await self._collect()
                groups: Dict[tuple, List[Item]] = {}
                for image, future in collected:
                    if not future.done():  # a request that went away while waiting is not run
                        groups.setdefault(image.shape, []).append((image, future))
                for group in groups.values():
                    await self._run_group(group)
        except asyncio.CancelledError:
            self._fail(collected, InferenceError("the server is shutting down"))
            raise
        except BaseException as e:  # noqa: B036 - the loop must report why it stopped, whatever stopped it
            self.failure = _one_line(e)
            log.error("the inference loop stopped: %s; /health now answers 503", self.failure)
            error = InferenceError(f"the inference loop has stopped ({self.failure}); restart the server")
            self._fail(collected, error)
            self._fail_waiting(error)

    async def _run_group(self, group: List[Item]) -> None:
        loop = asyncio.get_running_loop()
        self.busy_since = time.monotonic()
        try:
            batch = np.stack([image for image, _ in group])
            out = await loop.run_in_executor(self.executor, self.run, batch)
            if not (isinstance(out, np.ndarray) and out.ndim == 2 and out.shape[0] == len(group)):
                raise InferenceError(f"the model answered {getattr(out, 'shape', type(out).__name__)} "
                                     f"for a batch of {len(group)} images")
        except Exception as e:
            self.failed_batches += 1
            log.error("a batch of %d image(s) of shape %s failed: %s", len(group), list(group[0][0].shape),
                      _one_line(e))
            self._fail(group, InferenceError(f"inference failed: {_one_line(e)}"))
            return
        finally:
            self.busy_since = None
        self.batches += 1
        self.images += len(group)
        self.largest_batch = max(self.largest_batch, len(group))
        for (_, future), row in zip(group, out):
            if not future.done():
                future.set_result(row)

    @staticmethod
    def _fail(items: List[Item], error: Exception) -> None:
        for _, future in items:
            if not future.done():
                future.set_exception(error)

    def _fail_waiting(self, error: Exception) -> None:
        while self.queue is not None and not self.queue.empty():
            self._fail([self.queue.get_nowait()], error)
