"""Image transform ops, configured in YAML as PaddleClas does::

    transform_ops:
      - DecodeImage: {to_rgb: true, channel_first: false}
      - RandCropImage: {size: 32}
      - RandFlipImage: {flip_code: 1}
      - NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], order: ''}
      - ToCHWImage:

Each op is a small class registered in :data:`TRANSFORMS` with ``__call__(img, rng=None) -> img``;
adding an op is one class. Random ops draw only from ``rng``, the sample's
:class:`numpy.random.Generator` (derived from ``(Global.seed, epoch, sample index)``, see
:mod:`ppnets.data.rng`), which :class:`Compose` hands to every op.

Training augmentation, in pipeline order::

    - DecodeImage:
    - RandCropImage: {size: 224, scale: [0.08, 1.0], ratio: [0.75, 1.333]}   # RandomResizedCrop
    - RandFlipImage: {flip_code: 1}
    - AutoAugment: {policy: original}             # or RandAugment: {num_layers: 2, magnitude: 9}
    - ColorJitter: {brightness: 0.4, contrast: 0.4, saturation: 0.4}
    - NormalizeImage: {...}
    - RandomErasing: {prob: 0.25, mode: pixel}    # on the normalised image, HWC or CHW
    - ToCHWImage:

ColorJitter / AutoAugment / RandAugment need the RGB uint8 image (before NormalizeImage).
Models take CHW images: a list that ends on an HWC image (as PaddleClas's dataset lists do) is
completed with ``ToCHWImage`` wherever ppnets builds one (:func:`ensure_chw`: datasets, inference,
export), and a batch of another shape is a one-line error naming the list (:func:`check_model_input`).
Batch-level Mixup / CutMix live in :mod:`ppnets.data.batch_ops`.

Modules: :mod:`.base` (registry, Compose, option parsing), :mod:`.basic` (decode, resize, crops,
flip, normalise, CHW), :mod:`.functional` (image functions), :mod:`.autoaugment`
(AutoAugment, RandAugment), :mod:`.color` (ColorJitter), :mod:`.erasing` (RandomErasing).
"""
from .autoaugment import AutoAugment, RandAugment, TimmAutoAugment
from .base import TRANSFORMS, Compose, build_transforms, check_model_input, ensure_chw, output_layout
from .basic import CropImage, DecodeImage, NormalizeImage, RandCropImage, RandFlipImage, ResizeImage, ToCHWImage
from .color import ColorJitter
from .erasing import RandomErasing

__all__ = ["TRANSFORMS", "Compose", "build_transforms", "ensure_chw", "output_layout", "check_model_input", "DecodeImage", "ResizeImage", "CropImage", "RandCropImage",
           "RandFlipImage", "NormalizeImage", "ToCHWImage", "AutoAugment", "RandAugment", "TimmAutoAugment", "ColorJitter",
           "RandomErasing"]
