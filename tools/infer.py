"""Classify an image or a folder with the dynamic-graph model (multi-label models: the classes above
Infer.threshold).

``python tools/infer.py -c CONFIG -o Global.pretrained_model=output/MobileNetV2/best_model
-o Infer.infer_imgs=dataset/digits/val/3 [--bad-image skip|warn|error]``

A file that cannot be read or decoded is named on stderr and left out; the others are classified
and the exit code is 1 (``--bad-image warn``, the default; ``skip``: quietly, exit 0; ``error``: stop).
"""

from ppnets.arch import backend
from ppnets.checkpoint import load_model_for_inference
from ppnets.export import label_names_for, preprocess_transform
from ppnets.deploy.inputs import classify_files, list_inputs
from ppnets.deploy.postprocess import format_result
from ppnets.engine.infer import dynamic_runner
from ppnets.errors import ConfigError
from ppnets.cli import config_parser, load_config_args, run
from ppnets.cli.common import BadImages, add_bad_image_arg
from ppnets.utils.logger import setup_logger


def main(argv=None):
    parser = config_parser(__doc__)
    add_bad_image_arg(parser)
    args = parser.parse_args(argv)
    bad = BadImages(args.bad_image)
    log = setup_logger()
    cfg = load_config_args(args)
    if not cfg["Infer"]["infer_imgs"]:
        raise ConfigError("Infer.infer_imgs: give an image or a folder, e.g. -o Infer.infer_imgs=demo.png")
    model = load_model_for_inference(cfg)
    transform = preprocess_transform(cfg)
    multilabel = cfg["Global"]["use_multilabel"]  # then the classes above Infer.threshold
    for r in classify_files(list_inputs(cfg["Infer"]["infer_imgs"]), transform, cfg["Infer"]["batch_size"],
                            dynamic_runner(model, backend.resolve(cfg["Global"]["conv_backend"], cfg["Global"]["device"],
                                                                  log), multilabel),
                            cfg["Infer"]["topk"], label_names_for(cfg),
                            threshold=cfg["Infer"]["threshold"] if multilabel else None, on_bad=bad.on_bad):
        print(format_result(r))
    bad.finish()


if __name__ == "__main__":
    run(main)
