"""The documentation describes the product as it is: its code runs and its links resolve."""
from __future__ import annotations

import os
import re

import pytest

from helpers.runs import REPO

DOCS = [os.path.join(REPO, "README.md")] + sorted(
    os.path.join(REPO, "docs", f) for f in os.listdir(os.path.join(REPO, "docs")) if f.endswith(".md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _anchors(markdown: str) -> set:
    """GitHub's anchors of a file's headings: lower case, punctuation dropped, spaces to dashes."""
    out = set()
    for line in markdown.splitlines():
        m = re.match(r"^#+\s+(.*)$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            out.add(text.replace(" ", "-"))
    return out


def test_readme_python_snippet_runs():
    readme = _read(os.path.join(REPO, "README.md"))
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1, "the README has one Python snippet"
    exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 - our own documentation, not user input


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_links_resolve(doc):
    text = _read(doc)
    broken = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(doc), path)) if path else doc
        if not os.path.exists(full):
            broken.append(target)
        elif anchor and full.endswith(".md") and anchor not in _anchors(_read(full)):
            broken.append(target)
    assert not broken, f"{os.path.relpath(doc, REPO)}: broken links {broken}"


def test_readme_is_a_front_door():
    readme = _read(os.path.join(REPO, "README.md"))
    assert len(readme.splitlines()) <= 300
    for doc in ("models", "training", "analysis", "deploy", "speed", "configuration", "reliability"):
        assert f"(docs/{doc}.md" in readme, doc


def test_every_test_that_docs_reliability_cites_exists():
    """docs/reliability.md names the test of each case (``RC::test_…``): every one must exist, so the
    table cannot point at a test that moved or was removed."""
    text = _read(os.path.join(REPO, "docs", "reliability.md"))
    files = dict(re.findall(r"`(\w+)::`\s+(?:stands\s+)?for\s+`(tests/test_\w+\.py)::`", text))
    assert len(files) >= 10
    cited = set(re.findall(r"`(\w+)::(test_\w+)", text))
    assert len(cited) > 50
    missing = []
    for prefix, name in sorted(cited):
        assert prefix in files, f"docs/reliability.md: unknown prefix {prefix}::"
        if not re.search(rf"^def {name}\(", _read(os.path.join(REPO, files[prefix])), re.M):
            missing.append(f"{prefix}::{name}")
    assert not missing, f"docs/reliability.md cites tests that do not exist: {missing}"
