"""Metric values on known inputs (hand-computed), cross-checked against scikit-learn where it has them."""
from __future__ import annotations

import numpy as np
import pytest

from ppnets.errors import ConfigError
from ppnets.metric import (AccuracyScore, BalancedAccuracy, DistillationTopkAcc, HammingDistance, MultiLabelF1,
                           MultiLabelMAP, TopkAcc)


def logit(p):
    p = np.asarray(p, np.float64)
    return np.log(p / (1 - p)).astype(np.float32)


def test_topk_and_distillation_topk():
    logits = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]], np.float32)
    labels = np.array([1, 1, 0, 2])
    assert TopkAcc([1, 2])(logits, labels) == {"top1": 0.25, "top2": 0.5}
    student = {"Student": logits, "Teacher": np.eye(3, dtype=np.float32)[[2, 2, 2, 2]]}
    assert DistillationTopkAcc("Student", topk=[1, 2])(student, labels) == {"top1": 0.25, "top2": 0.5}
    assert DistillationTopkAcc("Teacher", topk=[1])(student, labels) == {"top1": 0.25}  # always 2: one of 4
    # evaluation hands over the evaluated model's logits alone
    assert DistillationTopkAcc("Student", topk=[1])(logits, labels) == {"top1": 0.25}
    with pytest.raises(ConfigError, match="use DistillationTopkAcc with model_key"):
        TopkAcc()(student, labels)


def test_balanced_accuracy_and_per_class_recall():
    from sklearn.metrics import balanced_accuracy_score
    # 8 images of class 0 (all right), 2 of class 1 (one right), 2 of class 2 (none right)
    labels = np.array([0] * 8 + [1, 1, 2, 2])
    preds = np.array([0] * 8 + [1, 0, 0, 1])
    logits = np.eye(3, dtype=np.float32)[preds]
    out = BalancedAccuracy(per_class=True)(logits, labels)
    assert out["balanced_acc"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert out["balanced_acc"] == pytest.approx(balanced_accuracy_score(labels, preds))
    assert out["min_recall"] == 0.0
    assert (out["recall_0"], out["recall_1"], out["recall_2"]) == (1.0, 0.5, 0.0)
    assert TopkAcc([1])(logits, labels)["top1"] == pytest.approx(9 / 12)  # plain accuracy hides class 2
    # a class without evaluation images is left out of the mean
    four = np.eye(4, dtype=np.float32)[preds]
    assert BalancedAccuracy()(four, labels)["balanced_acc"] == pytest.approx(0.5)
    assert "recall_3" not in BalancedAccuracy(per_class=True)(four, labels)


def test_multilabel_map():
    probs = np.array([[0.9, 0.2], [0.8, 0.6], [0.3, 0.7], [0.1, 0.1]])
    truth = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], np.float32)
    # class 0 ranked: pos, neg, pos, neg → AP = (1/1 + 2/3) / 2; class 1 ranked: neg, pos → AP = 1/2
    out = MultiLabelMAP()(logit(probs), truth)
    assert out["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    # 11-point: class 0's best precision is 1 up to recall 0.5 and 2/3 beyond; class 1's is 1/2 everywhere
    out = MultiLabelMAP("11point")(logit(probs), truth)
    assert out["mAP"] == pytest.approx(((6 * 1 + 5 * 2 / 3) / 11 + 0.5) / 2)
    # a class with no positive image is left out
    truth3 = np.concatenate([truth, np.zeros((4, 1), np.float32)], axis=1)
    probs3 = np.concatenate([probs, np.full((4, 1), 0.5)], axis=1)
    assert MultiLabelMAP()(logit(probs3), truth3)["mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)


def test_hamming_accuracy_and_f1():
    probs = np.array([[0.9, 0.2, 0.6], [0.4, 0.7, 0.1]])  # predicted [1, 0, 1], [0, 1, 0]
    truth = np.array([[1, 0, 0], [0, 1, 1]], np.float32)
    x = logit(probs)
    assert HammingDistance()(x, truth) == {"HammingDistance": pytest.approx(2 / 6)}
    assert AccuracyScore()(x, truth) == {"AccuracyScore": pytest.approx(4 / 6)}
    assert AccuracyScore(base="sample")(x, truth) == {"AccuracyScore_sample": 0.0}
    # micro: TP 2, FP 1, FN 1 → F1 = 2·2 / (2·2 + 1 + 1); macro: class F1s 1, 1, 0
    assert MultiLabelF1(average="micro")(x, truth)["F1"] == pytest.approx(4 / 6)
    assert MultiLabelF1(average="macro")(x, truth)["F1"] == pytest.approx(2 / 3)
    # the threshold moves the decisions: at 0.65 the 0.6 is no longer predicted
    assert HammingDistance(threshold=0.65)(x, truth)["HammingDistance"] == pytest.approx(1 / 6)
    with pytest.raises(ConfigError, match=r"expected multi-hot labels of shape \[2, 3\]"):
        HammingDistance()(x, np.array([0, 1]))
