"""Benchmark rows (:class:`Result`) and their JSON, CSV and Markdown files."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

from ..utils.tables import markdown_table, write_csv_rows

__all__ = ["Result", "SECTIONS", "write_json", "write_csv", "markdown_tables", "write_markdown"]


@dataclass
class Result:
    """One measured row: a ``section``, a ``variant`` within it, the workload and its metrics."""

    section: str
    variant: str
    model: str
    input_size: int
    batch_size: int
    metrics: Dict[str, float] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)

    def flat(self) -> Dict[str, Any]:
        row = {"section": self.section, "variant": self.variant, "model": self.model,
               "input_size": self.input_size, "batch_size": self.batch_size}
        row.update({k: round(v, 4) if isinstance(v, float) else v for k, v in self.metrics.items()})
        row.update({f"setting.{k}": v for k, v in self.settings.items()})
        return row


#: section → (table title, [(metric, column header, format)]), in the order the tables are written.
SECTIONS: Dict[str, Tuple[str, List[Tuple[str, str, str]]]] = {
    "train": ("Training throughput (img/s; engine loop on in-memory batches, each variant in its own process, "
              "median of interleaved rounds)",
              [("img_s", "img/s", "{:.1f}"), ("step_s", "s/step", "{:.3f}"), ("ppnets_speedup", "ppnets ×", "{:.2f}")]),
    "eval": ("Dynamic-mode evaluation (img/s)", [("img_s", "img/s", "{:.1f}"), ("ppnets_speedup", "ppnets ×", "{:.2f}")]),
    "predictor": ("Exported model on paddle.inference (Predictor)",
                  [("img_s", "img/s", "{:.1f}"), ("latency_ms", "latency (ms/batch)", "{:.1f}")]),
    "reparam": ("Re-parameterized models on each runtime: the fused export against the unfused one, beside plain "
                "models (fp32, each export in its own process, median of interleaved rounds)",
                [("img_s", "img/s", "{:.1f}"), ("latency_ms", "latency (ms/batch)", "{:.2f}"),
                 ("fused_speedup", "fused ×", "{:.2f}"), ("params_m", "params (M)", "{:.2f}"),
                 ("macs_g", "GMACs", "{:.3f}")]),
    "pipeline": ("Data pipeline alone (decode + augment + collate, img/s)", [("img_s", "img/s", "{:.1f}")]),
    "reader": ("reader_cost of a real training run (engine log)",
               [("reader_cost_s", "reader_cost (s)", "{:.4f}"), ("batch_cost_s", "batch_cost (s)", "{:.3f}"),
                ("reader_cost_pct", "reader/batch (%)", "{:.2f}"), ("img_s", "img/s", "{:.1f}")]),
    "config": ("Whole config runs (training + evaluation), fast vs Paddle's conv kernels",
               [("wall_s", "wall (s)", "{:.1f}"), ("s_per_epoch", "s/epoch", "{:.1f}"),
                ("speedup_vs_before", "× before", "{:.2f}")]),
}


def write_json(results: Sequence[Result], info: Dict[str, Any], path: str) -> str:
    """``{"machine": info, "results": [...]}`` to ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"machine": info, "results": [asdict(r) for r in results]}, f, indent=2, default=str)
    return path


def write_csv(results: Sequence[Result], path: str) -> str:
    """One CSV row per result (metrics and ``setting.*`` columns)."""
    return write_csv_rows([r.flat() for r in results], path, empty_header=("section",))


def markdown_tables(results: Sequence[Result]) -> str:
    """One Markdown table per section, in the order of :data:`SECTIONS`."""
    parts = []
    for section, (title, cols) in SECTIONS.items():
        rows = [r for r in results if r.section == section]
        if not rows:
            continue
        head = ["variant", "model", "input", "batch"] + [c[1] for c in cols]
        cells = [[r.variant, r.model, f"{r.input_size}²" if r.input_size else "-", str(r.batch_size)]
                 + [fmt.format(r.metrics[k]) if k in r.metrics else "-" for k, _, fmt in cols] for r in rows]
        parts.append(f"**{title}**\n\n" + markdown_table(head, cells))
    return "\n\n".join(parts) + "\n"


def write_markdown(results: Sequence[Result], info: Dict[str, Any], path: str, command: str = "") -> str:
    """The tables with the machine and the command above them."""
    load = info.get("load_average")
    versions = ", ".join(f"{k} {v}" for k, v in (info.get("frameworks") or {}).items())
    head = [f"Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('memory_gb')} GB; Python "
            f"{info.get('python')}, Paddle {info.get('paddle')}, oneDNN (training) {info.get('onednn_training')}"
            f"{'; ' + versions if versions else ''}; load average at the end {load}; {info.get('date')}."]
    if "retain_freed_memory" in info:
        head.append(f"Threads: oneDNN training convolutions {info.get('onednn_threads')}, Paddle's kernels "
                    f"{info.get('paddle_threads')}; freed memory retained: {info['retain_freed_memory']} "
                    "(every variant alike).")
    if command:
        head.append(f"Command: `{command}`")
    if "peak_rss_mb" in info:
        head.append(f"Peak RSS of the benchmark process: {info['peak_rss_mb']:.0f} MiB.")
    text = "\n\n".join(head) + "\n\n" + markdown_tables(results)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
