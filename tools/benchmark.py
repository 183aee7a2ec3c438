"""Benchmark ppnets on this machine: training, evaluation, the exported predictor, the data pipeline.

    python tools/benchmark.py                                  # every section, MobileNetV2, 224 and 32 px
    python tools/benchmark.py --sections train --sizes 224 32 --batch-sizes 16
    python tools/benchmark.py --sections predictor --predictor-threads 1 2 --predictor-batches 1 16
    python tools/benchmark.py --sections pipeline reader       # data loading alone, reader_cost at 224 px
    python tools/benchmark.py --sections config --config configs/mobilenetv2.yaml --config-epochs 1
    python tools/benchmark.py --sections reparam               # fused vs unfused exports on every runtime

Sections (``--sections``, default all):

- train: training img/s of the ppnets engine loop, dynamic (fast convolutions) and
  ``to_static``, side by side with Paddle's own conv kernels (``native``: ppnets before its
  fast convolutions), with ``paddle.Model.fit`` on ``paddle.vision.models.mobilenet_v2``
  (MobileNetV2 models) and, where torch and torchvision are importable, with PyTorch on
  torchvision's model in NCHW and channels-last memory (``torch``, ``torch_channels_last``);
  same random batches, batch size, input size, threads, Momentum optimizer and loss; each
  variant in its own process;
- eval: dynamic-mode evaluation img/s, fast vs native convolutions;
- predictor: the exported model (random weights) on the deploy Predictor (paddle.inference):
  img/s and latency per batch size, oneDNN on/off, per thread count; then every runtime
  (``--predictor-runtimes``: paddle.inference, ONNX Runtime, OpenVINO, ``auto``, fp32 and INT8)
  each in its own process, rounds interleaved (ppnets.bench.runtimes);
- reparam: the re-parameterized families' exports, fused against unfused, beside MobileNetV2 and
  MobileNetV3-Large (``--reparam-models``), on paddle.inference, ONNX Runtime and OpenVINO at
  ``--predictor-batches``, at the first of ``--sizes``; each export in its own process
  (ppnets.bench.reparam);
- pipeline: JPEG decode + augmentation + collation alone, img/s per num_workers;
- reader: a real training epoch on JPEGs; the engine's reader_cost as a share of batch_cost;
- config: whole epochs (training + evaluation) of ``--config``, fast vs native convolutions.

Variants are timed in interleaved rounds after warm-up and the median is reported. JPEGs
(``--images`` of ``--image-size`` px) are generated in a temporary directory and removed.
``--threads`` (default: all cores) sets the threads of ppnets's oneDNN convolutions,
``--paddle-threads`` (default 1, Paddle's) those of Paddle's kernels for every variant; the
process keeps freed memory for reuse (``ppnets.utils.runtime.retain_freed_memory``, as the
Predictor does) unless ``--no-retain-memory``, for every variant alike. Writes
``<out>/<prefix>.json`` (with machine info), ``.csv`` and ``.md`` and prints the tables.
"""

import argparse
import os
import shlex
import sys
import time

os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ warnings would break the progress bar

from ppnets.bench.predictor import PREDICTOR_BACKENDS
from ppnets.bench.reparam import REPARAM_MODELS
from ppnets.bench.train import TRAIN_VARIANTS, default_variants
from ppnets.errors import ConfigError
from ppnets.cli import run

SECTIONS = ("train", "eval", "predictor", "reparam", "pipeline", "reader", "config")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="S",
                   help=f"sections to run: {', '.join(SECTIONS)} (all)")
    p.add_argument("--models", nargs="+", default=["MobileNetV2"], metavar="NAME",
                   help="models for train/eval/predictor (MobileNetV2)")
    p.add_argument("--sizes", nargs="+", type=int, default=[224, 32], metavar="PX",
                   help="input sizes for train/eval (224 32); the predictor uses the first")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[16], metavar="B", help="train/eval batches (16)")
    p.add_argument("--variants", nargs="+", default=default_variants(), choices=list(TRAIN_VARIANTS), metavar="V",
                   help=f"train variants: {' '.join(TRAIN_VARIANTS)} (all; the torch ones where torch is installed)")
    p.add_argument("--steps", type=int, default=3, help="training steps per timed round (3)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; the median is kept (3)")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls of each variant first (1)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="threads of the oneDNN training/eval convolutions (all cores)")
    p.add_argument("--paddle-threads", type=int, default=None,
                   help="threads of Paddle's own CPU math kernels, every variant alike (Paddle's default: 1)")
    p.add_argument("--predictor-batches", nargs="+", type=int, default=[1, 16], metavar="B", help="(1 16)")
    p.add_argument("--predictor-threads", nargs="+", type=int, default=sorted({1, os.cpu_count() or 1}),
                   metavar="T", help="predictor thread counts (1 and all cores)")
    p.add_argument("--predictor-rounds", type=int, default=10, help="predictor timing rounds (10)")
    p.add_argument("--no-mkldnn-compare", action="store_true", help="predictor with oneDNN only (skip oneDNN off)")
    p.add_argument("--predictor-backends", nargs="+", default=["paddle"], choices=list(PREDICTOR_BACKENDS),
                   metavar="R", help=f"deploy runtimes: {' '.join(PREDICTOR_BACKENDS)} (paddle)")
    p.add_argument("--predictor-runtimes", nargs="*", default=["paddle:fp32", "onnxruntime:fp32", "openvino:fp32",
                                                               "auto:fp32", "onnxruntime:int8", "openvino:int8",
                                                               "auto:int8"], metavar="BACKEND:PRECISION",
                   help="runtimes timed each in its own process (Paddle + ONNX + INT8 export; all 7; none: skip)")
    p.add_argument("--reparam-models", nargs="+", default=list(REPARAM_MODELS), metavar="NAME",
                   help=f"models of the reparam section ({' '.join(REPARAM_MODELS)})")
    p.add_argument("--workers", nargs="+", type=int, default=[0, 1, 2], metavar="N",
                   help="pipeline num_workers values (0 1 2)")
    p.add_argument("--pipeline-size", type=int, default=224, help="pipeline crop size (224)")
    p.add_argument("--pipeline-batch", type=int, default=32, help="pipeline batch size (32)")
    p.add_argument("--pipeline-batches", type=int, default=8, help="batches per pipeline pass (8)")
    p.add_argument("--images", type=int, default=320, help="generated JPEGs (320)")
    p.add_argument("--image-size", type=int, default=256, help="generated JPEG size in px (256)")
    p.add_argument("--reader-model", default="MobileNetV2", help="reader section model (MobileNetV2)")
    p.add_argument("--reader-size", type=int, default=224, help="reader section crop size (224)")
    p.add_argument("--reader-batch", type=int, default=32, help="reader section batch size (32)")
    p.add_argument("--reader-workers", type=int, default=2, help="reader section num_workers (2)")
    p.add_argument("--config", default=None, help="config of the config section (configs/mobilenetv2.yaml)")
    p.add_argument("--config-epochs", type=int, default=1, help="epochs per config run (1)")
    p.add_argument("--config-rounds", type=int, default=2, help="config runs per variant (2)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of --config, e.g. -o Arch.name=MobileNetV2_x0_25 (repeatable)")
    p.add_argument("--no-retain-memory", action="store_true",
                   help="leave glibc returning freed memory to the system (ppnets.utils.runtime.retain_freed_memory)")
    p.add_argument("--out", default=os.path.join("output", "benchmark"), help="output directory (output/benchmark)")
    p.add_argument("--prefix", default="benchmark", help="output file name prefix (benchmark)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p


def _check(args) -> None:
    positive = {"--steps": [args.steps], "--rounds": [args.rounds], "--threads": [args.threads],
                "--paddle-threads": [args.paddle_threads or 1],
                "--sizes": args.sizes, "--batch-sizes": args.batch_sizes, "--predictor-batches": args.predictor_batches,
                "--predictor-threads": args.predictor_threads, "--predictor-rounds": [args.predictor_rounds],
                "--pipeline-size": [args.pipeline_size], "--pipeline-batch": [args.pipeline_batch],
                "--images": [args.images], "--image-size": [args.image_size], "--reader-size": [args.reader_size],
                "--reader-batch": [args.reader_batch], "--config-epochs": [args.config_epochs],
                "--config-rounds": [args.config_rounds]}
    for flag, values in positive.items():
        if any(v < 1 for v in values):
            raise ConfigError(f"{flag}: must be positive integers, got {' '.join(map(str, values))}")
    if args.warmup < 0 or any(w < 0 for w in args.workers) or args.reader_workers < 0:
        raise ConfigError("--warmup, --workers and --reader-workers must not be negative")
    need = max(args.batch_sizes) if "train" in args.sections else 1
    if "pipeline" in args.sections:
        need = max(need, args.pipeline_batch * args.pipeline_batches)
    if "reader" in args.sections:
        need = max(need, args.reader_batch * 3)
    if args.images < need:
        raise ConfigError(f"--images: {args.images} generated images are fewer than the {need} the chosen "
                          "sections need (batch size × batches)")
    for r in args.predictor_runtimes:
        backend, _, precision = r.partition(":")
        if backend not in ("paddle", "onnxruntime", "openvino", "auto") or precision not in ("fp32", "int8") \
                or (backend, precision) == ("paddle", "int8"):
            raise ConfigError(f"--predictor-runtimes: expected BACKEND:PRECISION (paddle:fp32, onnxruntime:int8, "
                              f"openvino:fp32, auto:int8 …), got {r!r}")
    if args.config and not os.path.isfile(args.config):
        raise ConfigError(f"--config: file not found: {args.config}")


def main(argv=None):
    args = _parser().parse_args(argv)
    _check(args)

    from tqdm import tqdm

    from ppnets import bench as bm
    from ppnets.arch import model_info

    for name in args.models + [args.reader_model] + (args.reparam_models if "reparam" in args.sections else []):
        model_info(name)  # unknown model → the registry's "did you mean" error
    from ppnets.utils.runtime import retain_freed_memory

    retained = False if args.no_retain_memory else retain_freed_memory()
    bm.set_threads(args.threads, args.paddle_threads)
    command = "python tools/benchmark.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                               else sys.argv[1:]))

    def progress(items, desc):
        return tqdm(items, desc=desc, unit="round", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True,
                    leave=False)

    results = []
    rss = {}
    start = time.time()
    with bm.temporary_workdir() as work:
        data_root = os.path.join(work, "jpeg")
        if {"train", "pipeline", "reader"} & set(args.sections):
            bm.make_jpeg_folder(data_root, args.images, args.image_size)
        for section in tqdm([s for s in SECTIONS if s in args.sections], desc="sections", unit="section",
                            disable=args.no_progress, file=sys.stderr, dynamic_ncols=True):
            if section == "train":
                for model in args.models:
                    for size in args.sizes:
                        for batch in args.batch_sizes:
                            results += bm.bench_train(model, size, batch, data_root, work, args.steps, args.rounds,
                                                      args.warmup, variants=args.variants, threads=args.threads,
                                                      paddle_threads=args.paddle_threads,
                                                      retain_memory=not args.no_retain_memory, progress=progress)
            elif section == "eval":
                for model in args.models:
                    for size in args.sizes:
                        for batch in args.batch_sizes:
                            results += bm.bench_eval(model, size, batch, args.rounds, args.warmup,
                                                     threads=args.threads, progress=progress)
            elif section == "predictor":
                mkldnn = (True,) if args.no_mkldnn_compare else (True, False)
                for model in args.models:
                    results += bm.bench_predictor(model, args.sizes[0], work, args.predictor_batches,
                                                  args.predictor_threads, mkldnn, args.predictor_rounds,
                                                  max(args.warmup, 1), backends=args.predictor_backends,
                                                  progress=progress,
                                                  runtimes=[tuple(r.split(":", 1)) for r in args.predictor_runtimes])
                bm.set_threads(args.threads, args.paddle_threads or 1)  # the predictor changed them
            elif section == "reparam":
                results += bm.bench_reparam(args.reparam_models, args.sizes[0], work, args.predictor_batches,
                                            threads=args.threads, rounds=args.predictor_rounds,
                                            warmup=max(args.warmup, 1), progress=progress)
            elif section == "pipeline":
                results += bm.bench_pipeline(data_root, work, args.pipeline_size, args.pipeline_batch, args.workers,
                                             args.pipeline_batches, args.rounds, progress=progress)
            elif section == "reader":
                results += bm.bench_reader_cost(data_root, work, args.reader_model, args.reader_size,
                                                args.reader_batch, args.reader_workers)
            elif section == "config":
                results += bm.bench_config(args.config or bm.DEFAULT_CONFIG, work, args.config_epochs,
                                           args.config_rounds, args.override, progress=progress)
            rss[section] = round(bm.peak_rss_mb(), 1)
    info = bm.machine_info()
    frameworks = {k: r.settings[k] for r in results for k in ("torch", "torchvision") if k in r.settings}
    info.update(retain_freed_memory=retained, onednn_threads=args.threads, paddle_threads=args.paddle_threads or 1,
                elapsed_s=round(time.time() - start, 1), peak_rss_mb=bm.peak_rss_mb(),
                peak_rss_mb_after_section=rss, command=command, frameworks=frameworks)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, args.prefix)
    written = [bm.write_json(results, info, base + ".json"), bm.write_csv(results, base + ".csv"),
               bm.write_markdown(results, info, base + ".md", command)]
    print(open(written[2], encoding="utf-8").read())
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    run(main)
