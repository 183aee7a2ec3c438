"""Regenerate ``dataset/digits`` from the UCI handwritten digits that scikit-learn ships.

    pip install scikit-learn   # a ppnets dependency (multi-label metrics)
    python dataset/digits/make_digits.py

1,797 grayscale 8×8 images (pixel values 0–16), 10 classes. Each is scaled to 0–255,
upsampled to 32×32 (bicubic) and written as PNG to ``train/<digit>/`` or ``val/<digit>/``
with a deterministic stratified 80/20 split (seed 0). PaddleClas-style file lists
``train_list.txt`` / ``val_list.txt`` (``relative/path label``) and ``label_list.txt`` are
written too. Running it again reproduces the same files byte for byte.
"""
import os
import shutil

import cv2
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
SIZE = 32


def main() -> None:
    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).round().astype(np.uint8)
    labels = digits.target
    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(idx, test_size=0.2, stratify=labels, random_state=0)
    names = [str(d) for d in range(10)]
    for split, ids in (("train", np.sort(train_idx)), ("val", np.sort(val_idx))):
        shutil.rmtree(os.path.join(HERE, split), ignore_errors=True)
        lines = []
        for i in ids:
            img = cv2.resize(images[i], (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
            rel = f"{split}/{labels[i]}/{i:04d}.png"
            os.makedirs(os.path.join(HERE, split, str(labels[i])), exist_ok=True)
            cv2.imwrite(os.path.join(HERE, rel), img, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            lines.append(f"{rel} {labels[i]}")
        with open(os.path.join(HERE, f"{split}_list.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
        print(f"{split}: {len(ids)} images")
    with open(os.path.join(HERE, "label_list.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


if __name__ == "__main__":
    main()
