"""The HTTP JSON endpoint of ``tools/serve.py`` (FastAPI on uvicorn) over :class:`Predictor`.

- ``POST /predict`` — an image (PNG, JPEG, BMP or WebP) as the request body, or as the multipart
  field ``image``; optional ``?topk=N`` (``?threshold=P`` for a multi-label export). Answers
  ``{"results": [{"class_id", "label", "score"}, …]}``: the top-k classes, or for a multi-label
  export every class whose probability reaches the threshold, highest first — possibly none.
- ``GET /health`` — ``{"status": "ok", …}``, or 503 once the inference loop has stopped or the
  server is shutting down; ``GET /model`` — the export's metadata, the server's settings, limits
  and counters; ``GET /`` — a page to upload an image and see the answer.

A request goes through, in order: its query parameters (parsed strictly), its body (at most
``max_mb``, all of it within ``body_timeout``, within the shared ``buffer_mb``), the image's format
(from its first bytes) and size (from its header, at most ``max_mpx``), a share of the pixels being
decoded at once (``decode_mpx``), decoding and preprocessing in the thread pool, then the
:class:`~ppnets.deploy.batcher.Batcher`. Every error is ``{"error": "…"}`` with a 4xx or 5xx;
a limit shared by all requests answers 503 with ``Retry-After`` (see :mod:`ppnets.deploy.limits`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any, AsyncIterator, Dict, Optional

import cv2
import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from ..data.transforms.limits import image_pixels
from ..errors import ConfigError, DataError, short_repr
from .batcher import Batcher, InferenceError
from .limits import Budget, ServerLimits
from .page import PAGE
from .postprocess import threshold_results, topk_results
from .predictor import Predictor
from .protocol import ConnectionCounters

__all__ = ["create_app", "check_preprocessing", "image_format", "PAGE"]

log = logging.getLogger("uvicorn.error")

#: the encoded formats accepted (OpenCV picks its decoder from the same first bytes); a Radiance
#: .hdr, a TIFF, a JPEG 2000… are refused with 415 before anything reads their size
FORMATS = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP"}
#: the first bytes of each body, not counted in ``buffer_mb``: a small image is never refused because
#: large uploads fill it (at most ``max_connections`` × this much more)
FREE_BODY_BYTES = 64 * 1024
RETRY = {"Retry-After": "1"}
CLOSE = {"Connection": "close"}


class BadRequest(Exception):
    """An error answer: HTTP ``status`` with a one-line ``message`` (and headers)."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class Disconnected(Exception):
    """The client went away before its request body was complete."""


def image_format(data: bytes) -> Optional[str]:
    """``"PNG"``, ``"JPEG"``, ``"BMP"`` or ``"WebP"`` from the first bytes of ``data``; None for anything else."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in FORMATS.items() if data.startswith(magic)), None)


#: decoding takes about 6 bytes per pixel, a 16-bit PNG 15 (measured): its pixels count this much more in
#: ``decode_mpx``, so that the pixels being decoded bound the memory at 6 bytes each
WIDE_PNG_WEIGHT = 2.5


def _pixels(data: bytes, limit: int, limit_name: str = "--max_mpx") -> int:
    """The image's pixel count from its header, or a BadRequest (415 / 400 / 413)."""
    kind = image_format(data)
    if kind is None:
        raise BadRequest(415, f"not a PNG, JPEG, BMP or WebP image (it starts with {short_repr(data[:12])}); "
                              "send one of those formats")
    size = image_pixels(data)
    if size is None:
        raise BadRequest(400, f"not a usable image: the {kind} header cannot be read (damaged or truncated?)")
    if size[0] > limit:
        raise BadRequest(413, f"{size[1]} ({size[0] / 1e6:.1f} megapixels) is larger than the server's limit of "
                              f"{limit / 1e6:g} megapixels ({limit_name})")
    return size[0]


def _decode_cost(data: bytes, pixels: int) -> float:
    """The share of ``decode_mpx`` an image of ``pixels`` takes (a 16-bit PNG takes more)."""
    return pixels * WIDE_PNG_WEIGHT if data[:8] == b"\x89PNG\r\n\x1a\n" and data[24:25] == b"\x10" else pixels


async def _receive_body(request: Request, limits: ServerLimits, buffers: Budget, held: list,
                        draining: asyncio.Event) -> bytes:
    """The whole body, within ``max_mb``, ``body_timeout`` and the shared ``buffer_mb`` (``held[0]``: the
    bytes taken from ``buffers``, which the caller gives back; the first :data:`FREE_BODY_BYTES` of a
    body are not counted)."""
    cap = limits.max_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise BadRequest(413, f"request body of {int(length)} bytes is larger than the limit of {cap} bytes "
                              "(--max_mb)", CLOSE)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limits.body_timeout
    body = bytearray()
    drain = asyncio.ensure_future(draining.wait())
    try:
        while True:
            message = asyncio.ensure_future(request.receive())
            done, _ = await asyncio.wait({message, drain}, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if message not in done:
                message.cancel()
                if drain in done:
                    raise BadRequest(503, "the server is shutting down; retry in a moment", {**RETRY, **CLOSE})
                raise BadRequest(408, f"the request body did not arrive within {limits.body_timeout:g} s "
                                      "(--body_timeout)", CLOSE)
            event = message.result()
            if event["type"] == "http.disconnect":
                raise Disconnected(f"after {len(body):,} of {length or '?'} bytes of its body")
            chunk = event.get("body", b"")
            if len(body) + len(chunk) > cap:
                raise BadRequest(413, f"request body is larger than the limit of {cap} bytes (--max_mb)", CLOSE)
            counted = max(0, len(body) + len(chunk) - FREE_BODY_BYTES) - max(0, len(body) - FREE_BODY_BYTES)
            if counted and not buffers.take(counted):
                raise BadRequest(503, f"the server is receiving {limits.buffer_mb:g} MiB of request bodies at once "
                                      "(--buffer_mb); retry shortly", {**RETRY, **CLOSE})
            held[0] += counted
            body += chunk
            if not event.get("more_body", False):
                return bytes(body)
    finally:
        drain.cancel()


async def _single_chunk(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _image_bytes(request: Request, body: bytes) -> bytes:
    """The image: the multipart field ``image``, or else the whole body."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            form = await MultiPartParser(Headers(raw=request.scope["headers"]), _single_chunk(body), max_files=1,
                                         max_fields=16).parse()
        except (MultiPartException, ValueError) as e:   # python-multipart's own errors are ValueErrors
            raise BadRequest(400, f"malformed multipart body: {getattr(e, 'message', None) or e}") from None
        try:
            field = form.get("image")
            if field is None:
                raise BadRequest(400, "multipart field 'image' is missing (send the file as 'image')")
            data = await field.read() if hasattr(field, "read") else str(field).encode()
        finally:
            await form.close()
    else:
        data = body
    if not data:
        raise BadRequest(400, "no image: the request body (or the 'image' field) is empty")
    return data


def _query(request: Request, name: str, valid: set) -> Optional[str]:
    """The one value of query parameter ``name``; unknown or repeated parameters are a 400."""
    unknown = sorted(set(request.query_params.keys()) - valid)
    if unknown:
        raise BadRequest(400, f"unknown query parameter {short_repr(unknown[0])}; this export takes "
                              f"{', '.join(sorted(valid))}")
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest(400, f"{name}: given {len(values)} times; give it once")
    return values[0] if values else None


def _topk(raw: Optional[str], default: int, class_num: int) -> int:
    if raw is None:
        return min(default, class_num)
    if not (re.fullmatch(r"[0-9]{1,7}", raw, re.ASCII) and 1 <= int(raw) <= class_num):
        raise BadRequest(400, f"topk: expected an integer from 1 to {class_num}, got {short_repr(raw)}")
    return int(raw)


def _threshold(raw: Optional[str], default: float) -> float:
    if raw is None:
        return default
    if not (re.fullmatch(r"(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][-+]?[0-9]{1,3})?", raw, re.ASCII)
            and 0.0 <= float(raw) <= 1.0):
        raise BadRequest(400, f"threshold: expected a probability from 0 to 1, got {short_repr(raw)}")
    return float(raw)


def check_preprocessing(predictor: Predictor) -> None:
    """Refuse, in one line, an export whose model cannot run on its own preprocessed input: every
    request would fail. (That the preprocessing gives the model's input shape, the Predictor has
    already checked when it loaded the export.) One synthetic image is run."""
    probe = None
    for h, w in ((389, 517), (611, 403), (256, 256)):
        ok, png = cv2.imencode(".png", np.random.default_rng(h).integers(0, 256, (h, w, 3), dtype=np.uint8))
        try:
            probe = np.asarray(predictor.transform(png.tobytes()))
            break
        except DataError:   # e.g. a crop larger than this image
            continue
    if probe is not None and not predictor.meta.get("features_only"):
        try:
            out = predictor.run(probe[None].astype(np.float32))
        except Exception as e:  # the runtime's own error, whatever its type
            raise ConfigError(f"{predictor.model_dir}: the model cannot run on its own preprocessed input: "
                              f"{type(e).__name__}: {' '.join(str(e).split())[:300]}") from None
        if np.ndim(out) != 2 or len(out) != 1:
            raise ConfigError(f"{predictor.model_dir}: the model answers {np.shape(out)} for one image; expected "
                              "one row of class scores")


def create_app(model_dir: str, backend: str = "auto", precision: str = "fp32", threads: Optional[int] = None,
               max_batch: int = 16, max_wait_ms: float = 5.0, topk: int = 5, threshold: Optional[float] = None,
               limits: Optional[ServerLimits] = None, predictor: Optional[Predictor] = None) -> FastAPI:
    """The FastAPI app serving the export in ``model_dir`` (the model loads and is checked here, before
    serving; ``predictor``: one already loaded). ``threshold``: a multi-label export's default
    threshold (else the one recorded at export)."""
    limits = (limits or ServerLimits()).check()
    predictor = predictor or Predictor(model_dir, backend=backend, precision=precision, cpu_threads=threads)
    if predictor.meta.get("features_only"):
        raise ConfigError(f"{model_dir}: a features_only (backbone) export outputs feature maps, not classes; "
                          "it cannot be served")
    if threshold is not None and not predictor.multilabel:
        raise ConfigError(f"--threshold: {model_dir} is a single-label export (it answers the top-k classes); "
                          "--threshold is for multi-label exports")
    check_preprocessing(predictor)
    threshold = predictor.threshold if threshold is None else threshold
    batcher = Batcher(predictor.run, max_batch, max_wait_ms)
    names = predictor.label_names
    class_num = int(predictor.meta.get("class_num") or len(names or []) or 1)
    want = tuple(int(v) for v in predictor.meta["input_shape"])
    pixels, buffers = Budget(limits.decode_pixels), Budget(limits.buffer_bytes)
    param = "threshold" if predictor.multilabel else "topk"
    decoder = next((op for op in predictor.transform.ops if type(op).__name__ == "DecodeImage"), None)
    max_pixels = min(limits.max_pixels, getattr(decoder, "max_pixels", limits.max_pixels))
    pixel_limit = "--max_mpx" if max_pixels == limits.max_pixels else "the export's DecodeImage.max_pixels"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = asyncio.Event()
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="ppnets classifier", lifespan=lifespan)
    app.state.predictor, app.state.batcher, app.state.limits = predictor, batcher, limits
    app.state.connections = ConnectionCounters()
    app.state.decoding, app.state.receiving = pixels, buffers

    @app.exception_handler(BadRequest)
    async def _bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "; ".join(str(e.get("msg")) for e in exc.errors())}, status_code=400)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": f"internal server error ({type(exc).__name__}); see the server's log"},
                            status_code=500)

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        raw = _query(request, param, {param})
        cut = _threshold(raw, threshold) if predictor.multilabel else None
        k = None if predictor.multilabel else _topk(raw, topk, class_num)
        if app.state.draining.is_set():
            raise BadRequest(503, "the server is shutting down; retry in a moment", {**RETRY, **CLOSE})
        held = [0]
        try:
            try:
                body = await _receive_body(request, limits, buffers, held, app.state.draining)
            except Disconnected as e:
                client = request.client
                log.info("client %s:%s disconnected %s", client.host if client else "?", client.port if client else "?",
                         e)
                return Response(status_code=400)   # never sent: the client is gone
            data = await _image_bytes(request, body)
            count = await run_in_threadpool(_pixels, data, max_pixels, pixel_limit)
            count = min(int(_decode_cost(data, count)), pixels.total)
            if not pixels.take(count):
                raise BadRequest(503, f"the server is decoding {limits.decode_mpx:g} megapixels at once "
                                      "(--decode_mpx); retry shortly", RETRY)
            try:
                image = np.asarray(await run_in_threadpool(predictor.transform, data))
            except DataError as e:
                raise BadRequest(400, f"not a usable image: {e}") from None
            finally:
                pixels.give(count)
            del body, data
            buffers.give(held[0])
            held[0] = 0
            if image.shape != want:
                raise BadRequest(500, f"the export's preprocessing gave {list(image.shape)} for this image, but the "
                                      f"model takes {list(want)}")
            try:
                probs = await batcher.submit(image.astype(np.float32, copy=False))
            except InferenceError as e:
                raise BadRequest(503 if not batcher.alive else 500, str(e)) from None
        finally:
            buffers.give(held[0])
        r = threshold_results(["upload"], probs[None], cut, names)[0] if predictor.multilabel else \
            topk_results(["upload"], probs[None], k, names)[0]
        return {"results": [{"class_id": int(i), "label": n, "score": float(s)}
                            for i, n, s in zip(r["class_ids"], r["label_names"], r["scores"])]}

    @app.get("/health")
    async def health() -> Any:
        base = {"backend": predictor.backend, "precision": predictor.precision}
        if not batcher.alive:
            return JSONResponse({"status": "error", **base, "error": f"the inference loop has stopped "
                                 f"({batcher.failure or 'not running'}); restart the server"}, status_code=503)
        if app.state.draining.is_set():
            return JSONResponse({"status": "shutting down", **base}, status_code=503, headers=RETRY)
        return {"status": "ok", **base}

    @app.get("/model")
    async def model() -> Dict[str, Any]:
        meta = predictor.meta
        return {"model_name": meta.get("model_name"), "class_num": class_num, "input_shape": meta.get("input_shape"),
                "label_names": names, "softmax": meta.get("softmax", True), "backend": predictor.backend,
                "precision": predictor.precision, "max_batch": max_batch, "max_wait_ms": max_wait_ms,
                "max_bytes": limits.max_bytes, "max_pixels": max_pixels, "topk": min(topk, class_num),
                "multilabel": predictor.multilabel, "threshold": threshold, "limits": vars(limits),
                "served": {"batches": batcher.batches, "images": batcher.images,
                           "largest_batch": batcher.largest_batch, "failed_batches": batcher.failed_batches},
                "refused": {"decode_mpx": pixels.refused, "buffer_mb": buffers.refused},
                "connections": app.state.connections.as_dict()}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    return app
