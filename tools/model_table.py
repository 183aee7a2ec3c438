"""Print the model zoo as a Markdown table (docs/models.md).

    python tools/model_table.py                      # every registered model
    python tools/model_table.py --family ShuffleNetV2
    python tools/model_table.py --pattern "MobileNetV3_small*"

For each model: trainable parameters and Conv2D + Linear MACs at the model's native input
size (measured with ``ppnets.analysis.profile_model``, batch 1, 1000 classes), the input
size, its ImageNet config under ``configs/ImageNet/<Family>/`` and the paper. A table of
the papers (full titles) follows. Profiling builds every model and runs one forward pass
at its native size, so the full table takes about a minute on two CPU cores.
"""
from __future__ import annotations

import argparse
import os
import re
from typing import List, Optional, Sequence, Tuple

from ppnets.errors import ConfigError
from ppnets.cli import run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PAPER = re.compile(r"^(?P<title>.+) \((?P<authors>[^()]+), arXiv:(?P<arxiv>\d{4}\.\d{4,5})\)$")


def config_path(name: str, family: str) -> str:
    """The repo-relative ImageNet config of ``name``."""
    return f"configs/ImageNet/{family}/{name}.yaml"


def split_paper(paper: str) -> Tuple[str, str, Optional[str]]:
    """``"Title (Authors, arXiv:ID)"`` → (title, authors, arXiv id); unparsable → (paper, "", None)."""
    m = _PAPER.match(paper)
    if not m:
        return paper, "", None
    return m["title"], m["authors"], m["arxiv"]


def paper_cell(paper: str, year: int) -> str:
    """A short citation with its year, linked to arXiv: ``[Howard et al., 2017](https://arxiv.org/abs/…)``."""
    title, authors, arxiv = split_paper(paper)
    text = f"{authors or title}, {year}" if year else (authors or title)
    return f"[{text}](https://arxiv.org/abs/{arxiv})" if arxiv else text


def model_rows(names: Sequence[str]) -> List[dict]:
    """Measure every model in ``names``: params, MACs at the native size, input size, config, paper."""
    import paddle

    from ppnets.analysis import profile_model
    from ppnets.arch import build_model, model_info

    rows = []
    for name in names:
        info = model_info(name)
        with paddle.no_grad():
            prof = profile_model(build_model(name, class_num=1000), info.input_size)
        cfg = config_path(name, info.family)
        rows.append({"name": name, "family": info.family, "params": prof.params, "macs": prof.macs,
                     "input_size": info.input_size, "config": cfg if os.path.isfile(os.path.join(ROOT, cfg)) else None,
                     "paper": info.paper, "year": info.year})
    return rows


def markdown(rows: Sequence[dict]) -> str:
    """The model table, then one line per paper with its full title."""
    out = ["| Model | Params (M) | MACs (M) | Input | Config | Paper |",
           "|---|---:|---:|---:|---|---|"]
    for r in rows:
        cfg = f"`{r['config']}`" if r["config"] else "—"
        out.append(f"| {r['name']} | {r['params'] / 1e6:.2f} | {r['macs'] / 1e6:,.1f} | {r['input_size']} "
                   f"| {cfg} | {paper_cell(r['paper'], r['year'])} |")
    out += ["", "MACs: multiply-accumulates of the Conv2D and Linear layers for one image at the input "
            "size shown (FLOPs ≈ 2 × MACs); parameters: trainable, with a 1000-class head.", "",
            "| Family | Paper |", "|---|---|"]
    seen = {}
    for r in rows:
        seen.setdefault(r["family"], (r["paper"], r["year"]))
    for family, (paper, year) in seen.items():
        title, authors, arxiv = split_paper(paper)
        link = f" [arXiv:{arxiv}](https://arxiv.org/abs/{arxiv})" if arxiv else ""
        who = f"{authors}, {year}" if authors else str(year)
        out.append(f"| {family} | *{title}* ({who}){link} |")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="only this family, e.g. MobileNetV3")
    parser.add_argument("--pattern", help="only names matching this glob, e.g. 'EfficientNetB*'")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of user errors")
    args = parser.parse_args(argv)
    from ppnets.arch import list_models, model_info

    names = list_models(args.pattern, args.family)
    if not names:
        families = sorted({model_info(n).family for n in list_models()})
        raise ConfigError(f"no registered model matches --family {args.family!r} --pattern {args.pattern!r}; "
                          f"families: {', '.join(families)}")
    print(markdown(model_rows(names)))


if __name__ == "__main__":
    run(main)
