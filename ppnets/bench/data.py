"""Benchmark inputs: generated JPEG folders, random batches and the engine config of a run."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import paddle

from ..config import load_config

__all__ = ["DEFAULT_CONFIG", "make_jpeg_folder", "random_batches", "tensor_batches", "engine_config"]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CONFIG = os.path.join(REPO, "configs", "mobilenetv2.yaml")


def make_jpeg_folder(root: str, n_images: int = 320, size: int = 256, classes: int = 10, seed: int = 0,
                     quality: int = 90) -> str:
    """Write ``n_images`` JPEGs of ``size``×``size`` into ``root/<class>/`` and return ``root``.

    The images are smooth random colour fields with fine grain (upsampled noise plus
    pixel noise), so that they compress and decode like photographs rather than like flat
    or white-noise images; each class has its own tint.
    """
    import cv2

    rng = np.random.default_rng(seed)
    for i in range(n_images):
        c = i % classes
        d = os.path.join(root, f"class_{c:02d}")
        os.makedirs(d, exist_ok=True)
        base = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
        img = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0.0, 10.0, img.shape).astype(np.float32)
        img[..., c % 3] += 30.0
        ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("cv2.imencode failed")
        buf.tofile(os.path.join(d, f"{i:05d}.jpg"))
    return root


def random_batches(n_batches: int, batch: int, size: int, class_num: int, seed: int = 0
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """``n_batches × batch`` standard-normal images (N, 3, size, size) and int64 labels (N, 1):
    the same arrays in every process for the same arguments."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_batches * batch, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, class_num, (n_batches * batch, 1)).astype(np.int64)
    return images, labels


def tensor_batches(images: np.ndarray, labels: np.ndarray, batch: int) -> List[Tuple[paddle.Tensor, paddle.Tensor]]:
    """The arrays as a list of ``(images, labels)`` Paddle tensors of ``batch`` samples."""
    return [(paddle.to_tensor(images[i:i + batch]), paddle.to_tensor(labels[i:i + batch]))
            for i in range(0, len(images), batch)]


def _train_ops(size: int) -> str:
    return ("[{DecodeImage: {to_rgb: true, channel_first: false}}, {RandCropImage: {size: %d}}, "
            "{RandFlipImage: {flip_code: 1}}, {NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], "
            "std: [0.229, 0.224, 0.225], order: ''}}, {ToCHWImage: null}]" % size)


def _eval_ops(size: int) -> str:
    return ("[{DecodeImage: {to_rgb: true, channel_first: false}}, {ResizeImage: {size: %d}}, "
            "{NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], "
            "order: ''}}, {ToCHWImage: null}]" % size)


def engine_config(data_root: str, out_dir: str, model: str, size: int, batch: int, class_num: int,
                  workers: int = 0, extra: Optional[Dict[str, Any]] = None,
                  config_path: str = DEFAULT_CONFIG) -> Dict[str, Any]:
    """``config_path`` (configs/mobilenetv2.yaml) turned into a run of ``model`` at ``size`` on
    the ImageFolder ``data_root``; ``extra`` holds more ``-o`` items."""
    items: Dict[str, Any] = {
        "Global.output_dir": out_dir, "Global.use_visualdl": False, "Global.eval_during_train": False,
        "Global.save_interval": 0, "Global.print_batch_step": 1000000, "Global.image_shape": f"[3, {size}, {size}]",
        "Global.epochs": 1, "Arch.name": model, "Arch.class_num": class_num,
        "DataLoader.Train.dataset.root": data_root, "DataLoader.Eval.dataset.root": data_root,
        "DataLoader.Train.dataset.transform_ops": _train_ops(size),
        "DataLoader.Eval.dataset.transform_ops": _eval_ops(size),
        "DataLoader.Train.sampler.batch_size": batch, "DataLoader.Train.loader.num_workers": workers,
        "DataLoader.Eval.sampler.batch_size": batch,
    }
    items.update(extra or {})
    return load_config(config_path, [f"{k}={v}" for k, v in items.items()])
