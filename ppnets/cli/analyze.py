"""Study one architecture: per-layer table, stage/block roll-up, MACs by layer kind, diagram.

    ppnets analyze --model MobileNetV2 [--input-size 224] [--class-num 1000]   # = python tools/analyze_model.py …
    python tools/analyze_model.py -c configs/mobilenetv2.yaml [-o Arch.name=ShuffleNetV2_x0_5]
    python tools/analyze_model.py --model ShuffleNetV2_x1_0 --brief --diagram docs/images/ShuffleNetV2_x1_0
    python tools/analyze_model.py --model EfficientNetB0 --visualdl output/vdl_graph
    python tools/analyze_model.py --model MobileOne_s0 --reparam     # the fused (inference) form
    python tools/analyze_model.py --conv-cost 56 56 16 32 3          # standard vs depthwise-separable
    python tools/analyze_model.py --scaling 1 2 3                    # EfficientNet compound scaling

Units: params = trainable parameters; MACs = multiply-accumulates of Conv2D + Linear layers
at batch 1 (FLOPs = 2 × MACs). ``--model`` uses the model's native input size unless
``--input-size`` is given; ``-c`` uses ``Global.image_shape`` and the ``Arch`` section.
A model with re-parameterizable blocks (MobileOne, RepViT, PP-LCNetV2 …) is analysed in its
train-time form, with the fused form's params and MACs beside it; ``--reparam`` analyses (and draws)
the fused form, the one that is exported. The diagram is Graphviz DOT (always written) rendered to SVG and PNG when Graphviz's ``dot``
is installed (``apt-get install graphviz``); otherwise the command to render it is printed.
"""

import argparse
import os
import sys

from ..errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("model (one of)")
    src.add_argument("-c", "--config", help="YAML config: analyse its Arch at Global.image_shape")
    src.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key (with -c), e.g. -o Arch.name=MobileNetV3_small_x1_0")
    src.add_argument("--model", help="a registered model name, e.g. MobileNetV2_x0_5")
    p.add_argument("--input-size", type=int, help="input height = width in pixels (default: native / config)")
    p.add_argument("--class-num", type=int, help="classes of the classifier (default: 1000, or the config's)")
    p.add_argument("--reparam", action="store_true",
                   help="analyse the re-parameterized (fused, inference) form (timm's --reparam)")
    out = p.add_argument_group("report")
    out.add_argument("--brief", action="store_true", help="omit the per-layer table")
    out.add_argument("--csv", metavar="PATH", help="also write the per-layer table as CSV")
    dia = p.add_argument_group("diagram")
    dia.add_argument("--diagram", nargs="?", const="", metavar="PATH",
                     help="write the block diagram as PATH.dot (+ .svg/.png with Graphviz); "
                          "default output/analysis/<model>")
    dia.add_argument("--compact", action="store_true", help="draw repeated identical blocks once, marked ×n")
    dia.add_argument("--detail", action="store_true", help="list every convolution inside single-path blocks")
    dia.add_argument("--visualdl", metavar="LOGDIR", help="also log the model graph to VisualDL in LOGDIR")
    calc = p.add_argument_group("calculators (no model needed)")
    calc.add_argument("--conv-cost", nargs=5, type=int, metavar=("H", "W", "C_IN", "C_OUT", "K"),
                      help="standard vs depthwise-separable convolution MACs and weights")
    calc.add_argument("--stride", type=int, default=1, help="stride for --conv-cost (default 1)")
    calc.add_argument("--scaling", nargs="+", type=float, metavar="PHI",
                      help="EfficientNet compound scaling for these φ, with B0–B7 placed by φ")
    calc.add_argument("--alpha", type=float, default=1.2, help="depth base α (default 1.2)")
    calc.add_argument("--beta", type=float, default=1.1, help="width base β (default 1.1)")
    calc.add_argument("--gamma", type=float, default=1.15, help="resolution base γ (default 1.15)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p


def _model_from_args(args):
    """(name, build kwargs, input size) from --model or -c."""
    from ..arch.registry import MODELS, WEIGHTS_KEYS

    if args.config:
        from .common import load_config_args
        cfg = load_config_args(args)
        arch = {k: v for k, v in cfg["Arch"].items() if k not in WEIGHTS_KEYS}
        name = arch.pop("name")
        if args.class_num is not None:
            arch["class_num"] = args.class_num
        _, h, w = cfg["Global"]["image_shape"]
        size = (args.input_size, args.input_size) if args.input_size else (int(h), int(w))
        return name, arch, size
    if args.override:
        raise ConfigError("-o/--override needs -c CONFIG")
    info = MODELS.get(args.model, "--model")
    size = args.input_size or info.input_size
    return args.model, {"class_num": args.class_num if args.class_num is not None else 1000}, (size, size)


def format_forms(name, kwargs, size) -> str:
    """Params and MACs of the train-time and the fused (re-parameterized) forms of a model."""
    from ..arch import build_model
    from ..arch.profile import profile_model

    rows = []
    for form in ("train-time", "fused"):
        model = build_model(name, **kwargs)
        if form == "fused":
            model.reparameterize()
        prof = profile_model(model, size)
        rows.append(f"  {form:<10}  {prof.params:>12,} params  {prof.macs:>15,} MACs")
    return "re-parameterization (train-time branches → fused inference convolutions):\n" + "\n".join(rows)


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.config and args.model:
        raise ConfigError("give either -c CONFIG or --model NAME, not both")
    if not (args.config or args.model or args.conv_cost or args.scaling):
        raise ConfigError("nothing to do: give --model NAME or -c CONFIG (or --conv-cost / --scaling); see --help")
    for flag, v in (("--input-size", args.input_size), ("--class-num", args.class_num)):
        if v is not None and v < 1:
            raise ConfigError(f"{flag}: must be a positive integer, got {v}")
    sections = []
    if args.conv_cost:
        from ..analysis.costs import conv_cost, format_conv_cost
        h, w, cin, cout, k = args.conv_cost
        sections.append(format_conv_cost(conv_cost(h, w, cin, cout, k, args.stride)))
    if args.scaling:
        from ..analysis.scaling import compound_scaling, format_scaling, variant_phis
        from tqdm import tqdm
        # building and counting ten or so EfficientNets takes a while: say so (a terminal also gets bars)
        print(f"ppnets: profiling {len(args.scaling)} scaled EfficientNet(s) and B0–B7 …", file=sys.stderr, flush=True)
        scaled = [compound_scaling(phi, args.alpha, args.beta, args.gamma)
                  for phi in tqdm(args.scaling, desc="profiling the scaled models", disable=None, leave=False)]
        sections.append(format_scaling(scaled, variant_phis(args.alpha, args.beta, args.gamma)))
    if args.config or args.model:
        from ..analysis.summary import format_summary, summarize, write_layers_csv
        from ..arch import build_model
        from ..arch.reparam import has_fused_form, reparameterize

        name, kwargs, size = _model_from_args(args)
        model = build_model(name, **kwargs)
        fusable = has_fused_form(model)
        if args.reparam:
            reparameterize(model)
        summary = summarize(model, size, name)
        sections.append(format_summary(summary, layers=not args.brief))
        if fusable:
            sections.append(format_forms(name, kwargs, size))
        if args.csv:
            write_layers_csv(summary, args.csv)
            sections.append(f"wrote {args.csv}")
        if args.diagram is not None:
            from ..analysis.diagram import RENDER_HINT, model_dot, render_dot
            path = args.diagram or os.path.join("output", "analysis", name)
            dot_path = path if path.endswith(".dot") else path + ".dot"
            os.makedirs(os.path.dirname(os.path.abspath(dot_path)), exist_ok=True)
            with open(dot_path, "w", encoding="utf-8") as f:
                f.write(model_dot(summary, model, detail=args.detail, compact=args.compact))
            rendered = render_dot(dot_path)
            stem = os.path.splitext(dot_path)[0]
            sections.append(f"diagram: wrote {', '.join([dot_path] + rendered)}" if rendered else
                            f"diagram: wrote {dot_path}\n" + RENDER_HINT.format(dot=dot_path, stem=stem))
        if args.visualdl:
            from ..analysis.diagram import log_graph_to_visualdl
            graph = log_graph_to_visualdl(name, size, args.visualdl, kwargs)
            sections.append(f"VisualDL graph: wrote {graph} (view: visualdl --logdir {args.visualdl}, 'Graphs' tab)")
    print("\n\n".join(sections))
    sys.stdout.flush()

