"""Serve an exported model over HTTP: JSON predictions, request batching, an upload page.

``ppnets serve --model_dir ./inference [--backend auto] [--precision fp32] [--host 127.0.0.1]
[--port 8000] [--max_batch 16] [--max_wait_ms 5] [--max_mb 8] [--topk 5] [--threshold P] [--threads N]``
(or ``python tools/serve.py …``). It needs the deploy extra (FastAPI, uvicorn): ``pip install 'ppnets[deploy]'``.

``curl -F image=@dataset/digits/val/7/1728.png http://127.0.0.1:8000/predict`` (or the image as the
raw body: ``curl --data-binary @FILE -H 'Content-Type: image/png' …``) answers
``{"results": [{"class_id": 7, "label": "7", "score": 0.75}, …]}`` (a multi-label export: the classes
whose probability reaches the threshold); ``GET /health``, ``GET /model``, and a page to try it at ``/``.
"""
import argparse
import sys

from ..deploy.runtimes import BACKENDS, PRECISIONS
from ..errors import ConfigError
from ..utils.extras import SERVE, require_extra


def main(argv=None):
    if not {"-h", "--help"} & set(argv or []):  # no use checking the arguments of a server that cannot start
        require_extra("ppnets serve", SERVE)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    p.add_argument("--backend", default="auto", choices=("auto",) + BACKENDS, help="runtime (auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="fp32 or int8 (fp32)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--max_batch", type=int, default=16, help="largest batch of concurrent requests (16)")
    p.add_argument("--max_wait_ms", type=float, default=5.0, help="how long a batch waits to fill up (5 ms)")
    p.add_argument("--max_mb", type=float, default=8.0, help="largest accepted request body, MB (8)")
    p.add_argument("--topk", type=int, default=5, help="classes per answer unless ?topk= (5)")
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label exports: answer the classes reaching this probability unless ?threshold= "
                        "(default: the export's Infer.threshold)")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: all cores)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = p.parse_args(argv)
    for name in ("max_batch", "topk"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name}: expected a positive integer, got {getattr(args, name)}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold: expected a probability in [0, 1], got {args.threshold}")
    if not 0 <= args.port <= 65535 or args.max_wait_ms < 0 or args.max_mb <= 0:
        raise ConfigError("--port must be 0-65535, --max_wait_ms >= 0 and --max_mb > 0")
    import uvicorn

    from ..deploy.server import create_app

    app = create_app(args.model_dir, backend=args.backend, precision=args.precision, threads=args.threads,
                     max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_bytes=int(args.max_mb * 2 ** 20),
                     topk=args.topk, threshold=args.threshold)
    if app.state.predictor.backend_choice:
        print(f"ppnets: {app.state.predictor.backend_choice}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)

