"""INT8 post-training quantization of an ONNX export with ONNX Runtime (static, QDQ, u8 activations / s8 weights).

``python tools/quantize.py --model_dir ./inference -c configs/mobilenetv2.yaml [--calib_images 256]
[--calibration minmax|percentile|entropy] [--percentile 99.999] [--no_per_channel] [--reduce_range auto|on|off]
[--exclude_ops HardSigmoid ...] [--eval_images N] [--batches 1 16] [--rounds 5]``

Calibrates on ``--calib_images`` images of ``DataLoader.Train`` (seeded draw; preprocessed as the
export does), writes ``inference.int8.onnx`` beside ``inference.onnx``, evaluates both on
``DataLoader.Eval`` (top-1, agreement), and reports their file sizes and ONNX Runtime img/s
(each in its own process, interleaved rounds, median). The report is also written to
``<model_dir>/inference.int8.json``. Both files are recorded, with their digests, in the export's
``inference.yml``: the new export is assembled beside the folder and replaces it as a unit.
Use it with ``tools/predict.py --precision int8``.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time


from ppnets.config import load_config
from ppnets.data import build_dataset
from ppnets.bench.runtimes import time_runtimes
from ppnets.deploy.quantize import (CALIBRATIONS, calibration_batches, evaluate_top1, quantize_onnx,
                                    sample_indices)
from ppnets.deploy.exported import write_export_meta
from ppnets.deploy.folders import commit_folder, discard_folder, staging_folder
from ppnets.deploy.runtimes import INT8_FILE, ONNX_FILE
from ppnets.deploy import Predictor
from ppnets.errors import ConfigError, DataError
from ppnets.cli import run
from ppnets.utils.logger import get_logger, setup_logger
from ppnets.utils.timing import terminal_bar


REPORT_FILE = "inference.int8.json"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model_dir", required=True, help="an export with inference.onnx (Export.formats has onnx)")
    p.add_argument("-c", "--config", required=True, help="the training config (its DataLoader.Train/Eval datasets)")
    p.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--calib_images", type=int, default=256, help="training images to calibrate on (256)")
    p.add_argument("--calibration", default="minmax", choices=CALIBRATIONS, help="activation ranges (minmax)")
    p.add_argument("--percentile", type=float, default=99.999, help="percentile calibration: kept share (99.999)")
    p.add_argument("--no_per_channel", action="store_true", help="one scale per weight tensor")
    p.add_argument("--reduce_range", default="auto", choices=("auto", "on", "off"),
                   help="7-bit weights: auto = on when the CPU has no VNNI (auto)")
    p.add_argument("--exclude_ops", nargs="*", default=[], metavar="OP", help="ONNX op types kept in float")
    p.add_argument("--eval_images", type=int, default=0, help="validation images to evaluate (0 = all)")
    p.add_argument("--batches", nargs="*", type=int, default=[1, 16], help="batch sizes timed (1 16); none: skip")
    p.add_argument("--rounds", type=int, default=5, help="timing rounds (5)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration draw (0)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p


def _loader(cfg: dict, split: str, ops: list, names):
    section = dict(cfg["DataLoader"][split]["dataset"], transform_ops=ops)
    return build_dataset(section, f"DataLoader.{split}.dataset", class_names=names if split == "Eval" else None)


def _stage_export(model_dir: str, stage: str, meta: dict) -> dict:
    """Fill ``stage`` with the export's files (hard links; copies where links fail), without any earlier
    INT8 files, and return its meta without them."""
    for name in meta["files"]:
        if name in (INT8_FILE, REPORT_FILE):
            continue
        src, dst = os.path.join(model_dir, name), os.path.join(stage, name)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return {k: v for k, v in meta.items() if k not in ("files", "int8")}


def main(argv=None):
    args = _parser().parse_args(argv)
    for flag in ("calib_images", "rounds"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag}: expected a positive integer, got {getattr(args, flag)}")
    if args.eval_images < 0 or any(b < 1 for b in args.batches):
        raise ConfigError("--eval_images must be >= 0 and --batches positive integers")
    setup_logger()
    log = get_logger()
    predictor = Predictor(args.model_dir, backend="onnxruntime")   # the export's meta and fp32 model, checked
    cfg = load_config(args.config, args.override)
    ops, names = predictor.meta["transform_ops"], predictor.label_names

    train = _loader(cfg, "Train", ops, None)
    indices = sample_indices(len(train), args.calib_images, args.seed)
    log.info(f"calibrating on {len(indices)} of {len(train)} training images ({args.calibration})")
    started = time.time()
    batches = calibration_batches(train.load, indices, 16, terminal_bar)
    val = _loader(cfg, "Eval", ops, names)
    if len(val) == 0:
        raise DataError("DataLoader.Eval: the validation dataset is empty")
    # the export with the INT8 files is assembled beside the folder and swapped in as a unit
    stage = staging_folder(args.model_dir, "--model_dir")
    try:
        meta = _stage_export(args.model_dir, stage, predictor.meta)
        fp32_path, out_path = os.path.join(stage, ONNX_FILE), os.path.join(stage, INT8_FILE)
        reduce = {"auto": None, "on": True, "off": False}[args.reduce_range]
        calibrating = terminal_bar(batches, "calibrating", unit="batch")  # ONNX Runtime runs them one by one
        settings = quantize_onnx(fp32_path, out_path, calibrating, args.calibration,
                                 per_channel=not args.no_per_channel, reduce_range=reduce, percentile=args.percentile,
                                 exclude_op_types=args.exclude_ops)
        meta = write_export_meta(stage, dict(meta, int8=settings))   # records inference.int8.onnx and its digest
        log.info(f"wrote {os.path.join(args.model_dir, INT8_FILE)} in {time.time() - started:.1f} s ({settings})")
        n = min(args.eval_images or len(val), len(val))
        runs = {"fp32": predictor.run,
                "int8": Predictor(stage, backend="onnxruntime", precision="int8", cpu_threads=args.threads or None).run}
        log.info(f"evaluating fp32 and int8 on {n} validation images")
        acc = evaluate_top1(runs, lambda i: (val.load(i), val.samples[i][1]), n, progress=terminal_bar)
        report = {"model_dir": args.model_dir, "settings": settings, "calib_images": len(indices), "eval": acc,
                  "top1_drop_points": 100.0 * (acc["fp32"]["top1"] - acc["int8"]["top1"]),
                  "size_mb": {k: os.path.getsize(p) / 2 ** 20 for k, p in (("fp32", fp32_path), ("int8", out_path))},
                  "img_s": {}}
        if args.batches:
            size = predictor.meta["input_shape"]
            log.info(f"timing fp32 and int8 on ONNX Runtime at batch {', '.join(map(str, args.batches))}: "
                     f"{args.rounds} interleaved rounds, each variant in a process of its own")
            started = time.time()
            times = time_runtimes(stage, [("onnxruntime", "fp32"), ("onnxruntime", "int8")], size, args.batches,
                                  args.threads, args.rounds,
                                  progress=lambda items, desc: terminal_bar(items, desc, "round"))
            log.info(f"timed in {time.time() - started:.1f} s")
            for (_, precision, b), ts in times.items():
                report["img_s"].setdefault(precision, {})[b] = b / statistics.median(ts)
        with open(os.path.join(stage, REPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
        write_export_meta(stage, meta)   # the report too
        commit_folder(stage, args.model_dir)
    finally:
        discard_folder(stage)
    print(f"| | top-1 ({n} val images) | size (MB) |" + "".join(f" img/s batch {b} |" for b in args.batches))
    print("|---|---:|---:|" + "---:|" * len(args.batches))
    for k in ("fp32", "int8"):
        speeds = "".join(f" {report['img_s'][k][b]:.1f} |" for b in args.batches)
        print(f"| {k} | {100 * acc[k]['top1']:.2f} % | {report['size_mb'][k]:.2f} |{speeds}")
    print(f"top-1 drop {report['top1_drop_points']:.2f} points; int8 agrees with fp32 on "
          f"{100 * acc['int8']['agreement']:.2f} % of images")
    if args.batches:
        print("int8/fp32 speed: " + ", ".join(f"batch {b}: {report['img_s']['int8'][b] / report['img_s']['fp32'][b]:.2f}×"
                                             for b in args.batches))
    sys.stdout.flush()


if __name__ == "__main__":
    run(main)
