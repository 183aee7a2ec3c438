"""Evaluate trained weights on DataLoader.Eval (a folder-per-class dataset or a file list).

``ppnets eval -c CONFIG -o Global.pretrained_model=output/MobileNetV2/best_model [--reparam]``
(or ``python tools/eval.py …``)

Prints top-1/top-5, per-class accuracy and the confusion matrix, and saves both as CSV
next to the weights' run (``<output_dir>/<Arch.name>/``). ``--reparam`` evaluates the model with
its re-parameterizable branches fused (MobileOne, RepViT, PP-LCNetV2 …), as it is exported.
"""

from ..engine.eval_report import run_evaluation
from .common import config_parser, load_config_args


def main(argv=None):
    parser = config_parser(__doc__)
    parser.add_argument("--reparam", action="store_true",
                        help="fuse re-parameterizable branches before evaluating (timm's --reparam)")
    args = parser.parse_args(argv)
    run_evaluation(load_config_args(args), reparameterize=args.reparam)

