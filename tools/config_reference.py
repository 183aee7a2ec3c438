"""Print the config reference (every key, every component option), or refresh it in a Markdown file.

``python tools/config_reference.py [--update docs/configuration.md]``

The tables are generated from :data:`ppnets.config.SCHEMA` and the registries' signatures, so
they always describe the code as it is.
"""
import argparse
import inspect
from typing import Any, List

import yaml

from ppnets.arch.distillation import DistillationModel
from ppnets.arch.registry import MODELS
from ppnets.config import REQUIRED, SCHEMA, Key, LabeledList, Named, NamedList, Section, type_name
from ppnets.data import BATCH_TRANSFORMS, DATASETS, TRANSFORMS
from ppnets.loss import LOSSES
from ppnets.metric import METRICS
from ppnets.optimizer import LR_SCHEDULES, OPTIMIZERS

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"

#: where each registry's components are named in a config
COMPONENTS = [(TRANSFORMS, "transform_ops"), (BATCH_TRANSFORMS, "batch_transform_ops"), (DATASETS, "dataset.name"),
              (LOSSES, "Loss"), (METRICS, "Metric"), (OPTIMIZERS, "Optimizer.name"), (LR_SCHEDULES, "Optimizer.lr.name")]


def _type_text(spec: Key) -> str:
    if isinstance(spec.type, LabeledList):
        text = "list of {Label: {…}}"
    elif isinstance(spec.type, NamedList):
        text = "list of {Name: {…}}"
    elif isinstance(spec.type, Named):
        text = "{name: …, …}"
    else:
        text = type_name(spec.type)
    if spec.length is not None:
        text = text.replace("list of ", f"list of {spec.length} ")
    if spec.minimum is not None:
        text += f" ≥ {spec.minimum}"
    if spec.maximum is not None:
        text += f" ≤ {spec.maximum}"
    if spec.greater_than is not None:
        text += f" > {spec.greater_than}"
    if spec.less_than is not None:
        text += f" < {spec.less_than}"
    return text


def _default_text(spec: Key) -> str:
    if spec.default is REQUIRED:
        return "required"
    return yaml.safe_dump(spec.default, default_flow_style=True).strip().removesuffix("...").strip()


def config_reference() -> str:
    """A Markdown table of every fixed key of :data:`SCHEMA`."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]

    def walk(section: Section, prefix: str) -> None:
        for key, spec in section.keys.items():
            if isinstance(spec, Section):
                walk(spec, f"{prefix}.{key}")
            else:
                rows.append(f"| `{prefix}.{key}` | {_type_text(spec)} | `{_default_text(spec)}` | {spec.doc} |")
                if isinstance(spec.type, LabeledList):
                    walk(spec.type.section, f"{prefix}.{key}.<i>.<Label>")
        if section.options_of is not None:
            rows.append(f"| `{prefix}.*` | | | other keys: the {section.options_of.kind}'s keyword arguments |")
        for name, variant in section.variants.items():
            rows.append(f"| `{prefix}` with `name: {name}` | | | the keys below instead |")
            walk(variant, prefix)

    for name, section in SCHEMA.items():
        walk(section, name)
    return "\n".join(rows)


def _option(p: inspect.Parameter) -> str:
    if p.default is inspect.Parameter.empty:
        return p.name
    text = repr(p.default)
    return f"{p.name}=…" if len(text) > 40 else f"{p.name}={text}"


def _options(fn: Any) -> List[str]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    return [_option(p) for p in inspect.signature(target).parameters.values()
            if p.name not in ("self", "seed") and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _summary(fn: Any) -> str:
    return (inspect.getdoc(fn) or "").split("\n")[0].replace("|", "\\|")


def component_reference() -> str:
    """A Markdown table of every named component (ops, datasets, losses …) with its options and defaults."""
    rows = ["| section | name | options (default) | description |", "|---|---|---|---|"]
    for registry, label in COMPONENTS:
        for name in registry.names():
            fn = registry.get(name)
            rows.append(f"| {label} | `{name}` | {', '.join(f'`{o}`' for o in _options(fn)) or '-'} | "
                        f"{_summary(fn)} |")
    seen = set()
    for name in MODELS.names():
        cls = MODELS.get(name).cls
        if cls not in seen:
            seen.add(cls)
            rows.append(f"| Arch | `{cls.__name__}` family | {', '.join(f'`{o}`' for o in _options(cls))} | "
                        f"{_summary(cls)} |")
    rows.append(f"| Arch | `DistillationModel` | {', '.join(f'`{o}`' for o in _options(DistillationModel))} | "
                f"{_summary(DistillationModel)} |")
    return "\n".join(rows)


def render() -> str:
    return (f"{START}\n### Keys\n\n{config_reference()}\n\n### Components and their options\n\n"
            f"{component_reference()}\n{END}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--update", metavar="MARKDOWN", help="replace the marked section of this file")
    args = p.parse_args(argv)
    text = render()
    if not args.update:
        print(text)
        return
    with open(args.update, encoding="utf-8") as f:
        doc = f.read()
    if START not in doc or END not in doc:
        raise SystemExit(f"{args.update}: markers {START} / {END} not found")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(args.update, "w", encoding="utf-8") as f:
        f.write(head + text + tail)


if __name__ == "__main__":
    main()
