"""``model.summary()`` for ppnets models: per-layer table, stem/stage/block roll-up, MACs by kind.

:func:`summarize` runs one batch-1 forward pass (through :func:`~ppnets.arch.profile.profile_model`)
while recording every block's input and output shape, and splits the per-layer statistics into

- the **stem**: the model's ``stem_modules``,
- **stages**: one per entry of ``model.feature_info``, with the blocks found in its modules
  (layers of a stage outside its blocks, e.g. SqueezeNet's max-pools, are listed with it),
- the **head**: what runs after the last stage (the neck, e.g. the final 1×1 conv, and the
  classifier head).

A layer that is not a ppnets model (no ``feature_info``) is split into the layers before its
first block, one stage with all its blocks, and the layers after them.

Units: parameters are trainable parameter elements (BN running statistics excluded);
MACs are multiply-accumulates of Conv2D and Linear layers at batch 1 (FLOPs = 2 × MACs).
Every row of every table adds up exactly to the totals.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import paddle.nn as nn

from .blocks import BlockInfo, describe_block, find_blocks
from ..arch.interface import stages_of
from ..arch.profile import LayerStat, LayerTotals, ModelProfile, profile_model

__all__ = ["BlockRecord", "Section", "ModelSummary", "summarize", "KINDS", "fmt_int", "fmt_si",
           "units_note", "format_layers", "format_rollup", "format_kinds", "format_summary", "write_layers_csv"]

#: MAC kinds, in display order (see :func:`ppnets.arch.profile.conv_kind`).
KINDS: Tuple[str, ...] = ("full", "pointwise", "depthwise", "grouped", "fc")
KIND_NAMES = {"full": "full conv (k×k, groups=1)", "pointwise": "pointwise (1×1 conv)",
              "depthwise": "depthwise conv", "grouped": "grouped conv", "fc": "fully connected"}


@dataclass
class BlockRecord(LayerTotals):
    """One executed block: its structure, shapes and the leaf layers that ran inside it."""

    name: str
    index: int
    info: BlockInfo
    in_shape: Tuple[int, ...]
    out_shape: Tuple[int, ...]
    layers: List[LayerStat] = field(default_factory=list)
    stage: str = ""


@dataclass
class Section(LayerTotals):
    """A row group of the roll-up: ``stem``, ``stage1`` … or ``head``."""

    name: str
    module: str = ""                                        # the container of the stage's blocks
    blocks: List[BlockRecord] = field(default_factory=list)
    layers: List[LayerStat] = field(default_factory=list)   # every leaf run in the section, in order

    @property
    def other(self) -> List[LayerStat]:
        """Layers of the section outside any block."""
        inside = {id(layer) for b in self.blocks for layer in b.layers}
        return [layer for layer in self.layers if id(layer) not in inside]

    @property
    def out_shape(self) -> Tuple[int, ...]:
        """Output shape of the section: its last block's, unless layers ran after that block."""
        if not self.layers:
            return ()
        last = self.layers[-1]
        if self.blocks and any(last is layer for layer in self.blocks[-1].layers):
            return self.blocks[-1].out_shape
        return last.out_shape


@dataclass
class ModelSummary:
    """Everything the analysis tools print about one model at one input size."""

    name: str
    input_shape: Tuple[int, ...]
    profile: ModelProfile
    sections: List[Section]
    class_num: Optional[int] = None

    @property
    def params(self) -> int:
        return self.profile.params

    @property
    def macs(self) -> int:
        return self.profile.macs

    @property
    def blocks(self) -> List[BlockRecord]:
        return [b for s in self.sections for b in s.blocks]

    @property
    def stem(self) -> Section:
        return self.sections[0]

    @property
    def head(self) -> Section:
        return self.sections[-1]

    @property
    def stages(self) -> List[Section]:
        return self.sections[1:-1]

    def macs_by_kind(self) -> Dict[str, int]:
        """MACs per kind, every kind of :data:`KINDS` present (zeros included)."""
        out = {k: 0 for k in KINDS}
        for layer in self.profile.layers:
            if layer.macs:
                out[layer.kind] = out.get(layer.kind, 0) + layer.macs
        return out


def summarize(model: nn.Layer, input_size: Union[int, Sequence[int]] = 224, name: Optional[str] = None,
              in_chans: int = 3) -> ModelSummary:
    """Profile ``model`` at ``input_size`` (batch 1, eval mode) and group the layers by block and stage."""
    blocks = find_blocks(model)
    shapes: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {}
    order: List[str] = []
    hooks = []
    for bname, block in blocks:
        def pre(layer, inputs, _n=bname):
            x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            shapes.setdefault(_n, (tuple(x.shape), ()))

        def post(layer, inputs, output, _n=bname):
            out = output[0] if isinstance(output, (list, tuple)) else output
            if _n not in order:
                order.append(_n)
                shapes[_n] = (shapes[_n][0], tuple(out.shape))
        hooks += [block.register_forward_pre_hook(pre), block.register_forward_post_hook(post)]
    try:
        profile = profile_model(model, input_size, in_chans)
    finally:
        for h in hooks:
            h.remove()

    by_name = dict(blocks)
    records = {n: BlockRecord(n, i, describe_block(by_name[n]), shapes[n][0], shapes[n][1])
               for i, n in enumerate(order)}
    # each leaf record belongs to the block whose name prefixes it
    prefixes = sorted(records, key=len, reverse=True)
    owner: List[Optional[str]] = []
    for layer in profile.layers:
        owner.append(next((p for p in prefixes if layer.name.startswith(p + ".")), None))
    for layer, o in zip(profile.layers, owner):
        if o is not None:
            records[o].layers.append(layer)

    stages = _stage_sections(model, records)
    sections = [Section("stem")] + stages + [Section("head")]
    where = _sections_of(model, profile.layers, owner, len(stages))
    for layer, o in zip(profile.layers, where):
        sections[o].layers.append(layer)
    section_of = {id(layer): sections[o] for layer, o in zip(profile.layers, where)}
    for n in order:
        sec = section_of[id(records[n].layers[0])] if records[n].layers else None
        if sec is not None and any(sec is st for st in stages):
            sec.blocks.append(records[n])
            records[n].stage = sec.name
    return ModelSummary(name or type(model).__name__, profile.input_shape, profile, sections,
                        getattr(model, "class_num", None))


def _under(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _stage_sections(model: nn.Layer, records: Dict[str, BlockRecord]) -> List[Section]:
    info = stages_of(model)
    if not info:
        return [Section("stage1")] if records else []
    # a stage that is one container (MobileNetV2's conv3, EfficientNet's blocks.2) is labelled with it
    return [Section(f"stage{i + 1}", stage["modules"][0]
                    if len(stage["modules"]) == 1 and stage["modules"][0] not in records else "")
            for i, stage in enumerate(info)]


def _sections_of(model: nn.Layer, layers: Sequence[LayerStat], owner: Sequence[Optional[str]],
                 n_stages: int) -> List[int]:
    """Section index (0 = stem, 1 … n = stages, n + 1 = head) of each executed leaf layer.

    A ppnets model runs its stem modules, then each stage's modules, in order: each leaf goes to the
    next module of that sequence whose name prefixes it (so a shared layer, like SqueezeNet's pool,
    is placed by when it runs); what runs after the last stage is the head. Any other layer: before
    its first block = stem, up to its last block = the one stage, then the head.
    """
    info = stages_of(model)
    if not info:
        owned = [i for i, o in enumerate(owner) if o is not None]
        if not owned:
            return [0] * len(layers)
        return [0 if i < owned[0] else 1 if i <= owned[-1] else 2 for i in range(len(layers))]
    chain = [(0, m) for m in model.stem_modules] + [(i + 1, m) for i, stage in enumerate(info)
                                                     for m in stage["modules"]]
    out, at = [], 0
    for layer in layers:
        hit = next((j for j in range(at, len(chain)) if _under(layer.name, chain[j][1])), None)
        if hit is None:
            out.append(0 if not out else n_stages + 1 if at == len(chain) - 1 else out[-1])
        else:
            at = hit
            out.append(chain[hit][0])
    return out


# --------------------------------------------------------------------------- formatting


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_si(n: float, unit: str = "") -> str:
    """``313.6M``-style short form (k, M, G)."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.{1 if n / div < 1000 else 0}f}{suffix}{unit}"
    return f"{n:g}{unit}"


def _shape(shape: Sequence[int]) -> str:
    return "×".join(str(s) for s in shape[1:]) if shape else "-"


def units_note(summary: ModelSummary) -> str:
    n, c, h, w = summary.input_shape
    return (f"input {c}×{h}×{w} (batch {n}); params = trainable parameters (BN statistics excluded); "
            f"MACs = multiply-accumulates of Conv2D + Linear layers, FLOPs = 2 × MACs")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int]) -> List[str]:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return out


def _pct(part: int, total: int) -> str:
    return f"{100.0 * part / total:.1f}%" if total else "-"


def format_layers(summary: ModelSummary) -> str:
    """The per-layer table: every leaf layer in execution order."""
    rows = [[str(i), layer.name, layer.type, layer.kind if layer.macs else "", _shape(layer.out_shape),
             fmt_int(layer.params), fmt_int(layer.macs)]
            for i, layer in enumerate(summary.profile.layers)]
    rows.append(["", "total", "", "", "", fmt_int(summary.params), fmt_int(summary.macs)])
    return "\n".join(_table(["#", "layer", "type", "kind", "output (C×H×W)", "params", "MACs"], rows, (0, 5, 6)))


def format_rollup(summary: ModelSummary) -> str:
    """Stem, each stage with its blocks, head, and the totals."""
    total = summary.macs
    rows = []
    for sec in summary.sections:
        label = sec.name + (f" [{sec.module}]" if sec.module else "")
        what = f"{len(sec.blocks)} block{'s' if len(sec.blocks) != 1 else ''}" if sec.blocks else \
            ", ".join(dict.fromkeys(layer.type for layer in sec.other if layer.params or layer.macs)) or "-"
        rows.append([label, what, _shape(sec.out_shape), fmt_int(sec.params), fmt_int(sec.macs),
                     _pct(sec.macs, total)])
        if sec.blocks:
            for b in sec.blocks:
                rows.append([f"  {b.name}", f"{b.info.title} {b.info.summary()}", _shape(b.out_shape),
                             fmt_int(b.params), fmt_int(b.macs), _pct(b.macs, total)])
            extra = sec.other
            if extra:
                rows.append(["  (outside blocks)", ", ".join(dict.fromkeys(x.type for x in extra)), "",
                             fmt_int(sum(x.params for x in extra)), fmt_int(sum(x.macs for x in extra)),
                             _pct(sum(x.macs for x in extra), total)])
    rows.append(["total", "", "", fmt_int(summary.params), fmt_int(summary.macs), "100.0%"])
    return "\n".join(_table(["section / block", "structure", "output (C×H×W)", "params", "MACs", "% MACs"],
                            rows, (3, 4, 5)))


def format_kinds(summary: ModelSummary) -> str:
    """MACs by layer kind: full conv, pointwise, depthwise, grouped, FC."""
    kinds = summary.macs_by_kind()
    counts: Dict[str, int] = {}
    for layer in summary.profile.layers:
        if layer.macs:
            counts[layer.kind] = counts.get(layer.kind, 0) + 1
    rows = [[KIND_NAMES.get(k, k), str(counts.get(k, 0)), fmt_int(v), _pct(v, summary.macs)] for k, v in kinds.items()]
    rows.append(["total", str(sum(counts.values())), fmt_int(summary.macs), "100.0%"])
    return "\n".join(_table(["layer kind", "layers", "MACs", "% MACs"], rows, (1, 2, 3)))


def format_summary(summary: ModelSummary, layers: bool = True) -> str:
    """The full report printed by ``tools/analyze_model.py``."""
    head = (f"{summary.name}: {fmt_int(summary.params)} params, {fmt_int(summary.macs)} MACs "
            f"({fmt_si(summary.params)} params, {fmt_si(summary.macs)} MACs = {fmt_si(2 * summary.macs)} FLOPs)")
    parts = [head, units_note(summary), ""]
    if layers:
        parts += ["Per layer", format_layers(summary), ""]
    parts += ["Per stage and block", format_rollup(summary), "", "MACs by layer kind", format_kinds(summary)]
    return "\n".join(parts)


def write_layers_csv(summary: ModelSummary, path: str) -> None:
    """The per-layer table as CSV (name, type, kind, block, stage, output shape, params, MACs)."""
    where: Dict[int, Tuple[str, str]] = {}
    for sec in summary.sections:
        for layer in sec.layers:
            where[id(layer)] = ("", sec.name)
        for b in sec.blocks:
            for layer in b.layers:
                where[id(layer)] = (b.name, sec.name)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["index", "layer", "type", "kind", "block", "section", "output_shape", "params", "macs"])
        for i, layer in enumerate(summary.profile.layers):
            block, sec = where.get(id(layer), ("", ""))
            w.writerow([i, layer.name, layer.type, layer.kind, block, sec, "x".join(map(str, layer.out_shape)),
                        layer.params, layer.macs])
