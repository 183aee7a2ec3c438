"""Print the config reference (every key, every component option), or refresh it in README.md.

``python tools/config_reference.py [--update README.md]``
"""
import argparse

import _bootstrap  # noqa: F401

from ppnets.config import component_reference, config_reference

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def render() -> str:
    return (f"{START}\n### Keys\n\n{config_reference()}\n\n### Components and their options\n\n"
            f"{component_reference()}\n{END}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--update", metavar="README", help="replace the marked section of this file")
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
