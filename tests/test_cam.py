"""Grad-CAM (ppnets.analysis.cam, tools/cam.py): a model trained on images whose class evidence sits
in one known region must put its heatmap there.

The synthetic task: 128×128 grey noise; one quadrant, drawn at random and recorded, holds horizontal
(class 0) or vertical (class 1) stripes; another holds a checkerboard of the same contrast that
carries no label. An untrained network's Grad-CAM favours neither pattern (both have the same edges);
after training it must favour the quadrant with the evidence (numbers in the test below).
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import paddle
import pytest

import ppnets
from ppnets.analysis.cam import grad_cam, resolve_stage
from ppnets.errors import ConfigError

from helpers.runs import REPO
from helpers.cli import tool_main, user_error

SIZE, HALF = 128, 64
MODEL = "MobileNetV1_x0_25"


def _images(n: int, seed: int):
    """(uint8 N×128×128×3 RGB images, labels, evidence quadrant, distractor quadrant); quadrants 0–3 =
    top-left, top-right, bottom-left, bottom-right."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 2, n)
    imgs = rng.randint(118, 138, (n, SIZE, SIZE)).astype(np.uint8)
    yy, xx = np.mgrid[0:HALF, 0:HALF]
    stripes = {0: ((yy // 4) % 2), 1: ((xx // 4) % 2)}
    checker = ((yy // 4) + (xx // 4)) % 2
    where = np.array([rng.permutation(4)[:2] for _ in range(n)])
    for i, (y, (e, d)) in enumerate(zip(labels, where)):
        for q, pattern in ((e, stripes[int(y)]), (d, checker)):
            imgs[i, q // 2 * HALF:(q // 2 + 1) * HALF, q % 2 * HALF:(q % 2 + 1) * HALF] = pattern * 255
    return np.repeat(imgs[..., None], 3, axis=3), labels, where[:, 0], where[:, 1]


def _normalize(imgs: np.ndarray) -> paddle.Tensor:
    """configs/mobilenetv2.yaml's NormalizeImage (mean = std = 0.5) + ToCHWImage."""
    return paddle.to_tensor(((imgs.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2))


@pytest.fixture(scope="module")
def trained():
    """MobileNetV1 x0.25 trained for 80 Adam steps of 16 images (about 3 s) on the task above."""
    paddle.seed(0)
    model = ppnets.build_model(MODEL, class_num=2)
    imgs, labels, _, _ = _images(1280, 0)
    steps = 80
    lr = paddle.optimizer.lr.CosineAnnealingDecay(1e-2, steps)
    opt = paddle.optimizer.Adam(learning_rate=lr, parameters=model.parameters())
    model.train()
    for step in range(steps):
        idx = np.arange(step * 16, step * 16 + 16)
        loss = paddle.nn.functional.cross_entropy(model(_normalize(imgs[idx])), paddle.to_tensor(labels[idx]))
        loss.backward()
        opt.step()
        opt.clear_grad()
        lr.step()
    model.eval()
    return model


def _quadrant_shares(cams: np.ndarray) -> np.ndarray:
    """(N, 4) share of each heatmap (upsampled to the image) in quadrants TL, TR, BL, BR."""
    up = np.stack([cv2.resize(c, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for c in cams])
    mass = np.stack([up[:, y:y + HALF, x:x + HALF].sum(axis=(1, 2)) for y in (0, HALF) for x in (0, HALF)], axis=1)
    return mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-12)


@pytest.mark.parametrize("stage", [None, 3])
def test_cam_peaks_where_the_class_evidence_is(trained, stage):
    imgs, labels, evidence, distractor = _images(48, 1)
    res = grad_cam(trained, _normalize(imgs), stage)
    assert res.stage == (len(trained.feature_info) - 1 if stage is None else stage)
    side = SIZE // trained.feature_info[res.stage]["reduction"]
    assert res.cams.shape == (48, side, side) and 0 <= res.cams.min() and res.cams.max() == 1
    assert np.mean(np.array(res.class_ids) == labels) >= 0.95           # the model has learnt the task
    shares = _quadrant_shares(res.cams)
    rows = np.arange(48)
    on_evidence, on_distractor = shares[rows, evidence], shares[rows, distractor]
    empty = (1 - on_evidence - on_distractor) / 2
    # measured over training seeds 0–3: evidence 0.39–0.62, distractor 0.13–0.23, empty 0.13–0.20;
    # untrained (seeds 0–3): evidence 0.20–0.37, distractor 0.18–0.36 — never 1.5× the others
    assert on_evidence.mean() >= 0.35
    assert on_evidence.mean() >= 1.5 * max(on_distractor.mean(), empty.mean())


def test_cam_of_the_other_class_and_stage_names(trained):
    x = _normalize(_images(4, 2)[0])
    a = grad_cam(trained, x, "stage4", class_id=1)
    b = grad_cam(trained, x, trained.feature_info[3]["module"], class_id=1)
    assert a.class_ids == [1] * 4 and a.stage == b.stage == resolve_stage(trained, -2) == 3
    np.testing.assert_allclose(a.cams, b.cams, rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match=r"--stage: unknown stage 'stage9'; valid: 0 … 4, stage1 … stage5"):
        resolve_stage(trained, "stage9")
    with pytest.raises(ConfigError, match=r"--class: expected a class id in 0 … 1, got 2"):
        grad_cam(trained, x, None, class_id=2)


def test_cam_tool_writes_overlays(trained, tmp_path, capsys):
    imgs, labels, _, _ = _images(3, 3)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(imgs):
        cv2.imwrite(str(folder / f"{i}_{labels[i]}.png"), img[..., ::-1])
    weights = str(tmp_path / "cam_model.pdparams")
    paddle.save(trained.state_dict(), weights)
    out = str(tmp_path / "cam")
    args = ["-c", os.path.join(REPO, "configs", "mobilenetv2.yaml"), "-o", f"Global.pretrained_model={weights}",
            "-o", f"Arch.name={MODEL}", "-o", "Arch.class_num=2",
            "-o", f"DataLoader.Eval.dataset.transform_ops.1={{ResizeImage: {{size: {SIZE}}}}}",
            "--image", str(folder), "--output", out, "--scale", "2"]
    tool_main("cam")(args)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all("stage 4 [blocks.12]" in line for line in lines)
    for i, line in enumerate(lines):
        assert f"class {labels[i]} " in line  # predicted as labelled
        written = cv2.imread(os.path.join(out, f"{i}_{labels[i]}_blocks_12_cam.png"))
        assert written is not None and written.shape == (2 * SIZE, 2 * SIZE, 3)
        assert not np.array_equal(written[..., 0], written[..., 2])  # colour heatmap over a grey image
    err = user_error("cam", args[:-4] + ["--stage", "nope"], capsys)
    assert err.startswith("--stage: unknown stage 'nope'")
