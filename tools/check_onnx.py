"""Convert every registered model to ONNX and check it against paddle.inference on ONNX Runtime and OpenVINO.

``python tools/check_onnx.py [--models NAME ...] [--size 64] [--atol 1e-4] [--out output/check_onnx.md]``

Each model gets random weights and random BatchNorm statistics (so no layer is near the
identity), is exported with logits out (``Export.softmax: false``) to Paddle + ONNX, and one
random batch of 2 runs on all three runtimes. Prints and writes a Markdown table of the max
|Δ| per runtime; exits 1 if any model fails to convert or exceeds ``--atol``.
"""
import argparse
import os
import sys
import tempfile
import time


os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402
import paddle  # noqa: E402

import ppnets  # noqa: E402
from ppnets.deploy import Predictor
from ppnets.export import plain_preprocessing, save_inference_model  # noqa: E402
from ppnets.errors import ConfigError  # noqa: E402
from ppnets.cli import run  # noqa: E402


def _randomize_batch_norm(model: paddle.nn.Layer, rng: np.random.Generator) -> None:
    for layer in model.sublayers():
        if isinstance(layer, paddle.nn.BatchNorm2D):
            c = layer._mean.shape[0]
            layer._mean.set_value(rng.normal(0, 0.2, c).astype("float32"))
            layer._variance.set_value(rng.uniform(0.5, 2.0, c).astype("float32"))


def check(name: str, size: int, work: str) -> dict:
    paddle.seed(0)
    rng = np.random.default_rng(0)
    model = ppnets.build_model(name, class_num=10)
    _randomize_batch_norm(model, rng)
    model.eval()
    out = os.path.join(work, name)
    tic = time.time()
    save_inference_model(model, out, [3, size, size], {"model_name": name, "class_num": 10,
                                                       "transform_ops": plain_preprocessing(size), "label_names": None},
                         softmax=False, formats=("paddle", "onnx"))
    seconds = time.time() - tic
    x = rng.normal(0, 1, (2, 3, size, size)).astype("float32")
    ref = Predictor(out, backend="paddle", cpu_threads=1).runtime(x)
    diffs = {b: float(np.abs(Predictor(out, backend=b, cpu_threads=1).runtime(x) - ref).max())
             for b in ("onnxruntime", "openvino")}
    return {"name": name, "export_s": seconds, "logit_max": float(np.abs(ref).max()), **diffs}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=None, help="models to check (all registered)")
    p.add_argument("--size", type=int, default=64, help="input size in px (64)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest accepted |Δ| of the logits (1e-4)")
    p.add_argument("--out", default=os.path.join("output", "check_onnx.md"), help="Markdown report")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = p.parse_args(argv)
    if args.size < 16:
        raise ConfigError(f"--size: expected at least 16 px, got {args.size}")
    names = args.models or ppnets.list_models()
    for n in names:
        ppnets.model_info(n)   # unknown name → the registry's error
    rows, failed = [], []
    with tempfile.TemporaryDirectory(prefix="ppnets_check_onnx_") as work:
        for name in names:
            try:
                row = check(name, args.size, work)
            except Exception as e:  # a conversion failure is a result of this check, not a crash
                row = {"name": name, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
            ok = "error" not in row and max(row["onnxruntime"], row["openvino"]) <= args.atol
            if not ok:
                failed.append(name)
            rows.append(row)
            print(f"{name}: " + (row.get("error") or f"ORT {row['onnxruntime']:.2e}, OpenVINO {row['openvino']:.2e}, "
                                 f"|logits| ≤ {row['logit_max']:.2f}, export {row['export_s']:.1f} s")
                  + ("" if ok else "  FAIL"), flush=True)
    lines = [f"ONNX conversion check: {len(names)} models at {args.size} px, random weights and BN statistics, "
             f"logits; max |Δ| from paddle.inference (limit {args.atol:g}). "
             f"Command: `python tools/check_onnx.py --size {args.size}`", "",
             "| model | ONNX Runtime | OpenVINO | max |logit| | export + convert (s) |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | {r['error']} | | | |")
        else:
            lines.append(f"| {r['name']} | {r['onnxruntime']:.1e} | {r['openvino']:.1e} | {r['logit_max']:.2f} | "
                         f"{r['export_s']:.1f} |")
    lines += ["", f"{len(names) - len(failed)}/{len(names)} within {args.atol:g}" +
              (f"; failed: {', '.join(failed)}" if failed else "")]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(lines[-1] + f"; wrote {args.out}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    run(main)
