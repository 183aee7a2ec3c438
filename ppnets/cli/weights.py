"""Published ImageNet weights: which models have them, downloading, checking and converting them.

    ppnets weights list ["*mobilenetv3*"] [--source timm]   # models, sources, top-1, cached or not
    ppnets weights download MobileNetV3_large_x1_0 [--source paddleclas|ssld|timm]
    ppnets weights download timm/mobilenetv4_conv_small.e2400_r224_in1k
    ppnets weights verify                                    # every cached file against SHA256SUMS
    ppnets weights convert --model MobileNetV3_large_x1_0 --src timm --dst mnv3.pdparams
    ppnets weights docs --update docs/pretrained.md          # the timm ↔ ppnets table

Downloads go to PaddleClas's cache (``~/.paddleclas/weights``) or the Hugging Face cache; see
docs/pretrained.md for the settings (``PPNETS_OFFLINE``, ``PPNETS_PADDLECLAS_MIRROR``, ``HF_ENDPOINT``).
A failure is one ``ppnets: error:`` line and exit code 2.
"""
from __future__ import annotations

import argparse
import os
from typing import List, Optional, Sequence

from ..arch.registry import MODELS
from ..checkpoint.hub import (MANIFEST, cached_hub_file, check_digest, is_download, paddleclas_cache, ppnets_home,
                               read_manifest, resolve, sha256_file)
from ..checkpoint.pretrained import convert_weights_file, default_source, list_models, timm_table, weight_sources
from ..errors import CheckpointError

START, END = "<!-- timm-table:start -->", "<!-- timm-table:end -->"


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="models with published weights")
    ls.add_argument("pattern", nargs="?", help="glob over model names, case-insensitive (e.g. '*lcnet*')")
    ls.add_argument("--source", choices=("paddleclas", "ssld", "timm"), help="only this source")
    dl = sub.add_parser("download", help="download (or find in the cache) one weights file")
    dl.add_argument("name", help="a model name, a timm hub id timm/<model>.<tag>, or a URL")
    dl.add_argument("--source", choices=("paddleclas", "ssld", "timm"), help="for a model name (default: "
                    "PaddleClas's, else timm's)")
    dl.add_argument("--sha256", help="the digest the file must have")
    dl.add_argument("--mirror", help="a mirror of PaddleClas's weights (as PPNETS_PADDLECLAS_MIRROR)")
    sub.add_parser("verify", help="check every cached file against the SHA256SUMS manifests")
    cv = sub.add_parser("convert", help="write weights in a model's ppnets layout (see tools/convert_weights.py)")
    cv.add_argument("--model", required=True, help="registered model name")
    cv.add_argument("--src", required=True, help="a weights file, or paddleclas / ssld / timm / a hub id / a URL")
    cv.add_argument("--dst", required=True, help=".pdparams or .safetensors to write")
    cv.add_argument("--from", dest="source", default="auto", choices=("auto", "paddleclas", "timm"),
                    help="the layout of --src (default: recognised by its keys)")
    cv.add_argument("--class-num", type=int, default=None, help="classes of the file's classifier (default: read "
                    "from it for timm files, else 1000)")
    cv.add_argument("--trust-pickles", action="store_true", help="read a .pdparams --src with Paddle's unrestricted "
                    "unpickler (only for files you trust)")
    dc = sub.add_parser("docs", help="print the timm ↔ ppnets table of docs/pretrained.md")
    dc.add_argument("--update", metavar="MARKDOWN", help="replace the marked table in this file")
    return p.parse_args(argv)


def _top1(value: Optional[float]) -> str:
    return f"{value:.2f}" if value is not None else "-"


def list_rows(pattern: Optional[str] = None, source: Optional[str] = None) -> List[List[str]]:
    """``[model, source, top-1, size, weights, cached]`` for every published weights file."""

    rows = []
    for name in list_models(pattern, pretrained=True):
        for w in weight_sources(name):
            if source is None or w.source == source:
                where = w.location if w.source == "timm" else os.path.basename(w.location)
                rows.append([name, w.source, _top1(w.top1), str(w.image_size or "-"), where,
                             "yes" if w.cached else "-"])
    return rows


def _print_table(rows: List[List[str]], head: Sequence[str]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    for row in [list(head)] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def download(name: str, source: Optional[str] = None, sha256: Optional[str] = None,
             mirror: Optional[str] = None) -> str:
    """The local path of ``name``'s weights (a model name with its ``source``, a hub id or a URL)."""

    if name in MODELS:
        spec, model = source or default_source(name), name
    elif is_download(name):
        spec, model = name, None
    else:
        MODELS.get(name, "NAME")  # ConfigError: unknown model, with the closest names
    weights = resolve(spec, model, mirror, sha256)
    digest = sha256_file(weights.path)
    check_digest(weights, digest, sha256)
    print(f"{weights.origin}\n  file:   {weights.path}\n  sha256: {digest}")
    return weights.path


def verify() -> int:
    """Check every file the manifests record; returns the number checked (a mismatch raises)."""

    bad, checked = [], 0
    for folder in (paddleclas_cache(), ppnets_home()):
        for key, recorded in sorted(read_manifest(folder).items()):
            if key.startswith("timm/"):  # a hub file: hand-placed or in the Hugging Face cache
                path = cached_hub_file(key.rsplit("/", 1)[0]) or ""
            else:
                path = os.path.join(folder, key)
            if not os.path.isfile(path):
                print(f"missing   {key} (recorded in {os.path.join(folder, MANIFEST)})")
                continue
            digest, checked = sha256_file(path), checked + 1
            if digest == recorded:
                print(f"ok        {path}")
            else:
                print(f"MISMATCH  {path}")
                bad.append(f"{path}: SHA-256 {digest}, recorded {recorded}")
    if bad:
        raise CheckpointError("\n".join(bad))
    print(f"{checked} file(s) match their recorded SHA-256")
    return checked


def update_docs(path: Optional[str]) -> None:

    text = f"{START}\n{timm_table()}\n{END}"
    if not path:
        print(text)
        return
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    if START not in doc or END not in doc:
        raise CheckpointError(f"{path}: markers {START} / {END} not found")
    head, rest = doc.split(START, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + text + rest.split(END, 1)[1])


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.command == "list":
        _print_table(list_rows(args.pattern, args.source), ("model", "source", "top-1", "size", "weights", "cached"))
    elif args.command == "download":
        download(args.name, args.source, args.sha256, args.mirror)
    elif args.command == "verify":
        verify()
    elif args.command == "convert":

        count, how = convert_weights_file(args.model, args.src, args.dst, args.source, args.class_num,
                                          args.trust_pickles)
        print(f"{args.model}: {count} tensors {how} -> {args.dst}")
    else:
        update_docs(args.update)
