"""Plot a training log's curves (loss, learning rate, top-1 train/eval) to a PNG.

    python tools/plot_log.py output/MobileNetV2_x0_5/train.log        # → output/MobileNetV2_x0_5/train_curves.png
    python tools/plot_log.py output/MobileNetV2_x0_5 --out curves.png  # a run directory works too

Reads the ``[Train][Epoch e/E][Iter i/N] lr: …, loss: …, top1: …`` and
``[Eval][Epoch e][Avg] loss: …, top1: …, top5: …`` lines ppnets writes to
``<output_dir>/<Arch>/train.log``; a file besides VisualDL's live curves.
"""

import argparse

from ppnets.cli import run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", help="a train.log, or a run directory containing one")
    p.add_argument("--out", help="PNG to write (default: train_curves.png next to the log)")
    p.add_argument("--title", help="title (default: the run directory's name, i.e. the Arch)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = p.parse_args(argv)

    from ppnets.analysis.logplot import best_eval, parse_log, plot_log

    out = plot_log(args.log, args.out, args.title)
    best = best_eval(parse_log(args.log))
    extra = f"; best eval top-1 {best[1]:.4f} at epoch {best[0]}" if best and best[0] is not None else ""
    print(f"wrote {out}{extra}")


if __name__ == "__main__":
    run(main)
