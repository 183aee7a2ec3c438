"""Convert a PaddleClas or timm checkpoint to ppnets's parameter layout, once.

    python tools/convert_weights.py --model EfficientNetB0 --src EfficientNetB0_pretrained.pdparams \
        --dst weights/EfficientNetB0.pdparams
    python tools/convert_weights.py --model MobileNetV4_conv_small --from timm \
        --src timm/mobilenetv4_conv_small.e2400_r224_in1k --dst weights/mnv4s.safetensors

Works for every registered model. ``--from paddleclas``: families whose keys differ from
PaddleClas's (EfficientNet) are renamed by their registered converter, the others are only
checked. ``--from timm``: timm's (PyTorch's) layout — BatchNorm buffers, Linear orientation and the
family's key mapping, for the timm models registered as the model. ``--from auto`` (default) tells
them apart by the keys. The output always has exactly the model's keys and shapes; otherwise the
tool prints one line naming the missing/unexpected/mismatched keys and exits with 2.
``--src`` is a file (``.pdparams`` or ``.safetensors``) or published weights (``paddleclas``,
``ssld``, ``timm``, a timm hub id, a URL: downloaded once, see docs/pretrained.md); ``--dst`` is
``.pdparams`` or ``.safetensors`` (by the suffix). A ``.pdparams`` source is read without running
code from it (``--trust-pickles`` lifts that for trusted files).
"""
import argparse

from ppnets.cli import run


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Convert a PaddleClas or timm checkpoint to ppnets's layout.")
    p.add_argument("--model", required=True, help="registered model name, e.g. EfficientNetB0")
    p.add_argument("--src", required=True, help="the weights to read: a .pdparams/.safetensors file, or paddleclas / "
                   "ssld / timm / timm/<model>.<tag> / a URL")
    p.add_argument("--dst", required=True, help=".pdparams or .safetensors to write (ppnets layout)")
    p.add_argument("--from", dest="source", default="auto", choices=("auto", "paddleclas", "timm"),
                   help="the layout of --src (default: recognised by its keys)")
    p.add_argument("--class-num", type=int, default=None,
                   help="classes of the checkpoint's classifier (default: read from a timm file, else 1000)")
    p.add_argument("--trust-pickles", action="store_true",
                   help="read --src with Paddle's unrestricted unpickler (can run code; only for files you trust)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p.parse_args(argv)


def convert_file(model: str, src: str, dst: str, class_num=None, trust: bool = False, source: str = "auto") -> int:
    """Read ``src``, convert and check it for ``model``, write ``dst``; returns the number of tensors."""
    from ppnets.checkpoint.pretrained import convert_weights_file

    count, how = convert_weights_file(model, src, dst, source, class_num, trust)
    print(f"{model}: {count} tensors {how} -> {dst}")
    return count


def main(argv=None) -> None:
    args = parse_args(argv)
    convert_file(args.model, args.src, args.dst, args.class_num, args.trust_pickles, args.source)


if __name__ == "__main__":
    run(main)
