"""``tools/eval.py``: metrics, per-class accuracy (recall) and confusion matrix of trained weights;
for multi-label models per-class average precision, precision, recall and F1."""
from __future__ import annotations

import csv
import os
from typing import Any, Dict

import numpy as np

from ..errors import ConfigError
from ..utils.files import atomic_open
from .engine import Engine


def run_evaluation(config: Dict[str, Any]) -> Dict[str, Any]:
    """Evaluate ``Global.pretrained_model`` on ``DataLoader.Eval``; print and save the report."""
    if not config["Global"].get("pretrained_model"):
        raise ConfigError("Global.pretrained_model: required for evaluation, "
                          "e.g. -o Global.pretrained_model=output/MobileNetV2/best_model")
    engine = Engine(config, mode="eval")
    metrics = engine.evaluate()
    report = engine.evaluation_report()
    if engine.multilabel:
        _multilabel_report(engine, report)
        return {"metrics": metrics, **report}
    names, cm, per_class = report["class_names"], report["confusion_matrix"], report["per_class_accuracy"]
    width = max(len(n) for n in names)
    lines = ["per-class accuracy (recall):"]
    lines += [f"  {n:>{width}}: {acc:.4f} ({cm[i, i]}/{cm[i].sum()})" for i, (n, acc) in enumerate(zip(names, per_class))]
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    cell = max(len(str(cm.max())), 3)
    lines.append(" " * (width + 2) + " ".join(f"{n[:cell]:>{cell}}" for n in names))
    lines += [f"  {n:>{width}} " + " ".join(f"{v:>{cell}}" for v in row) for n, row in zip(names, cm)]
    print("\n".join(lines))
    if engine.is_main:
        with atomic_open(os.path.join(engine.output_dir, "confusion_matrix.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["true\\pred"] + names)
            w.writerows([[n] + row.tolist() for n, row in zip(names, cm)])
        with atomic_open(os.path.join(engine.output_dir, "per_class_accuracy.csv"), "w", newline="",
                         encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["class", "accuracy", "correct", "total"])
            w.writerows([[n, f"{a:.6f}", int(cm[i, i]), int(cm[i].sum())]
                         for i, (n, a) in enumerate(zip(names, np.nan_to_num(per_class)))])
        engine.log.info(f"saved confusion_matrix.csv and per_class_accuracy.csv to {engine.output_dir}")
    return {"metrics": metrics, **report}


def _multilabel_report(engine: Engine, report: Dict[str, Any]) -> None:
    """Print the per-class table of a multi-label evaluation and save it as ``per_class_metrics.csv``."""
    names, rows = report["class_names"], report["per_class"]
    columns = ("ap", "precision", "recall", "f1")
    width = max(len(n) for n in names + ["class"])
    threshold = engine.config["Infer"]["threshold"]
    lines = [f"per-class metrics (precision / recall / F1 at threshold {threshold}):",
             f"  {'class':>{width}}  " + "  ".join(f"{c:>9}" for c in columns) + "  positives"]
    lines += [f"  {n:>{width}}  " + "  ".join(f"{rows[c][i]:>9.4f}" for c in columns) + f"  {int(rows['support'][i]):>9}"
              for i, n in enumerate(names)]
    print("\n".join(lines))
    if engine.is_main:
        with atomic_open(os.path.join(engine.output_dir, "per_class_metrics.csv"), "w", newline="",
                         encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["class", *columns, "positives"])
            w.writerows([[n, *(f"{rows[c][i]:.6f}" for c in columns), int(rows["support"][i])]
                         for i, n in enumerate(names)])
        engine.log.info(f"saved per_class_metrics.csv to {engine.output_dir}")
