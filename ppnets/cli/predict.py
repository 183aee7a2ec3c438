"""Deploy predictor: classify images with an exported model on paddle.inference, ONNX Runtime or OpenVINO.

``ppnets predict --model_dir ./inference --image dataset/digits/val/7 [--backend auto]
[--precision fp32|int8] [--batch_size 16] [--threads 2] [--topk 5] [--threshold P] [--no_mkldnn]
[--bad-image skip|warn|error]`` (or ``python tools/predict.py …``)

A multi-label export prints the classes whose probability reaches the threshold (``--threshold``,
default the export's ``Infer.threshold``) instead of the top-k.

It reads only the exported directory (inference.yml with inference.json/.pdiparams, inference.onnx
or inference.int8.onnx), and only the files inference.yml lists with their digests: an unlisted,
changed or linked model file, or preprocessing that does not give the model's input, is one line.
``--backend auto`` (the default, as in ``Predictor``) takes ONNX Runtime, then OpenVINO, then
paddle.inference: the first installed whose model file is present.

A file of a folder that cannot be read or decoded is named on stderr and left out; the others are
classified and the exit code is 1 (``--bad-image warn``, the default; ``skip``: quietly, exit 0;
``error``: stop at the first, exit 2).
"""
import argparse
import sys

from ..deploy import Predictor
from ..deploy.inputs import classify_files, list_inputs
from ..deploy.postprocess import format_result
from ..deploy.runtimes import BACKENDS, PRECISIONS
from ..errors import ConfigError
from .common import BadImages, add_bad_image_arg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_dir", required=True, help="directory written by tools/export_model.py")
    p.add_argument("--image", required=True, help="an image file or a folder of images")
    p.add_argument("--backend", default="auto", choices=("auto",) + BACKENDS, help="runtime (auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="int8: inference.int8.onnx from tools/quantize.py (fp32)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="CPU math threads (default: all cores)")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--threshold", type=float, default=None,
                   help="multi-label exports: print the classes whose probability reaches this "
                        "(default: the threshold recorded at export, Infer.threshold)")
    p.add_argument("--no_mkldnn", action="store_true", help="paddle backend: disable oneDNN")
    add_bad_image_arg(p)
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = p.parse_args(argv)
    for name in ("batch_size", "threads", "topk"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name}: expected a positive integer, got {value}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold: expected a probability in [0, 1], got {args.threshold}")
    predictor = Predictor(args.model_dir, backend=args.backend, precision=args.precision, cpu_threads=args.threads,
                          use_mkldnn=not args.no_mkldnn)
    if args.threshold is not None and not predictor.multilabel:
        raise ConfigError(f"--threshold: {args.model_dir} is a single-label export (it prints the top-k classes); "
                          "--threshold is for multi-label exports")
    threshold = (args.threshold if args.threshold is not None else predictor.threshold) if predictor.multilabel \
        else None
    bad = BadImages(args.bad_image)
    note = predictor.backend_choice  # said once the model has run (a user error stays one line)
    for r in classify_files(list_inputs(args.image), predictor.transform, args.batch_size, predictor.run,
                            args.topk, predictor.label_names, threshold=threshold, on_bad=bad.on_bad):
        if note:  # on stderr: stdout holds only the results
            print(f"ppnets: {note}", file=sys.stderr, flush=True)
            note = None
        print(format_result(r))
    bad.finish()

