"""Grad-CAM heatmaps of a trained model: one PNG per image, the heatmap over the image as the network saw it.

``python tools/cam.py -c CONFIG -o Global.pretrained_model=output/MobileNetV2_x0_5/best_model
--image dataset/digits/val/3 [--class K] [--stage NAME] [--output output/cam] [--scale 4]``

``--stage``: a stage of the model's ``feature_info`` — its index, ``stageN`` or its module name
(default: the last stage); ``--class``: the class to explain (default: each image's prediction).
"""

from ppnets.analysis.cam import cam_files

from ppnets.data import build_transforms
from ppnets.checkpoint import load_model_for_inference
from ppnets.export import label_names_for, preprocess_ops
from ppnets.deploy.inputs import list_inputs
from ppnets.errors import ConfigError
from ppnets.cli import config_parser, load_config_args, run


def main(argv=None):
    parser = config_parser(__doc__)
    parser.add_argument("--image", required=True, help="an image file or a folder of images")
    parser.add_argument("--class", dest="class_id", type=int, default=None, help="class id to explain")
    parser.add_argument("--stage", default=None, help="stage index, stageN or module name (default: last)")
    parser.add_argument("--output", default="output/cam", help="folder for the PNGs (default: output/cam)")
    parser.add_argument("--scale", type=int, default=1, help="enlarge the written pictures this many times")
    args = parser.parse_args(argv)
    if args.scale < 1:
        raise ConfigError(f"--scale: expected an integer >= 1, got {args.scale}")
    cfg = load_config_args(args)
    model = load_model_for_inference(cfg)
    transform = build_transforms(preprocess_ops(cfg), "Infer.transforms")
    for r in cam_files(model, transform, list_inputs(args.image), args.output, args.stage, args.class_id,
                       label_names_for(cfg), args.scale):
        print(f"{r['file']}: class {r['class_id']} ({r['label']}, logit {r['score']:.3f}), "
              f"stage {r['stage']} [{r['module']}] -> {r['output']}")


if __name__ == "__main__":
    run(main)
