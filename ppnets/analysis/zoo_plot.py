"""Charts of the model-zoo comparison (:mod:`ppnets.analysis.zoo`): points coloured by family
(legend: family and year), each labelled with its variant name where the label fits without
overlapping another label or point."""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple

from ..arch import list_models, model_info

if TYPE_CHECKING:
    from .zoo import ZooEntry

__all__ = ["plot_zoo", "short_label", "FAMILY_STYLE", "family_style"]

#: family → (colour, marker), in the order of the papers.
FAMILY_STYLE: Dict[str, Tuple[str, str]] = {
    "SqueezeNet": ("#8c564b", "s"),
    "MobileNetV1": ("#1f77b4", "o"),
    "ShuffleNetV1": ("#bcbd22", "v"),
    "MobileNetV2": ("#2ca02c", "D"),
    "ShuffleNetV2": ("#ff7f0e", "^"),
    "MobileNetV3": ("#9467bd", "P"),
    "EfficientNet": ("#d62728", "*"),
}
#: colours and markers for registered families not in :data:`FAMILY_STYLE`; 7 and 6 are coprime, so the
#: i-th family in name order gets (colour i mod 7, marker i mod 6): distinct for 42 families
SPARE_COLOURS: Tuple[str, ...] = ("#17becf", "#e377c2", "#7f7f7f", "#1a55ff", "#5b8c00", "#c51b7d", "#b8860b")
SPARE_MARKERS: Tuple[str, ...] = ("X", "h", "p", "<", ">", "d")


def family_style(family: str) -> Tuple[str, str]:
    """(colour, marker) of ``family`` in the charts: :data:`FAMILY_STYLE`, else a spare style, distinct
    for each registered family (so a new family needs no entry here)."""
    if family in FAMILY_STYLE:
        return FAMILY_STYLE[family]
    others = sorted({model_info(n).family for n in list_models()} - set(FAMILY_STYLE) | {family})
    i = others.index(family)
    return SPARE_COLOURS[i % len(SPARE_COLOURS)], SPARE_MARKERS[i % len(SPARE_MARKERS)]


def short_label(name: str, family: str) -> str:
    """``MobileNetV2_x0_25`` → ``x0.25``; ``EfficientNetB3`` → ``B3``; ``SqueezeNet1_1`` → ``1.1``."""
    prefix = "EfficientNet" if family == "EfficientNet" else family
    rest = name[len(prefix):] if name.startswith(prefix) else name
    rest = rest.lstrip("_")
    rest = re.sub(r"(\d)_(\d)", r"\1.\2", rest)
    return rest or "x1.0"


def _label_priority(e: ZooEntry) -> Tuple[int, float]:
    # base width first (x1.0, B0, …), then the others by size, so the best-known variants keep their labels
    lbl = short_label(e.name, e.family)
    base = lbl in ("x1.0", "B0", "1.0", "small_x1.0", "large_x1.0", "g3_x1.0", "g8_x1.0")
    return (0 if base else 1, -e.macs_common)


def _place_labels(ax, points: List[Tuple[float, float, str, str]], fontsize: float = 7.0) -> int:
    """Annotate points where the text overlaps no other label, no point and stays inside the axes.

    Returns the number of labels placed (points whose every candidate position collides stay unlabelled).
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax_box = ax.get_window_extent(renderer)
    to_px = ax.transData.transform
    pts_px = [to_px((x, y)) for x, y, _, _ in points]
    r = 4.0 * fig.dpi / 72.0
    obstacles = [(px - r, py - r, px + r, py + r) for px, py in pts_px]
    offsets = [(5, 3), (5, -9), (-5, 3), (-5, -9), (0, 7), (0, -13), (9, -3), (-9, -3), (12, 8), (-12, 8),
               (12, -14), (-12, -14), (0, 14), (0, -20)]
    placed = 0
    for (x, y, text, color) in points:
        for dx, dy in offsets:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                              color=color, ha=ha, va="bottom")
            bb = ann.get_window_extent(renderer).expanded(1.04, 1.08)
            box = (bb.x0, bb.y0, bb.x1, bb.y1)
            inside = ax_box.x0 <= box[0] and box[2] <= ax_box.x1 and ax_box.y0 <= box[1] and box[3] <= ax_box.y1
            if inside and not any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3]
                                  for o in obstacles):
                obstacles.append(box)
                placed += 1
                break
            ann.remove()
    return placed


def _darker(color: str, f: float = 0.72) -> str:
    """A darker shade of ``#rrggbb`` for label text (light marker colours are hard to read as text)."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % (int(r * f), int(g * f), int(b * f))


def _scatter(ax, entries: Sequence[ZooEntry], xs: Sequence[float], ys: Sequence[float]) -> None:
    families = sorted({e.family for e in entries},
                      key=lambda f: (min(e.year for e in entries if e.family == f), list(FAMILY_STYLE).index(f)
                                     if f in FAMILY_STYLE else 99))
    for fam in families:
        idx = [i for i, e in enumerate(entries) if e.family == fam]
        color, marker = family_style(fam)
        year = entries[idx[0]].year
        order = sorted(idx, key=lambda i: xs[i])
        ax.scatter([xs[i] for i in order], [ys[i] for i in order], s=42 if marker != "*" else 90, c=color,
                   marker=marker, edgecolors="white", linewidths=0.5, label=f"{fam} ({year})", zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", title="family (year)", title_fontsize=8, framealpha=0.9)
    pts = sorted(((xs[i], ys[i], short_label(e.name, e.family), _darker(family_style(e.family)[0]), e)
                  for i, e in enumerate(entries)), key=lambda p: _label_priority(p[4]))
    _place_labels(ax, [p[:4] for p in pts])


def _deployed_macs(e: ZooEntry) -> int:
    return e.macs_fused if e.macs_fused is not None else e.macs_common


def _fused_points(ax, entries: Sequence[ZooEntry]) -> None:
    """Re-parameterized models: a hollow marker at the fused form's size, joined to the train-time one."""
    for e in entries:
        if e.params_fused is None:
            continue
        color, marker = family_style(e.family)
        x0, y0, x1, y1 = e.macs_common / 1e6, e.params / 1e6, e.macs_fused / 1e6, e.params_fused / 1e6
        ax.plot([x0, x1], [y0, y1], color=color, linewidth=0.8, alpha=0.6, zorder=2)
        ax.scatter([x1], [y1], s=42, marker=marker, facecolors="none", edgecolors=color, linewidths=1.0, zorder=3)
    if any(e.params_fused is not None for e in entries):
        ax.text(0.99, 0.01, "hollow: re-parameterized models after fusing (the exported form)", transform=ax.transAxes,
                fontsize=8, color="#555555", ha="right", va="bottom")


def plot_zoo(entries: Sequence[ZooEntry], out_dir: str, batches: Sequence[int] = (1,), repeats: int = 10,
             threads: int = 1, prefix: str = "zoo", dpi: int = 110) -> List[str]:
    """Write ``<prefix>_params_vs_macs.png`` and, if latency was measured, ``<prefix>_latency_vs_macs.png``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    common = entries[0].common_size
    written = []
    macs = [e.macs_common / 1e6 for e in entries]
    fig, ax = plt.subplots(figsize=(11, 7.5), constrained_layout=True)
    _scatter(ax, entries, macs, [e.params / 1e6 for e in entries])
    _fused_points(ax, entries)
    ax.set_xlabel(f"MACs at {common}×{common} input, millions (log scale; FLOPs = 2 × MACs)")
    ax.set_ylabel("parameters, millions (log scale)")
    counts = sorted({e.class_num for e in entries})
    classes = "/".join(str(n) for n in counts) + (" classes" if counts != [1] else " class")
    ax.set_title(f"Parameters vs compute of {len(entries)} ppnets models (batch 1, {common}×{common} input, "
                 f"{classes})", fontsize=11)
    path = os.path.join(out_dir, f"{prefix}_params_vs_macs.png")
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    written.append(path)

    timed = [e for e in entries if e.latency_ms]
    lat = [b for b in batches if timed and all(b in e.latency_ms for e in timed)]
    if lat:
        fig, axes = plt.subplots(len(lat), 1, figsize=(11, 1.0 + 6.5 * len(lat)), constrained_layout=True,
                                 squeeze=False)
        for ax, b in zip(axes[:, 0], lat):
            # the timed model is the exported one: a re-parameterized family's fused form, at its MACs
            _scatter(ax, timed, [_deployed_macs(e) / 1e6 for e in timed], [e.latency_ms[b] for e in timed])
            ax.set_xlabel(f"MACs at {common}×{common} input of the exported (fused) model, millions (log scale)")
            ax.set_ylabel(f"latency of one batch of {b}, ms (log scale)")
            ax.set_title(f"batch {b}", fontsize=10)
        plural = "s" if threads != 1 else ""
        fig.suptitle(f"CPU latency vs compute: exported models on paddle.inference (oneDNN, {threads} thread{plural}, "
                     f"median of {repeats} interleaved rounds, {common}×{common} input)", fontsize=11)
        missing = [e.name for e in entries if not e.latency_ms]
        if missing:
            fig.text(0.01, 0.002, f"not timed: {', '.join(missing)} (see the table)", fontsize=8, color="#555555",
                     ha="left", va="bottom")
        path = os.path.join(out_dir, f"{prefix}_latency_vs_macs.png")
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)
    return written
