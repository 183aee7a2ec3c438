"""The HTTP JSON endpoint of ``tools/serve.py`` (FastAPI on uvicorn) over :class:`Predictor`.

- ``POST /predict`` — an image as the request body, or as the multipart field ``image``;
  optional ``?topk=N``. Answers ``{"results": [{"class_id", "label", "score"}, …]}``: the top-k
  classes, or for a multi-label export every class whose probability reaches the threshold (the
  export's, or ``?threshold=P``), highest first — possibly none.
- ``GET /health`` — ``{"status": "ok", …}``; ``GET /model`` — the export's metadata and the
  server's settings and counters; ``GET /`` — a page to upload an image and see the answer.

Requests are decoded and preprocessed in the server's thread pool, then **batched**: a
single inference thread takes every waiting image, up to ``max_batch``, waiting at most
``max_wait_ms`` for more, and runs them as one batch. Bad requests (not an image, too large,
a missing field, a bad ``topk`` or ``threshold``) get a 4xx with ``{"error": "…"}``.
"""
from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..errors import ConfigError, DataError
from .postprocess import threshold_results, topk_results
from .predictor import Predictor

__all__ = ["create_app", "Batcher", "PAGE"]


class BadRequest(Exception):
    """A client error: HTTP ``status`` with a one-line ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Batcher:
    """Collects single images from concurrent requests into batches for one inference thread."""

    def __init__(self, run, max_batch: int = 16, max_wait_ms: float = 5.0) -> None:
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ppnets-infer")
        self.queue: Optional[asyncio.Queue] = None
        self.task: Optional[asyncio.Task] = None
        self.batches = 0
        self.images = 0
        self.largest_batch = 0

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.executor.shutdown(wait=True)

    async def submit(self, image: np.ndarray) -> np.ndarray:
        """One preprocessed CHW image → its output row, once its batch has run."""
        assert self.queue is not None, "Batcher.start() was not awaited"
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((image, future))
        return await future

    async def _collect(self) -> List[Tuple[np.ndarray, asyncio.Future]]:
        assert self.queue is not None
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
        loop = asyncio.get_running_loop()
        while True:
            items = await self._collect()
            batch = np.stack([image for image, _ in items])
            try:
                out = await loop.run_in_executor(self.executor, self.run, batch)
            except Exception as e:  # the runtime failed: every waiting request gets the error
                for _, future in items:
                    if not future.done():
                        future.set_exception(e)
                continue
            self.batches += 1
            self.images += len(items)
            self.largest_batch = max(self.largest_batch, len(items))
            for (_, future), row in zip(items, out):
                if not future.done():
                    future.set_result(row)


async def _single_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _read_limited(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BadRequest(413, f"request body of {int(length)} bytes is larger than the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, f"request body is larger than the limit of {limit} bytes")
    return bytes(body)


async def _image_bytes(request: Request, limit: int) -> bytes:
    """The image: the multipart field ``image``, or else the whole body."""
    body = await _read_limited(request, limit)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(request.headers, _single_chunk(body)).parse()
        except MultiPartException as e:
            raise BadRequest(400, f"malformed multipart body: {e.message}") from None
        field = form.get("image")
        if field is None:
            raise BadRequest(400, "multipart field 'image' is missing (send the file as 'image')")
        data = await field.read() if hasattr(field, "read") else str(field).encode()
    else:
        data = body
    if not data:
        raise BadRequest(400, "no image: the request body (or the 'image' field) is empty")
    return data


def _topk(request: Request, default: int, class_num: int) -> int:
    raw = request.query_params.get("topk")
    if raw is None:
        return min(default, class_num)
    if not raw.isdigit() or not 1 <= int(raw) <= class_num:
        raise BadRequest(400, f"topk: expected an integer from 1 to {class_num}, got {raw!r}")
    return int(raw)


def _threshold(request: Request, default: float) -> float:
    raw = request.query_params.get("threshold")
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise BadRequest(400, f"threshold: expected a probability from 0 to 1, got {raw!r}")
    return value


def create_app(model_dir: str, backend: str = "auto", precision: str = "fp32", threads: Optional[int] = None,
               max_batch: int = 16, max_wait_ms: float = 5.0, max_bytes: int = 8 * 2 ** 20, topk: int = 5,
               threshold: Optional[float] = None) -> FastAPI:
    """The FastAPI app serving the export in ``model_dir`` (the model loads here, before serving).
    ``threshold``: a multi-label export's default threshold (else the one recorded at export)."""
    predictor = Predictor(model_dir, backend=backend, precision=precision, cpu_threads=threads)
    if threshold is not None and not predictor.multilabel:
        raise ConfigError(f"--threshold: {model_dir} is a single-label export (it answers the top-k classes); "
                          "--threshold is for multi-label exports")
    threshold = predictor.threshold if threshold is None else threshold
    batcher = Batcher(predictor.run, max_batch, max_wait_ms)
    names = predictor.label_names
    class_num = int(predictor.meta.get("class_num") or len(names or []) or 1)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="ppnets classifier", lifespan=lifespan)
    app.state.predictor, app.state.batcher = predictor, batcher

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "; ".join(str(e.get("msg")) for e in exc.errors())}, status_code=400)

    @app.post("/predict")
    async def predict(request: Request) -> Dict[str, Any]:
        if predictor.multilabel:
            cut = _threshold(request, threshold)
        else:
            k = _topk(request, topk, class_num)
        data = await _image_bytes(request, max_bytes)
        try:
            image = await run_in_threadpool(predictor.transform, data)
        except DataError as e:
            raise BadRequest(400, f"not a usable image: {e}") from None
        probs = await batcher.submit(image)
        r = threshold_results(["upload"], probs[None], cut, names)[0] if predictor.multilabel else \
            topk_results(["upload"], probs[None], k, names)[0]
        return {"results": [{"class_id": int(i), "label": n, "score": float(s)}
                            for i, n, s in zip(r["class_ids"], r["label_names"], r["scores"])]}

    @app.get("/health")
    async def health() -> Dict[str, Any]:
        return {"status": "ok", "backend": predictor.backend, "precision": predictor.precision}

    @app.get("/model")
    async def model() -> Dict[str, Any]:
        meta = predictor.meta
        return {"model_name": meta.get("model_name"), "class_num": class_num, "input_shape": meta.get("input_shape"),
                "label_names": names, "softmax": meta.get("softmax", True), "backend": predictor.backend,
                "precision": predictor.precision, "max_batch": max_batch, "max_wait_ms": max_wait_ms,
                "max_bytes": max_bytes, "topk": min(topk, class_num), "multilabel": predictor.multilabel,
                "threshold": threshold,
                "served": {"batches": batcher.batches, "images": batcher.images,
                           "largest_batch": batcher.largest_batch}}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    return app


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ppnets classifier</title>
<style>body{font:16px sans-serif;max-width:40em;margin:2em auto}table{border-collapse:collapse}
td,th{padding:.2em .8em;border-bottom:1px solid #ccc;text-align:left}#error{color:#b00}img{max-height:10em}</style>
</head><body>
<h1>ppnets classifier</h1>
<p id="model">loading model info…</p>
<form id="form"><input type="file" id="file" name="image" accept="image/*"> <button type="submit">Classify</button></form>
<p><img id="preview" alt=""></p>
<p id="error"></p>
<table id="results" hidden><thead><tr><th>class</th><th>label</th><th>score</th></tr></thead><tbody></tbody></table>
<script>
fetch("model").then(r => r.json()).then(m => {
  document.getElementById("model").textContent =
    `${m.model_name}: ${m.class_num} classes, input ${m.input_shape.join("×")}, ${m.backend} ${m.precision}`;
});
document.getElementById("form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const file = document.getElementById("file").files[0];
  const error = document.getElementById("error"), table = document.getElementById("results");
  error.textContent = ""; table.hidden = true;
  if (!file) { error.textContent = "choose an image first"; return; }
  document.getElementById("preview").src = URL.createObjectURL(file);
  const body = new FormData(); body.append("image", file);
  const answer = await (await fetch("predict", {method: "POST", body})).json();
  if (answer.error) { error.textContent = answer.error; return; }
  const rows = table.querySelector("tbody"); rows.innerHTML = "";
  for (const r of answer.results) {
    const tr = rows.insertRow();
    for (const v of [r.class_id, r.label, r.score.toFixed(4)]) tr.insertCell().textContent = v;
  }
  table.hidden = false;
});
</script>
</body></html>
"""
