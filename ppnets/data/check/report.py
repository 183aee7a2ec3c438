"""The dataset checker's findings: every problem with its kind and severity, the counts per class
and split, a one-line summary, and the full report as JSON and Markdown."""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ...utils.files import atomic_write, shown_path

__all__ = ["KINDS", "Problem", "Report"]

#: kind → (severity, what it means). Errors make the check fail; warnings are worth a look.
KINDS = {
    "missing": ("error", "a configured or listed path that does not exist"),
    "malformed": ("error", "a file-list line training refuses (not 'path label', a path outside image_root)"),
    "no-images": ("error", "a split, class folder or file list without images"),
    "zero-byte": ("error", "an empty file"),
    "unreadable": ("error", "not an image that can be read or decoded"),
    "truncated": ("error", "the file ends before the image does"),
    "too-large": ("error", "more pixels than DecodeImage.max_pixels"),
    "label-range": ("error", "a label outside [0, class_num), or more classes than class_num"),
    "label-map": ("error", "a label map that does not match the class folders, the labels or class_num"),
    "class-mismatch": ("error", "splits with different class folders"),
    "conflicting-labels": ("error", "the same image (same bytes) under different labels in one split"),
    "leakage": ("error", "the same image (same bytes) in two splits, e.g. training and validation"),
    "cmyk": ("warning", "CMYK colours (converted to RGB when decoded)"),
    "16-bit": ("warning", "more than 8 bits per channel (scaled to 8 bits when decoded)"),
    "grayscale": ("warning", "one channel in an RGB dataset (replicated to RGB when decoded)"),
    "exif-rotated": ("warning", "an EXIF orientation: decoded rotated, as photo viewers show it"),
    "size-outlier": ("warning", "width or height far from the dataset's median"),
    "duplicate": ("warning", "the same image (same bytes) more than once in one split, same label"),
    "imbalance": ("warning", "the largest class has many times the images of the smallest"),
    "empty-class": ("warning", "a class without images in a split"),
    "class-num": ("warning", "Arch.class_num larger than the number of classes"),
    "not-in-class": ("warning", "images outside every class folder (ImageFolder ignores them)"),
}


@dataclass
class Problem:
    """One finding: ``path`` is a file, a folder or ``list.txt:LINE``; ``paths`` the files of a group
    (duplicates, leakage)."""

    kind: str
    message: str
    split: Optional[str] = None
    path: Optional[str] = None
    paths: List[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    def as_dict(self) -> Dict[str, Any]:
        out = {"severity": self.severity, **asdict(self)}
        return {k: v for k, v in out.items() if v not in (None, [])}


@dataclass
class Report:
    """Everything the checker found. ``splits`` maps a split to its source, image count, images per
    class and imbalance ratio (largest / smallest class)."""

    splits: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    settings: Dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, message: str, split: Optional[str] = None, path: Optional[str] = None,
            paths: Optional[List[str]] = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown problem kind {kind!r}")
        self.problems.append(Problem(kind, message, split, path, list(paths or [])))

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> List[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def kinds(self, severity: Optional[str] = None) -> Dict[str, int]:
        """Problems per kind (of one severity), in :data:`KINDS` order."""
        counts = Counter(p.kind for p in self.problems if severity in (None, p.severity))
        return {k: counts[k] for k in KINDS if counts[k]}

    def summary(self) -> str:
        """One line: images and splits checked, errors and warnings by kind."""
        images = sum(s["images"] for s in self.splits.values())
        parts = []
        for severity in ("error", "warning"):
            kinds = self.kinds(severity)
            n = sum(kinds.values())
            detail = f" ({', '.join(f'{c} {k}' for k, c in kinds.items())})" if kinds else ""
            parts.append(f"{n} {severity}{'' if n == 1 else 's'}{detail}")
        splits = ", ".join(f"{name} {s['images']:,}" for name, s in self.splits.items())
        return f"{' and '.join(parts)} in {images:,} images ({splits or 'no splits'})"

    def as_dict(self) -> Dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary(), "errors": len(self.errors),
                "warnings": len(self.warnings), "kinds": self.kinds(), "splits": self.splits,
                "notes": self.notes, "problems": [p.as_dict() for p in self.problems], "settings": self.settings}

    def to_json(self) -> str:
        text = json.dumps(self.as_dict(), indent=1, ensure_ascii=False, default=str)
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:  # a file name that is not UTF-8 (surrogate escapes): \u-escape it
            return json.dumps(self.as_dict(), indent=1, default=str)

    def to_markdown(self) -> str:
        lines = ["# Dataset check", "", f"**{'OK' if self.ok else 'FAILED'}**: {self.summary()}", ""]
        for name, s in self.splits.items():
            ratio = f"{s['imbalance_ratio']:.2f}" if s.get("imbalance_ratio") else "–"
            lines.append(f"- `{name}`: {s['kind']} {_code(s['source'])}, {s['images']:,} images, "
                         f"{len(s['classes'])} classes, imbalance ratio {ratio}")
        lines += [f"- {_md(note)}" for note in self.notes]
        lines += ["", "## Images per class", ""] + self._count_table()
        for severity in ("error", "warning"):
            for kind, n in self.kinds(severity).items():
                lines += ["", f"## {kind} ({severity}, {n}): {KINDS[kind][1]}", ""]
                for p in (p for p in self.problems if p.kind == kind):
                    where = f"[{p.split}] " if p.split else ""
                    lines.append(f"- {where}{_md(p.message)}")
                    lines += [f"  - {_code(x)}" for x in p.paths]
        if self.settings:
            lines += ["", "## Settings", ""] + [f"- {k}: {_code(v)}" for k, v in self.settings.items()]
        return "\n".join(lines) + "\n"

    def _count_table(self) -> List[str]:
        names = list(self.splits)
        classes: List[str] = []
        for s in self.splits.values():
            classes += [c for c in s["classes"] if c not in classes]
        if not classes:
            return ["(no images)"]
        rows = ["| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for c in classes:
            rows.append(f"| {_md(c)} | " + " | ".join(str(self.splits[n]["classes"].get(c, 0)) for n in names) + " |")
        return rows

    def write(self, stem: str) -> List[str]:
        """Write ``stem.json`` and ``stem.md`` (folders created); returns their paths."""
        folder = os.path.dirname(os.path.abspath(stem))
        os.makedirs(folder, exist_ok=True)
        atomic_write(stem + ".json", self.to_json() + "\n")
        atomic_write(stem + ".md", self.to_markdown())
        return [stem + ".json", stem + ".md"]


def _md(text: Any) -> str:
    return shown_path(str(text)).replace("|", "\\|")


def _code(text: Any) -> str:
    return f"`{shown_path(str(text))}`"
