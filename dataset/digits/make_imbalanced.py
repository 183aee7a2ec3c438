"""Make an imbalanced training list from the digits: a few classes keep only a fraction of their images.

    python dataset/digits/make_imbalanced.py --out dataset/digits_imbalanced [--classes 3 5 8 --fraction 0.1]

Writes ``<out>/train_list.txt`` in PaddleClas's file-list format (``relative/path label``, paths
relative to ``dataset/digits``) with every training image of the other classes and a seeded
random ``fraction`` of the images of ``classes`` (at least one each). The validation list
(``dataset/digits/val_list.txt``) stays balanced, so per-class recall shows what the rare classes lost.
"""
import argparse
import os
from typing import Sequence

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def make_imbalanced(out: str, classes: Sequence[int] = (3, 5, 8), fraction: float = 0.1, seed: int = 0,
                    src_list: str = os.path.join(HERE, "train_list.txt")) -> str:
    """Write ``<out>/train_list.txt``; returns its path."""
    rng = np.random.default_rng(seed)
    lines = [line.split() for line in open(src_list).read().splitlines() if line.strip()]
    kept = []
    for label in sorted({int(lbl) for _, lbl in lines}):
        members = [(path, lbl) for path, lbl in lines if int(lbl) == label]
        if label in classes:
            n = max(1, int(round(fraction * len(members))))
            members = [members[i] for i in sorted(rng.choice(len(members), size=n, replace=False))]
        kept += members
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "train_list.txt")
    with open(path, "w") as f:
        f.write("\n".join(f"{p} {lbl}" for p, lbl in kept) + "\n")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "digits_imbalanced"))
    p.add_argument("--classes", type=int, nargs="+", default=[3, 5, 8])
    p.add_argument("--fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(make_imbalanced(args.out, args.classes, args.fraction, args.seed))


if __name__ == "__main__":
    main()
