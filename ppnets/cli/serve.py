"""Serve an exported model over HTTP: JSON predictions, request batching, an upload page.

``ppnets serve --model_dir ./inference [--backend auto] [--precision fp32] [--host 127.0.0.1]
[--port 8000] [--max_batch 16] [--max_wait_ms 5] [--topk 5] [--threshold P] [--threads N]`` and the
limits (``--max_mb 8 --max_mpx 40 --decode_mpx 80 --buffer_mb 64 --max_connections 256
--header_timeout 10 --body_timeout 30 --keep_alive 5 --max_header_kb 16 --graceful_timeout 10``;
docs/reliability.md, "Server limits"), or ``python tools/serve.py …``.
It needs the deploy extra (FastAPI, uvicorn): ``pip install 'ppnets[deploy]'``.

``curl -F image=@dataset/digits/val/7/1728.png http://127.0.0.1:8000/predict`` (or the image as the
raw body: ``curl --data-binary @FILE -H 'Content-Type: image/png' …``) answers
``{"results": [{"class_id": 7, "label": "7", "score": 0.75}, …]}`` (a multi-label export: the classes
whose probability reaches the threshold); ``GET /health``, ``GET /model``, and a page to try it at ``/``.
SIGTERM/SIGINT: a graceful shutdown, exit 0, within ``--graceful_timeout`` s (+5 s at worst, then exit 1).
"""
import argparse
import math
import os
import sys
from dataclasses import fields

from ..deploy.limits import LIMIT_FLAGS, ServerLimits
from ..deploy.runtimes import BACKENDS, PRECISIONS
from ..errors import ConfigError
from ..utils.extras import SERVE, require_extra


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    p.add_argument("--backend", default="auto", choices=("auto",) + BACKENDS, help="runtime (auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fp32 or int8 (fp32)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000; 0: any free port)")
    p.add_argument("--max_batch", type=int, default=16, help="largest batch of concurrent requests (16)")
    p.add_argument("--max_wait_ms", type=float, default=5.0, help="how long a batch waits to fill up (5 ms)")
    p.add_argument("--topk", type=int, default=5, help="classes per answer unless ?topk= (5)")
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label exports: answer the classes reaching this probability unless ?threshold= "
                        "(default: the export's Infer.threshold)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    defaults = ServerLimits()
    for f in fields(ServerLimits):
        default = getattr(defaults, f.name)
        p.add_argument(f"--{f.name}", type=int if f.type == "int" else float, default=default,
                       help=f"{LIMIT_FLAGS[f.name]} ({default:g})")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p


def main(argv=None):
    if not {"-h", "--help"} & set(argv or []):  # no use checking the arguments of a server that cannot start
        require_extra("ppnets serve", SERVE)
    args = parser().parse_args(argv)
    for name in ("max_batch", "topk"):
        if not 1 <= getattr(args, name) <= 100000:
            raise ConfigError(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise ConfigError(f"--threads: expected a positive integer (inference threads), got {args.threads}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold: expected a probability in [0, 1], got {args.threshold}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port: expected 0 to 65535, got {args.port}")
    if not (math.isfinite(args.max_wait_ms) and 0 <= args.max_wait_ms <= 10000):
        raise ConfigError(f"--max_wait_ms: expected a number of milliseconds from 0 to 10000, got {args.max_wait_ms}")
    limits = ServerLimits(**{f.name: getattr(args, f.name) for f in fields(ServerLimits)}).check()

    from ..deploy.server import create_app   # (FastAPI and uvicorn: the deploy extra)
    from ..deploy.serving import ensure_open_files, listen, serve

    ensure_open_files(limits)

    app = create_app(args.model_dir, backend=args.backend, precision=args.precision, threads=args.threads,
                     max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, topk=args.topk,
                     threshold=args.threshold, limits=limits)
    sock = listen(args.host, args.port, limits.backlog)   # a port in use: one line, exit 2
    if app.state.predictor.backend_choice:
        print(f"ppnets: {app.state.predictor.backend_choice}", file=sys.stderr)
    serve(app, args.host, args.port, limits, sock=sock)
    # the shutdown is complete; skip the interpreter's teardown of the runtimes (2-3 s of native destructors)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
