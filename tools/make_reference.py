"""Write the reference data of PaddleClas models from a PaddleClas checkout: the state_dict key manifest
(``paddleclas_keys/<Name>.txt``) and the params / MACs row of ``model_sizes.md``, counted on
PaddleClas's own code — what tests/test_models.py checks a ppnets family against.

``python tools/make_reference.py --ppcls ~/src/PaddleClas GhostNet_x0_5 GhostNet_x1_0 [--size 224]
[--out tests/reference]``

``--ppcls`` is the folder holding the ``ppcls`` package (a git checkout, or the site-packages
folder of an install). Only ``ppcls.arch.backbone`` and the modules it needs are imported (not
PaddleClas's training stack); the models are built with ``class_num=1000`` and no pretrained
weights. A name already in ``model_sizes.md`` gets its input/params/MACs cells updated (its note
kept); a new one is added at the end of the first table.
"""
import argparse
import importlib
import os
import re
import subprocess
import sys
import types


from ppnets.analysis import count_params, profile_model
from ppnets.errors import ConfigError
from ppnets.cli import run

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "tests", "reference")
_PACKAGES = ("ppcls", "ppcls.arch", "ppcls.arch.backbone", "ppcls.utils")


def paddleclas_constructors(root: str) -> dict:
    """name → module of every model ``ppcls/arch/backbone/__init__.py`` exports (``from .m import A, B``)."""
    init = os.path.join(root, "ppcls", "arch", "backbone", "__init__.py")
    if not os.path.isfile(init):
        raise ConfigError(f"--ppcls: {root} holds no ppcls/arch/backbone/__init__.py (give the folder that "
                          "contains the ppcls package)")
    out = {}
    text = open(init, encoding="utf-8").read()
    for module, names in re.findall(r"^from \.([\w.]+) import ([^\n(]+)$", text, flags=re.M):
        for name in names.split(","):
            out[name.strip().split(" as ")[-1]] = f"ppcls.arch.backbone.{module}"
    return out


def _stub_packages(root: str) -> None:
    """Make ``ppcls`` importable without running its package ``__init__`` files (the training stack)."""
    for pkg in _PACKAGES:
        module = types.ModuleType(pkg)
        module.__path__ = [os.path.join(root, *pkg.split("."))]
        sys.modules[pkg] = module
    if os.path.isfile(os.path.join(root, "ppcls", "utils", "logger.py")):
        logger = importlib.import_module("ppcls.utils.logger")
        if getattr(logger, "_logger", True) is None:  # PaddleClas logs through a logger its tools set up
            logger.init_logger()


def build_paddleclas(root: str, name: str):
    """PaddleClas's model ``name`` (class_num=1000, no pretrained weights), built from ``root``."""
    modules = paddleclas_constructors(root)
    if name not in modules:
        raise ConfigError(f"{name}: not a model of {root}/ppcls/arch/backbone (it exports {len(modules)})")
    _stub_packages(root)  # the packages' __path__ point into root: no sys.path entry needed
    return getattr(importlib.import_module(modules[name]), name)(class_num=1000)


def manifest_text(model) -> str:
    """``key [shape]`` per state_dict entry, in order (the format of ``paddleclas_keys/*.txt``)."""
    return "".join(f"{k} {list(v.shape)}\n" for k, v in model.state_dict().items())


def update_sizes(path: str, name: str, size: int, params: int, macs: int) -> None:
    """Set ``name``'s row of the markdown table in ``path`` (or add it after the first table's last row)."""
    lines = open(path, encoding="utf-8").read().splitlines() if os.path.isfile(path) else [
        "# Reference sizes of the model zoo", "",
        "| name | input | params (PaddleClas layout) | MACs (PaddleClas layout) | note |", "|---|---|---|---|---|"]
    cells = [name, str(size), f"{params:,}", f"{macs:,}"]
    for i, line in enumerate(lines):
        row = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and row[0] == name:
            lines[i] = "| " + " | ".join(cells + row[4:]) + " |"
            break
    else:
        first = next(i for i, line in enumerate(lines) if line.startswith("|"))
        end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
        lines.insert(end, "| " + " | ".join(cells + [""]) + " |")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="PaddleClas model names, e.g. GhostNet_x1_0")
    parser.add_argument("--ppcls", required=True, help="folder containing the ppcls package (PaddleClas checkout)")
    parser.add_argument("--size", type=int, default=224, help="input size of the MAC count (default 224)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="reference folder (default tests/reference)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = parser.parse_args(argv)
    root = os.path.abspath(args.ppcls)
    if len(args.names) > 1:
        # one process per model: PaddleClas's older families give their parameters fixed names, which a
        # second model of the family in the same process may not reuse
        for name in args.names:
            cmd = [sys.executable, os.path.abspath(__file__), name, "--ppcls", root, "--size", str(args.size),
                   "--out", args.out] + (["--debug"] if args.debug else [])
            if subprocess.run(cmd).returncode:
                raise ConfigError(f"{name}: failed (see above)")
        return
    name = args.names[0]
    model = build_paddleclas(root, name)
    model.eval()
    os.makedirs(os.path.join(args.out, "paddleclas_keys"), exist_ok=True)
    with open(os.path.join(args.out, "paddleclas_keys", f"{name}.txt"), "w", encoding="utf-8") as f:
        f.write(manifest_text(model))
    params, macs = count_params(model), profile_model(model, args.size).macs
    update_sizes(os.path.join(args.out, "model_sizes.md"), name, args.size, params, macs)
    print(f"{name}: {params:,} params, {macs:,} MACs at {args.size}, {len(model.state_dict())} keys")


if __name__ == "__main__":
    run(main)
