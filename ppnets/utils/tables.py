"""The one CSV and Markdown table writer of ppnets's reports (benchmark, model zoo)."""
from __future__ import annotations

import csv
import os
from typing import Any, Dict, List, Sequence

__all__ = ["write_csv_rows", "markdown_table"]


def write_csv_rows(rows: Sequence[Dict[str, Any]], path: str, empty_header: Sequence[str] = ("name",)) -> str:
    """Write ``rows`` (dicts) to the CSV file ``path``; the columns are every key, in order of
    first appearance (a row without a key gets an empty cell). Returns ``path``."""
    fields: List[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields or list(empty_header))
        w.writeheader()
        w.writerows(rows)
    return path


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 2) -> str:
    """A Markdown table: the first ``left`` columns left-aligned (names), the others right (numbers)."""
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)
