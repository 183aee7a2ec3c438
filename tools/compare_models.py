"""Compare the model zoo: params, MACs, exported CPU latency and accuracy → CSV, Markdown, PNG charts.

    python tools/compare_models.py                                   # every registered model
    python tools/compare_models.py --models "MobileNetV3_*" SqueezeNet1_1 --batch-sizes 1 16
    python tools/compare_models.py --family ShuffleNetV2 --runs output   # + top-1 from output/<name>/*.log
    python tools/compare_models.py --no-latency --out docs/zoo           # sizes only (fast)

For each model: trainable parameters, and MACs (Conv2D + Linear, batch 1; FLOPs = 2 × MACs) at
its native input size and at ``--input-size`` (default 224, the common size of the charts);
the median CPU latency of the model exported with random weights and run through
``paddle.inference`` (oneDNN, ``--threads`` threads) per batch size, timed in rounds that
interleave all models (so a busy spell of the machine does not fall on a few of them); top-1 from
``--runs DIR`` (``DIR/<name>/eval.log``, else the best eval of ``DIR/<name>/train.log``),
``--accuracy NAME=TOP1``, or ``--published`` (the best ImageNet top-1 of the model's published
weights, PaddleClas's or timm's, as ``tools/weights.py list`` shows them). Writes ``zoo.csv``, ``zoo.md``, ``zoo_params_vs_macs.png`` and
``zoo_latency_vs_macs.png`` to ``--out`` (default output/zoo). Latency on a shared or busy
machine varies; compare numbers from one run only.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("GLOG_minloglevel", "2")  # Paddle's C++ warnings would break the progress bar

from ppnets.errors import ConfigError
from ppnets.cli import run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", metavar="NAME", help="model names or globs (default: all registered)")
    p.add_argument("--family", help="only this family, e.g. MobileNetV3")
    p.add_argument("--input-size", type=int, default=224, help="common input size for MACs and latency (224)")
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16], metavar="B", help="latency batches (1 16)")
    p.add_argument("--repeats", type=int, default=10, help="timed runs per batch size; the median is kept (10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (3)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads of the predictor (1)")
    p.add_argument("--no-mkldnn", action="store_true", help="run without oneDNN kernels")
    p.add_argument("--no-latency", action="store_true", help="only count params and MACs")
    p.add_argument("--runs", metavar="DIR", help="training output dir: top-1 from DIR/<name>/eval.log or train.log")
    p.add_argument("--accuracy", action="append", default=[], metavar="NAME=TOP1", help="top-1 given by hand")
    p.add_argument("--published", action="store_true",
                   help="top-1: the best ImageNet top-1 of the model's published weights (PaddleClas's, timm's)")
    p.add_argument("--out", default=os.path.join("output", "zoo"), help="output directory (output/zoo)")
    p.add_argument("--prefix", default="zoo", help="file name prefix of the outputs (zoo)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--from-csv", metavar="CSV",
                   help="re-draw the table and charts from an earlier run's CSV (give the same --repeats/--threads)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p


def _published_top1(name):
    """(top-1 as a fraction, where it is from) of the best published weights of ``name``, or (None, "")."""
    from ppnets.checkpoint.pretrained import weight_sources

    known = [w for w in weight_sources(name, cached=False) if w.top1 is not None]
    if not known:
        return None, ""
    best = max(known, key=lambda w: w.top1)
    spec = "" if best.spec == best.source else f" {best.spec}"     # PaddleClas's are named by their source
    return best.top1 / 100.0, f"published: {best.source}{spec} ({best.top1:.2f} % at {best.image_size} px)"


def _manual_accuracy(items):
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            top1 = float(value)
        except ValueError:
            top1 = None
        if not sep or top1 is None or not 0.0 <= top1 <= 100.0:
            raise ConfigError(f"--accuracy: expected NAME=TOP1 (a fraction or a percentage), got '{item}'")
        out[name] = top1 / 100.0 if top1 > 1.0 else top1
    return out


def main(argv=None):
    args = _parser().parse_args(argv)
    for flag, v in (("--input-size", args.input_size), ("--repeats", args.repeats), ("--threads", args.threads)):
        if v < 1:
            raise ConfigError(f"{flag}: must be a positive integer, got {v}")
    if any(b < 1 for b in args.batch_sizes):
        raise ConfigError(f"--batch-sizes: must be positive integers, got {args.batch_sizes}")
    if args.runs and not os.path.isdir(args.runs):
        raise ConfigError(f"--runs: not a directory: {args.runs}")

    from tqdm import tqdm

    from ppnets.analysis.zoo import measure_zoo, read_accuracy, read_csv, select_models
    from ppnets.arch import model_info

    if args.from_csv:
        entries, batches = read_csv(args.from_csv)
        notes = f"Re-drawn from {args.from_csv}."
        md = os.path.splitext(args.from_csv)[0] + ".md"
        if os.path.isfile(md):  # keep the measurement conditions written with the CSV
            with open(md, encoding="utf-8") as f:
                head = f.read().split("\n\n", 1)[0]
            notes = head if not head.startswith("|") else notes
        _write(entries, batches, args, notes)
        return
    names = select_models(args.models, args.family)
    manual = _manual_accuracy(args.accuracy)
    for name in manual:
        model_info(name)
    batches = [] if args.no_latency else list(dict.fromkeys(args.batch_sizes))
    start = time.time()

    def progress(items, desc):
        bar = tqdm(items, desc=desc, unit="model" if desc == "models" else "round", disable=args.no_progress,
                   file=sys.stderr, dynamic_ncols=True)
        for item in bar:
            if desc == "models":
                bar.set_postfix_str(item)
            yield item

    def finish(entry):
        if entry.name in manual:
            entry.top1, entry.top1_source = manual[entry.name], "--accuracy"
        elif args.runs:
            entry.top1, entry.top1_source = read_accuracy(args.runs, entry.name)
        elif args.published:
            entry.top1, entry.top1_source = _published_top1(entry.name)
        if entry.note:
            tqdm.write(f"{entry.name}: {entry.note}", file=sys.stderr)

    entries = measure_zoo(names, args.input_size, batches, args.repeats, args.warmup, args.threads,
                          latency=not args.no_latency, use_mkldnn=not args.no_mkldnn, progress=progress,
                          on_entry=finish)
    elapsed = time.time() - start
    size = f"{args.input_size}×{args.input_size}"
    notes = (f"Measured by tools/compare_models.py: params (trainable) and MACs (Conv2D + Linear, batch 1, "
             f"1000 classes; FLOPs = 2 × MACs) at each model's native input and at {size}")
    if batches:
        runs = f"{args.warmup} warm-up run{'s' if args.warmup != 1 else ''}"
        notes += (f"; latency = median of {args.repeats} interleaved rounds (after {runs}) of the exported model "
                  f"on paddle.inference, CPU, {'no oneDNN' if args.no_mkldnn else 'oneDNN'}, {args.threads} thread"
                  f"{'s' if args.threads != 1 else ''}, {args.input_size}×{args.input_size} input, random weights, "
                  f"ms per batch")
    notes += f". {len(entries)} models in {elapsed:.0f} s."
    _write(entries, batches, args, notes)


def _write(entries, batches, args, notes):
    from ppnets.analysis.zoo import write_csv, write_markdown
    from ppnets.analysis.zoo_plot import plot_zoo

    os.makedirs(args.out, exist_ok=True)
    written = [write_csv(entries, os.path.join(args.out, f"{args.prefix}.csv"), batches),
               write_markdown(entries, os.path.join(args.out, f"{args.prefix}.md"), batches, notes)]
    written += plot_zoo(entries, args.out, batches, args.repeats, args.threads, prefix=args.prefix)
    print(open(written[1], encoding="utf-8").read())
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    run(main)
