"""Make a multi-label set from the digits: two different digits side by side in each image.

    python dataset/digits/make_multilabel.py --out dataset/digits_pairs [--train 2000 --val 500]

Each image is two 32×32 digits of different classes placed left and right (32×64 pixels), so
it carries two labels. Training images are built from ``train/`` digits, validation images from
``val/`` digits only. Written as PaddleClas's ``MultiLabelDataset`` list: ``train_list.txt`` /
``val_list.txt`` with ``relative/path<TAB>f_0,…,f_9`` (a 0/1 flag per digit), plus
``label_list.txt``. The same arguments give the same files.
"""
import argparse
import os
from typing import List

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def make_pairs(out: str, n_train: int = 2000, n_val: int = 500, seed: int = 0, src: str = HERE) -> List[str]:
    """Write the set to ``out``; returns the list files written."""
    rng = np.random.default_rng(seed)
    names = [str(d) for d in range(10)]
    written = []
    for split, n in (("train", n_train), ("val", n_val)):
        pools = {c: sorted(os.listdir(os.path.join(src, split, c))) for c in names}
        os.makedirs(os.path.join(out, split), exist_ok=True)
        lines = []
        for k in range(n):
            classes = rng.choice(10, size=2, replace=False)  # left digit, right digit
            tiles = [cv2.imread(os.path.join(src, split, str(c), pools[str(c)][rng.integers(len(pools[str(c)]))]),
                                cv2.IMREAD_GRAYSCALE) for c in classes]
            rel = f"{split}/{k:05d}.png"
            cv2.imwrite(os.path.join(out, rel), np.concatenate(tiles, axis=1), [cv2.IMWRITE_PNG_COMPRESSION, 9])
            flags = ["1" if i in classes else "0" for i in range(10)]
            lines.append(f"{rel}\t{','.join(flags)}")
        path = os.path.join(out, f"{split}_list.txt")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        written.append(path)
    with open(os.path.join(out, "label_list.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "digits_pairs"))
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--val", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    for path in make_pairs(args.out, args.train, args.val, args.seed):
        print(path)


if __name__ == "__main__":
    main()
