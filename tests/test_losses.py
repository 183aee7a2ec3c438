"""Loss values against hand-computed ones (closed forms on tiny inputs)."""
from __future__ import annotations

import math

import numpy as np
import paddle
import pytest

from ppnets.errors import ConfigError
from ppnets.loss import (CELoss, DistillationCELoss, DistillationDKDLoss, DistillationDMLLoss, DistillationGTCELoss,
                         DistillationKLDivLoss, FocalLoss, MultiLabelAsymmetricLoss, MultiLabelLoss,
                         balanced_class_weights, build_loss)

LN2, LN3 = math.log(2.0), math.log(3.0)


def t(x, dtype="float32"):
    return paddle.to_tensor(np.asarray(x, dtype=dtype))


def kl(q, p):
    return sum(a * math.log(a / b) for a, b in zip(q, p) if a > 0)


def test_ce_plain_smoothing_and_soft_targets():
    zeros = t([[0.0, 0.0], [0.0, 0.0]])
    labels = t([0, 1], "int64")
    assert float(CELoss()(zeros, labels)) == pytest.approx(LN2, rel=1e-6)
    # logits [ln 3, 0]: p = [3/4, 1/4]; smoothing 0.2 → target [0.9, 0.1]
    logits = t([[LN3, 0.0]])
    expected = -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))
    assert float(CELoss(epsilon=0.2)(logits, t([0], "int64"))) == pytest.approx(expected, rel=1e-6)
    # a soft target (Mixup) is used as given, not passed through another softmax
    expected = -(0.3 * math.log(0.75) + 0.7 * math.log(0.25))
    assert float(CELoss()(logits, t([[0.3, 0.7]]))) == pytest.approx(expected, rel=1e-6)


def test_ce_class_weight_list_and_auto():
    zeros, labels = t([[0.0, 0.0], [0.0, 0.0]]), t([0, 1], "int64")
    # each sample's loss is ln 2; weights 3 and 1; mean over the 2 samples: (3 + 1) ln 2 / 2
    assert float(CELoss(class_weight=[3.0, 1.0])(zeros, labels)) == pytest.approx(2 * LN2, rel=1e-6)
    np.testing.assert_allclose(balanced_class_weights([30, 10, 0]), [40 / 90, 40 / 30, 0.0], rtol=1e-6)
    loss = CELoss(class_weight="auto")
    with pytest.raises(ConfigError, match=r"class_weight: auto needs the class counts"):
        loss(zeros, labels)
    loss.bind_class_counts([30, 10])  # weights 40/60 and 40/20
    assert float(loss(zeros, labels)) == pytest.approx((2 / 3 + 2.0) * LN2 / 2, rel=1e-6)
    with pytest.raises(ConfigError, match=r"CELoss.class_weight: 3 weights for 2 classes"):
        CELoss(class_weight=[1, 2, 3])(zeros, labels)
    with pytest.raises(ConfigError, match=r"non-negative"):
        CELoss(class_weight=[1, -2])


def test_auto_weights_equalise_the_classes_share_of_the_loss():
    """With auto weights every class contributes the same total weight over the training set."""
    counts = np.array([90, 10])
    w = balanced_class_weights(counts)
    np.testing.assert_allclose(w * counts, [50, 50], rtol=1e-6)
    assert (w * counts).sum() == pytest.approx(counts.sum())  # the mean weight per sample is 1


def test_focal_loss():
    logits, label = t([[LN3, 0.0]]), t([0], "int64")
    # p = 3/4: (1 - 3/4)^2 · -ln(3/4)
    assert float(FocalLoss(gamma=2.0)(logits, label)) == pytest.approx(0.0625 * -math.log(0.75), rel=1e-6)
    assert float(FocalLoss(gamma=0.0)(logits, label)) == pytest.approx(float(CELoss()(logits, label)), rel=1e-6)
    # a well-classified sample loses more of its weight than a badly classified one
    bad = t([[0.0, LN3]])
    ratio_good = float(FocalLoss(gamma=2.0)(logits, label)) / float(CELoss()(logits, label))
    ratio_bad = float(FocalLoss(gamma=2.0)(bad, label)) / float(CELoss()(bad, label))
    assert ratio_good == pytest.approx(1 / 16) and ratio_bad == pytest.approx(9 / 16)
    assert float(FocalLoss(gamma=2.0, class_weight=[2.0, 1.0])(logits, label)) == pytest.approx(
        2 * 0.0625 * -math.log(0.75), rel=1e-6)
    with pytest.raises(ConfigError, match="gamma"):
        FocalLoss(gamma=-1)


def test_multilabel_bce_and_asymmetric():
    zeros = t([[0.0, 0.0, 0.0]])
    y = t([[1.0, 0.0, 1.0]])
    assert float(MultiLabelLoss()(zeros, y)) == pytest.approx(LN2, rel=1e-6)
    assert float(MultiLabelLoss(size_sum=True)(zeros, y)) == pytest.approx(3 * LN2, rel=1e-6)
    # positives: -(1 - 1/2)^1 ln(1/2); negative: p_m = 0.5 - 0.05 = 0.45, -(0.45)^4 ln(0.55)
    pos, neg = 0.5 * LN2, -(0.45 ** 4) * math.log(0.55)
    asl = MultiLabelAsymmetricLoss(gamma_pos=1, gamma_neg=4, clip=0.05)
    assert float(asl(zeros, y)) == pytest.approx(2 * pos + neg, rel=1e-5)
    assert float(MultiLabelAsymmetricLoss(reduction="mean")(zeros, y)) == pytest.approx((2 * pos + neg) / 3, rel=1e-5)
    # no focusing and no clip: the summed BCE
    logits = t([[1.5, -0.5, 0.2]])
    plain = MultiLabelAsymmetricLoss(gamma_pos=0, gamma_neg=0, clip=0)
    assert float(plain(logits, y)) == pytest.approx(3 * float(MultiLabelLoss()(logits, y)), rel=1e-5)
    with pytest.raises(ConfigError, match=r"expected multi-hot targets \(N, 3\)"):
        MultiLabelLoss()(zeros, t([1], "int64"))
    with pytest.raises(ConfigError, match="weight_ratio"):
        MultiLabelLoss(weight_ratio=True)


def test_asymmetric_focusing_is_constant_in_the_backward_pass():
    y = t([[1.0]])
    x = paddle.to_tensor(np.array([[0.4]], np.float32), stop_gradient=False)
    MultiLabelAsymmetricLoss(gamma_pos=2, clip=0)(x, y).backward()
    p = 1 / (1 + math.exp(-0.4))
    # d/dx [-(1-p)^2 · ln p] with (1-p)^2 held constant: -(1-p)^2 · (1 - p)
    assert x.grad.numpy().item() == pytest.approx(-(1 - p) ** 3, rel=1e-5)


def test_distillation_ce_and_gt_ce():
    out = {"Student": t([[0.0, 0.0]]), "Teacher": t([[LN3, 0.0]])}
    # the student's cross-entropy against the teacher's softmax [3/4, 1/4]
    loss = DistillationCELoss(model_name_pairs=[["Student", "Teacher"]])
    assert float(loss(out, t([1], "int64"))) == pytest.approx(LN2, rel=1e-6)
    loss = DistillationCELoss(model_name_pairs=[["Teacher", "Student"]])
    assert float(loss(out, t([1], "int64"))) == pytest.approx(-(0.5 * math.log(0.75) + 0.5 * math.log(0.25)))
    gt = DistillationGTCELoss(model_names=["Student", "Teacher"])
    assert float(gt(out, t([0], "int64"))) == pytest.approx(LN2 - math.log(0.75), rel=1e-6)
    with pytest.raises(ConfigError, match="model_name_pairs"):
        DistillationCELoss(model_name_pairs=["Student", "Teacher"])
    with pytest.raises(ConfigError, match=r"CELoss: the model outputs \{Student, Teacher\}"):
        CELoss()(out, t([0], "int64"))


def test_kl_divergence_with_temperature():
    out = {"Student": t([[0.0, 0.0]]), "Teacher": t([[LN3, 0.0]])}
    pairs = [["Student", "Teacher"]]
    assert float(DistillationKLDivLoss(pairs, temperature=1)(out, None)) == pytest.approx(
        kl([0.75, 0.25], [0.5, 0.5]), rel=1e-5)
    # T = 2: the teacher's distribution softens to softmax([ln 3 / 2, 0]) = [√3, 1] / (1 + √3); × T²
    q = [math.sqrt(3) / (1 + math.sqrt(3)), 1 / (1 + math.sqrt(3))]
    assert float(DistillationKLDivLoss(pairs, temperature=2)(out, None)) == pytest.approx(
        4 * kl(q, [0.5, 0.5]), rel=1e-5)


def test_dkd_separates_target_and_non_target_parts():
    pairs = [["Student", "Teacher"]]
    student = t([[0.0, 0.0, 0.0]])  # 1/3 each
    label = t([0], "int64")
    # teacher [2, 3, 1]/6: the same p(true class) = 1/3 as the student → TCKD = 0; the other
    # classes: teacher [3/4, 1/4] vs student [1/2, 1/2]
    out = {"Student": student, "Teacher": t([[math.log(2), LN3, 0.0]])}
    nckd = kl([0.75, 0.25], [0.5, 0.5])
    assert float(DistillationDKDLoss(pairs, alpha=1, beta=1)(out, label)) == pytest.approx(nckd, rel=1e-5)
    assert float(DistillationDKDLoss(pairs, alpha=5, beta=2)(out, label)) == pytest.approx(2 * nckd, rel=1e-5)
    # teacher [2, 1, 1]/4: p(true) 1/2 vs 1/3, the other classes equal → NCKD = 0
    out = {"Student": student, "Teacher": t([[math.log(2), 0.0, 0.0]])}
    tckd = kl([0.5, 0.5], [1 / 3, 2 / 3])
    assert float(DistillationDKDLoss(pairs, alpha=3, beta=7)(out, label)) == pytest.approx(3 * tckd, rel=1e-5)
    # with use_target_as_gt the teacher's top class (0 here) replaces the label
    assert float(DistillationDKDLoss(pairs, alpha=3, beta=7, use_target_as_gt=True)(out, t([2], "int64"))) == \
        pytest.approx(3 * tckd, rel=1e-5)


def test_dml_is_the_symmetric_kl_and_both_models_learn():
    pairs = [["Student", "Teacher"]]
    s = paddle.to_tensor(np.array([[0.0, 0.0]], np.float32), stop_gradient=False)
    te = paddle.to_tensor(np.array([[LN3, 0.0]], np.float32), stop_gradient=False)
    loss = DistillationDMLLoss(pairs)({"Student": s, "Teacher": te}, None)
    p, q = [0.5, 0.5], [0.75, 0.25]
    assert float(loss) == pytest.approx((kl(p, q) + kl(q, p)) / 2, rel=1e-5)
    loss.backward()
    assert s.grad is not None and te.grad is not None and float(paddle.abs(te.grad).sum()) > 0
    summed = DistillationDMLLoss(pairs, sum_across_class_dim=True)({"Student": s, "Teacher": te}, None)
    assert float(summed) == pytest.approx(2 * float(loss), rel=1e-6)


def test_distillation_targets_are_detached():
    s = paddle.to_tensor(np.array([[0.0, 0.0]], np.float32), stop_gradient=False)
    te = paddle.to_tensor(np.array([[LN3, 0.0]], np.float32), stop_gradient=False)
    for loss in (DistillationCELoss([["Student", "Teacher"]]), DistillationKLDivLoss([["Student", "Teacher"]])):
        s.clear_gradient(), te.clear_gradient()
        loss({"Student": s, "Teacher": te}, t([0], "int64")).backward()
        assert te.grad is None or float(paddle.abs(te.grad).sum()) == 0
        assert float(paddle.abs(s.grad).sum()) > 0


def test_combined_loss_weights_and_binds_counts():
    combined = build_loss([{"CELoss": {"class_weight": "auto", "weight": 0.5}}, {"FocalLoss": {"gamma": 0}}])
    combined.bind_class_counts([1, 3])  # weights 2 and 2/3
    zeros, labels = t([[0.0, 0.0], [0.0, 0.0]]), t([0, 1], "int64")
    out = combined(zeros, labels)
    assert float(out["CELoss"]) == pytest.approx(0.5 * (2 + 2 / 3) * LN2 / 2, rel=1e-6)
    assert float(out["loss"]) == pytest.approx(float(out["CELoss"]) + LN2, rel=1e-6)
