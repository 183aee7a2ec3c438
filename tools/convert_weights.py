"""Convert a PaddleClas ``.pdparams`` checkpoint to ppnets's parameter layout.

    python tools/convert_weights.py --model EfficientNetB0 --src EfficientNetB0_pretrained.pdparams \
        --dst weights/EfficientNetB0.pdparams

Works for every registered model: families whose keys differ from PaddleClas's
(EfficientNet) are renamed by their registered converter, the others are only
checked. The output always has exactly the model's keys and shapes; otherwise the
tool prints one line naming the missing/unexpected/mismatched keys and exits with 2.
``--src``/``--dst`` may be ``.pdparams`` or ``.safetensors`` (by the suffix). A ``.pdparams``
source is read without running code from it (``--trust-pickles`` lifts that for trusted files).
"""
import argparse
import os


from ppnets.cli import run
from ppnets.utils.files import atomic_write


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Convert a PaddleClas .pdparams to ppnets's layout.")
    p.add_argument("--model", required=True, help="registered model name, e.g. EfficientNetB0")
    p.add_argument("--src", required=True, help="PaddleClas-layout .pdparams (or .safetensors) to read")
    p.add_argument("--dst", required=True, help=".pdparams or .safetensors to write (ppnets layout)")
    p.add_argument("--class-num", type=int, default=1000,
                   help="classes of the checkpoint's classifier (default 1000, ImageNet)")
    p.add_argument("--trust-pickles", action="store_true",
                   help="read --src with Paddle's unrestricted unpickler (can run code; only for files you trust)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    return p.parse_args(argv)


def convert_file(model: str, src: str, dst: str, class_num: int = 1000, trust: bool = False) -> int:
    """Read ``src``, convert and check it for ``model``, write ``dst``; returns the number of tensors."""
    import paddle

    from ppnets.arch import model_info
    from ppnets.arch.convert import convert_paddleclas_state_dict, is_paddleclas_layout
    from ppnets.checkpoint import read_weights
    from ppnets.checkpoint.serialization import encode

    model_info(model)  # unknown name → ConfigError listing the valid ones
    state_dict = read_weights(src, trust)
    from_pc = is_paddleclas_layout(model, state_dict)
    converted = convert_paddleclas_state_dict(model, state_dict, class_num=class_num)
    os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    atomic_write(dst, encode({k: paddle.to_tensor(v) for k, v in converted.items()}, dst))
    if model_info(model).from_paddleclas is None:
        how = "checked (PaddleClas's layout is ppnets's for this model)"
    else:
        how = "converted from PaddleClas's layout" if from_pc else "already in ppnets's layout, checked"
    print(f"{model}: {len(converted)} tensors {how} -> {dst}")
    return len(converted)


def main(argv=None) -> None:
    args = parse_args(argv)
    convert_file(args.model, args.src, args.dst, args.class_num, args.trust_pickles)


if __name__ == "__main__":
    run(main)
