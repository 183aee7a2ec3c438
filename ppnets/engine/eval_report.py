"""``tools/eval.py``: metrics, per-class accuracy (recall) and confusion matrix of trained weights;
for multi-label models per-class average precision, precision, recall and F1."""
from __future__ import annotations

import csv
import os
from typing import Any, Dict

import numpy as np

from ..utils.files import atomic_open
from .evaluator import Evaluator

__all__ = ["run_evaluation"]


def run_evaluation(config: Dict[str, Any], reparameterize: bool = False) -> Dict[str, Any]:
    """Evaluate ``Global.pretrained_model`` on ``DataLoader.Eval`` (``reparameterize``: the fused
    model); print and save the report (per-class CSV files in the run's folder)."""
    evaluator = Evaluator(config, reparameterize_model=reparameterize)
    metrics = evaluator.evaluate()
    report = evaluator.report()
    if evaluator.multilabel:
        _multilabel_report(evaluator, report)
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
    if evaluator.env.is_main:
        with atomic_open(os.path.join(evaluator.output_dir, "confusion_matrix.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["true\\pred"] + names)
            w.writerows([[n] + row.tolist() for n, row in zip(names, cm)])
        with atomic_open(os.path.join(evaluator.output_dir, "per_class_accuracy.csv"), "w", newline="",
                         encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["class", "accuracy", "correct", "total"])
            w.writerows([[n, f"{a:.6f}", int(cm[i, i]), int(cm[i].sum())]
                         for i, (n, a) in enumerate(zip(names, np.nan_to_num(per_class)))])
        evaluator.log.info(f"saved confusion_matrix.csv and per_class_accuracy.csv to {evaluator.output_dir}")
    return {"metrics": metrics, **report}


def _multilabel_report(evaluator: Evaluator, report: Dict[str, Any]) -> None:
    """Print the per-class table of a multi-label evaluation and save it as ``per_class_metrics.csv``."""
    names, rows = report["class_names"], report["per_class"]
    columns = ("ap", "precision", "recall", "f1")
    width = max(len(n) for n in names + ["class"])
    threshold = evaluator.config["Infer"]["threshold"]
    lines = [f"per-class metrics (precision / recall / F1 at threshold {threshold}):",
             f"  {'class':>{width}}  " + "  ".join(f"{c:>9}" for c in columns) + "  positives"]
    lines += [f"  {n:>{width}}  " + "  ".join(f"{rows[c][i]:>9.4f}" for c in columns) + f"  {int(rows['support'][i]):>9}"
              for i, n in enumerate(names)]
    print("\n".join(lines))
    if evaluator.env.is_main:
        with atomic_open(os.path.join(evaluator.output_dir, "per_class_metrics.csv"), "w", newline="",
                         encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["class", *columns, "positives"])
            w.writerows([[n, *(f"{rows[c][i]:.6f}" for c in columns), int(rows["support"][i])]
                         for i, n in enumerate(names)])
        evaluator.log.info(f"saved per_class_metrics.csv to {evaluator.output_dir}")
