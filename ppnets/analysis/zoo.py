"""Model-zoo comparison: size, compute, CPU latency and accuracy of registered models.

For each model :func:`measure_zoo` counts parameters and MACs at its native input
size and at a common one, exports it (random weights: latency does not depend on
them) to a Paddle inference model, and times it with the deploy
:class:`~ppnets.deploy.Predictor` on ``paddle.inference`` (CPU, oneDNN): the
median of ``repeats`` runs after ``warmup`` runs, per batch size, the runs of all models
interleaved in rounds so that a busy spell of the machine does not fall on a few models. Accuracy comes from a
training run's log (``<runs>/<name>/eval.log`` or ``train.log``) or is given by hand.

:func:`write_csv`, :func:`write_markdown` and :func:`plot_zoo` write the results; the
charts colour points by family (legend: family and year) and label each point with its
variant name where the label fits without overlapping another label or point.
"""
from __future__ import annotations

import csv
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..arch import build_model, list_models, model_info
from ..arch.reparam import has_fused_form, reparameterize as fuse
from ..deploy import Predictor
from ..export import plain_preprocessing, save_inference_model
from ..errors import ConfigError, DataError
from ..utils.tables import markdown_table, write_csv_rows
from ..utils.timing import Progress, interleaved, median, no_progress
from ..arch.profile import profile_model
from .logplot import best_eval, last_eval, parse_log

__all__ = ["ZooEntry", "export_for_benchmark", "measure_model", "measure_zoo", "read_accuracy",
           "select_models", "write_csv", "read_csv", "write_markdown", "plot_zoo", "short_label", "FAMILY_STYLE",
           "family_style"]

@dataclass
class ZooEntry:
    """One model's row of the comparison."""

    name: str
    family: str
    year: int
    native_size: int
    common_size: int
    params: int
    macs_native: int
    macs_common: int
    latency_ms: Dict[int, float] = field(default_factory=dict)   # batch → median ms per batch
    top1: Optional[float] = None
    top1_source: str = ""
    note: str = ""                                              # why latency is missing, if it is
    class_num: int = 1000                                       # classifier outputs of the measured model
    params_fused: Optional[int] = None       # re-parameterized families: the fused (deployed) form's size,
    macs_fused: Optional[int] = None         # MACs at the common size (the latency is the fused form's)

    def row(self, batches: Sequence[int]) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "model": self.name, "family": self.family, "year": self.year, "params": self.params,
            "native_input": self.native_size, "macs_native": self.macs_native,
            "common_input": self.common_size, "macs_common": self.macs_common}
        for b in batches:
            out[f"latency_b{b}_ms"] = round(self.latency_ms[b], 3) if b in self.latency_ms else ""
        out["params_fused"] = "" if self.params_fused is None else self.params_fused
        out["macs_fused"] = "" if self.macs_fused is None else self.macs_fused
        out["top1"] = "" if self.top1 is None else round(self.top1, 5)
        out["top1_source"] = self.top1_source
        out["note"] = self.note
        return out


def select_models(patterns: Optional[Sequence[str]] = None, family: Optional[str] = None) -> List[str]:
    """Registered names matching any glob in ``patterns`` (all if none), optionally of one ``family``."""
    names = list_models(family=family)
    if family and not names:
        families = sorted({model_info(n).family for n in list_models()})
        raise ConfigError(f"--family: unknown family '{family}'; valid: {', '.join(families)}")
    if not patterns:
        return names
    chosen: List[str] = []
    for pat in patterns:
        hits = list_models(pattern=pat, family=family) if any(ch in pat for ch in "*?[") else \
            ([pat] if pat in names else [])
        if not hits:
            model_info(pat)  # raises the registry's "unknown model … did you mean" error
            raise ConfigError(f"--models: '{pat}' is not of family {family}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def export_for_benchmark(model: paddle.nn.Layer, save_dir: str, input_size: int, name: str = "",
                         formats: Sequence[str] = ("paddle",), reparameterize: bool = True) -> str:
    """Export ``model`` (any weights) with a softmax head and a dynamic batch to ``save_dir``.

    Writes what :func:`ppnets.export.export_model` writes (``inference.json``,
    ``inference.pdiparams``, ``inference.yml``), so :class:`Predictor` loads it. Like the export,
    it fuses a re-parameterizable model first unless ``reparameterize`` is False.
    """
    if reparameterize:
        fuse(model)
    meta = {"model_name": name or type(model).__name__, "class_num": getattr(model, "class_num", None),
            "transform_ops": plain_preprocessing(input_size), "label_names": None}
    return save_inference_model(model, save_dir, [3, input_size, input_size], meta, formats=formats)


def read_accuracy(runs_dir: str, name: str) -> Tuple[Optional[float], str]:
    """Top-1 of ``name`` from ``<runs_dir>/<name>/eval.log`` (last eval) or ``train.log`` (best eval)."""
    for fname, pick in (("eval.log", "last"), ("train.log", "best")):
        path = os.path.join(runs_dir, name, fname)
        if not os.path.isfile(path):
            continue
        try:
            log = parse_log(path)
        except DataError:
            continue
        if pick == "last":
            value = last_eval(log)
            if value is not None:
                return value, path
        else:
            best = best_eval(log)
            if best is not None:
                return best[1], f"{path} (best, epoch {best[0]})"
    return None, ""


def _size_entry(name: str, model: paddle.nn.Layer, common_size: int, class_num: int = 1000) -> ZooEntry:
    """Params and MACs of the model as trained; for a re-parameterized family also of its fused form
    (a second build, fused: what the export and the latency are of)."""
    info = model_info(name)
    native = profile_model(model, info.input_size)
    common = native if common_size == info.input_size else profile_model(model, common_size)
    entry = ZooEntry(name, info.family, info.year, info.input_size, common_size, native.params,
                     native.macs, common.macs, class_num=class_num)
    if has_fused_form(model):
        fused = fuse(build_model(name, class_num=class_num))
        prof = profile_model(fused, common_size)
        entry.params_fused, entry.macs_fused = prof.params, prof.macs
    return entry


def _export_error(e: Exception) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    last = (lines or [""])[-1]
    kind = "" if last.startswith(type(e).__name__) else f"{type(e).__name__}: "
    return f"export failed: {kind}{last[:200]}"


def measure_zoo(names: Sequence[str], common_size: int = 224, batches: Sequence[int] = (1, 16),
                repeats: int = 10, warmup: int = 3, threads: int = 1, latency: bool = True,
                class_num: int = 1000, use_mkldnn: bool = True,
                progress: Progress = no_progress,
                on_entry: Optional[Callable[[ZooEntry], None]] = None) -> List[ZooEntry]:
    """Measure every model of ``names``; latency is timed in interleaved rounds.

    First, per model: params and MACs, export (random weights) and ``warmup`` runs per batch
    size. Then ``repeats`` rounds, each timing one run of every model at every batch size;
    a model's latency is the median of its rounds. Interleaving spreads any change in the
    machine's load (other processes) over all models instead of penalising the ones measured
    while it lasted. ``progress(iterable, description)`` may wrap both loops (e.g. tqdm);
    ``on_entry`` is called with each model's entry once its size is known.
    """
    entries: List[ZooEntry] = []
    batches = list(batches) if latency else []
    with tempfile.TemporaryDirectory(prefix="ppnets_zoo_") as tmp:
        runners: List[Tuple[ZooEntry, Predictor, Dict[int, np.ndarray]]] = []
        for name in progress(names, "models"):
            paddle.seed(0)
            model = build_model(name, class_num=class_num)
            entry = _size_entry(name, model, common_size, class_num)
            entries.append(entry)
            if batches:
                out = os.path.join(tmp, name)
                try:
                    export_for_benchmark(model, out, common_size, name)
                except Exception as e:  # a model that cannot be exported still gets its size row
                    entry.note = _export_error(e)
                else:
                    predictor = Predictor(out, cpu_threads=threads, use_mkldnn=use_mkldnn)
                    rng = np.random.default_rng(0)
                    inputs = {b: rng.standard_normal((b, 3, common_size, common_size)).astype("float32")
                              for b in batches}
                    for b in batches:
                        for _ in range(max(warmup, 1)):
                            predictor.run(inputs[b])
                    runners.append((entry, predictor, inputs))
            if on_entry is not None:
                on_entry(entry)
            del model
        if runners:
            runs = {(i, b): (lambda p=predictor, x=inputs[b]: p.run(x))
                    for i, (_, predictor, inputs) in enumerate(runners) for b in batches}
            times = interleaved(runs, repeats, 0, progress, "timing rounds")
            for i, (entry, _, _) in enumerate(runners):
                # to the µs, as the CSV keeps it: a table re-drawn from the CSV rounds the same way
                entry.latency_ms = {b: round(median(times[(i, b)]) * 1000.0, 3) for b in batches}
        runners.clear()
    return entries


def measure_model(name: str, common_size: int = 224, batches: Sequence[int] = (1, 16), repeats: int = 10,
                  warmup: int = 3, threads: int = 1, latency: bool = True, class_num: int = 1000,
                  use_mkldnn: bool = True) -> ZooEntry:
    """Params, MACs (native and common size) and, with ``latency``, exported CPU latency of ``name``."""
    return measure_zoo([name], common_size, batches, repeats, warmup, threads, latency, class_num, use_mkldnn)[0]


# --------------------------------------------------------------------------- output


def _fmt_m(n: int) -> str:
    return f"{n / 1e6:,.1f}" if n < 1e11 else f"{n / 1e9:,.0f}k"


def write_csv(entries: Sequence[ZooEntry], path: str, batches: Sequence[int]) -> str:
    rows = [e.row(batches) for e in entries]
    if any(e.class_num != 1000 for e in entries):  # (the default leaves the column out)
        for row, e in zip(rows, entries):
            row["class_num"] = e.class_num
    return write_csv_rows(rows, path, empty_header=("model",))


def read_csv(path: str) -> Tuple[List[ZooEntry], List[int]]:
    """Entries and latency batch sizes back from a :func:`write_csv` file (to re-plot without re-measuring)."""
    if not os.path.isfile(path):
        raise DataError(f"zoo CSV not found: {path}")
    entries, batches = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"model", "family", "year", "params", "native_input", "macs_native", "common_input", "macs_common"}
        if not need <= set(reader.fieldnames or []):
            raise DataError(f"{path}: not a compare_models CSV (needs columns {', '.join(sorted(need))})")
        batches = [int(m.group(1)) for c in reader.fieldnames for m in [re.fullmatch(r"latency_b(\d+)_ms", c)] if m]
        for row in reader:
            e = ZooEntry(row["model"], row["family"], int(row["year"]), int(row["native_input"]),
                         int(row["common_input"]), int(row["params"]), int(row["macs_native"]), int(row["macs_common"]))
            e.latency_ms = {b: float(row[f"latency_b{b}_ms"]) for b in batches if row.get(f"latency_b{b}_ms")}
            e.top1 = float(row["top1"]) if row.get("top1") else None
            e.top1_source, e.note = row.get("top1_source", ""), row.get("note", "")
            e.class_num = int(row["class_num"]) if row.get("class_num") else 1000
            if row.get("params_fused"):
                e.params_fused, e.macs_fused = int(row["params_fused"]), int(row["macs_fused"])
            entries.append(e)
    return entries, batches


def write_markdown(entries: Sequence[ZooEntry], path: str, batches: Sequence[int], notes: str = "") -> str:
    """A Markdown table (params and MACs in millions) with the measurement conditions above it."""
    common = entries[0].common_size if entries else 224
    lat = [b for b in batches if any(b in e.latency_ms for e in entries)]
    has_acc = any(e.top1 is not None for e in entries)
    has_fused = any(e.params_fused is not None for e in entries)
    head = ["model", "family (year)", "params (M)", "input", "MACs (M) at input", f"MACs (M) at {common}"]
    head += [f"fused: params (M) / MACs (M) at {common}"] if has_fused else []
    head += [f"latency b{b} (ms)" for b in lat] + (["top-1"] if has_acc else [])
    cells_rows = []
    for e in entries:
        cells = [e.name, f"{e.family} ({e.year})", f"{e.params / 1e6:.2f}", str(e.native_size),
                 _fmt_m(e.macs_native), _fmt_m(e.macs_common)]
        if has_fused:
            cells.append(f"{e.params_fused / 1e6:.2f} / {_fmt_m(e.macs_fused)}" if e.params_fused is not None else "-")
        cells += [f"{e.latency_ms[b]:.2f}" if b in e.latency_ms else "-" for b in lat]
        if has_acc:
            cells.append(f"{e.top1:.4f}" if e.top1 is not None else "-")
        cells_rows.append(cells)
    missing = [f"- {e.name}: {e.note}" for e in entries if e.note]
    sources = [f"- {e.name}: {e.top1_source}" for e in entries if e.top1 is not None and e.top1_source]
    text = (notes + "\n\n" if notes else "") + markdown_table(head, cells_rows) + "\n" + \
        ("\nTop-1 from:\n" + "\n".join(sources) + "\n" if sources else "") + \
        ("\nNo latency for:\n" + "\n".join(missing) + "\n" if missing else "")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path

