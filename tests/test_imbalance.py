"""Class imbalance: the class-balanced sampler's frequencies, seeding, resumption and sharding
(also under a real 2-process paddle.distributed.launch), class_weight: auto in a run, config rules."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from ppnets.data import ClassBalancedSampler, ResumableBatchSampler, class_counts
from ppnets.data.balanced import class_probabilities
from ppnets.engine import Trainer
from ppnets.errors import ConfigError

from helpers.runs import DIGITS, REPO, load_small_config, small_overrides


class _Labels:
    """A stand-in dataset: only what the sampler reads."""

    def __init__(self, counts):
        self.samples = [(f"{c}/{i}.png", c) for c, n in enumerate(counts) for i in range(n)]
        self.class_names = [str(c) for c in range(len(counts))]

    def __len__(self):
        return len(self.samples)


COUNTS = [600, 300, 60, 40]  # 1000 images, the last two classes rare


def _class_freq(dataset, draws):
    labels = np.array([dataset.samples[i][1] for i in draws])
    return np.bincount(labels, minlength=len(dataset.class_names)) / len(labels)


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0])
def test_class_frequencies_follow_the_exponent(exponent):
    ds = _Labels(COUNTS)
    sampler = ClassBalancedSampler(ds, batch_size=50, exponent=exponent, num_samples=40000, num_replicas=1, rank=0)
    sampler.set_epoch(7)
    draws = [i for batch in sampler for i in batch]
    assert len(draws) == 40000 and len(sampler) == 800
    expected = np.power(COUNTS, exponent) / np.power(COUNTS, exponent).sum()
    np.testing.assert_allclose(class_probabilities(COUNTS, exponent), expected)
    np.testing.assert_allclose(_class_freq(ds, draws), expected, atol=0.01)
    # within a class every image is equally likely: the rare class's 40 images ~ uniformly
    rare = np.bincount([i - 960 for i in draws if i >= 960], minlength=40)
    assert rare.min() > 0 and rare.std() / rare.mean() < 0.25


def test_balanced_is_the_default_and_epochs_differ():
    ds = _Labels(COUNTS)
    sampler = ClassBalancedSampler(ds, batch_size=100, num_replicas=1, rank=0)
    assert sampler.probabilities.tolist() == [0.25] * 4
    sampler.set_epoch(1)
    first = [i for b in sampler for i in b]
    assert [i for b in sampler for i in b] == first  # a function of the epoch's seed
    sampler.set_epoch(2)
    assert [i for b in sampler for i in b] != first
    assert len(first) == len(ds)  # an epoch draws as many images as the dataset has


def test_seeded_resumable_and_sharded_like_distributed_batch_sampler():
    ds = _Labels(COUNTS)

    def wrapped(seed, batch, replicas=1, rank=0):
        return ResumableBatchSampler(ClassBalancedSampler(ds, batch, num_replicas=replicas, rank=rank), seed=seed)

    a, b = wrapped(42, 64), wrapped(43, 64)
    a.set_epoch(3), b.set_epoch(3)
    whole = [list(x) for x in a]
    assert whole != [list(x) for x in b]  # Global.seed changes the draws
    a.set_epoch(3)
    a.skip(5)
    assert [list(x) for x in a] == whole[5:]  # resuming at batch 5 replays the rest exactly
    # two ranks with batch 32 see, side by side, the batches of one process with batch 64
    ranks = [wrapped(42, 32, 2, r) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(3)
    per_rank = [[list(x) for x in r] for r in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == len(whole) == 16

    def indices(batch):  # the data branch yields (index, batch number) keys; main yields indices
        return [k[0] if isinstance(k, tuple) else k for k in batch]

    for one, r0, r1 in zip(whole, *per_rank):
        assert indices(one) == indices(r0) + indices(r1)


def test_sampler_refuses_multilabel_data_and_bad_options():
    ds = _Labels([3, 3])
    ds.samples = [(p, [1, 0]) for p, _ in ds.samples]
    with pytest.raises(ConfigError, match="need one class id per sample"):
        ClassBalancedSampler(ds, 4)
    with pytest.raises(ConfigError, match=r"exponent: expected a value in \[0, 1\]"):
        ClassBalancedSampler(_Labels([3, 3]), 4, exponent=2.0)


def _imbalanced_slice(dst, counts=(40, 40, 6), n_val=10):
    for split, ns in (("train", counts), ("val", (n_val,) * len(counts))):
        for c, n in enumerate(ns):
            src = os.path.join(DIGITS, split, str(c))
            os.makedirs(os.path.join(dst, split, str(c)), exist_ok=True)
            for f in sorted(os.listdir(src))[:n]:
                shutil.copy(os.path.join(src, f), os.path.join(dst, split, str(c), f))
    return dst


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    return _imbalanced_slice(str(tmp_path_factory.mktemp("imbalanced")))


BALANCED = {"DataLoader.Train.sampler.name": "ClassBalancedSampler"}


def test_training_with_the_sampler_sees_balanced_batches_and_auto_weights(imbalanced, tmp_path):
    cfg = load_small_config(imbalanced, str(tmp_path), **BALANCED, **{
        "Global.epochs": 1, "Loss.Train": "[{CELoss: {class_weight: auto}}]",
        "Metric.Eval": "[{BalancedAccuracy: {per_class: true}}, {TopkAcc: {topk: [1]}}]"})
    engine = Trainer(cfg)
    assert class_counts(engine.train_loader.dataset).tolist() == [40, 40, 6]
    # N / (C · n_c) = 86 / (3 · n_c)
    np.testing.assert_allclose(engine.train_loss.losses[0].class_weights, [86 / 120, 86 / 120, 86 / 18], rtol=1e-6)
    engine.train_loader.batch_sampler.set_epoch(1)
    seen = [k[0] if isinstance(k, tuple) else k for batch in engine.train_loader.batch_sampler for k in batch]
    labels = np.array([engine.train_loader.dataset.samples[i][1] for i in seen])
    assert len(seen) == 80 and np.bincount(labels, minlength=3).min() >= 15  # 5 full batches; the rare class ~ 1/3
    result = engine.train()
    assert set(result["eval"]) >= {"balanced_acc", "min_recall", "recall_0", "recall_1", "recall_2", "top1"}
    log = open(os.path.join(str(tmp_path), "MobileNetV2_x0_25", "train.log")).read()
    assert "class_weight: auto = 0.717, 0.717, 4.78 (images per class: 40, 40, 6)" in log
    assert "balanced_acc: " in log and "min_recall: " in log


def test_sampler_rules_in_the_config(imbalanced, tmp_path):
    with pytest.raises(ConfigError) as e:
        load_small_config(imbalanced, str(tmp_path), **{"DataLoader.Eval.sampler.name": "ClassBalancedSampler",
                                                        "DataLoader.Train.sampler.exponent": 0.5})
    lines = str(e.value).splitlines()
    assert lines == ["DataLoader.Train.sampler.exponent: only ClassBalancedSampler takes it (the sampler is "
                     "DistributedBatchSampler)",
                     "DataLoader.Eval.sampler.name: ClassBalancedSampler draws with replacement, which is for "
                     "training only; use DistributedBatchSampler"]
    with pytest.raises(ConfigError, match=r"exponent: expected a number <= 1, got 3.0"):
        load_small_config(imbalanced, str(tmp_path), **BALANCED, **{"DataLoader.Train.sampler.exponent": 3})


# SqueezeNet has no BatchNorm: splitting a batch over two processes does not change the maths
NO_BN = {"Arch.name": "SqueezeNet1_1", "Arch.dropout": 0.0, "Global.epochs": 1, "Global.eval_during_train": False,
         "Optimizer": "{name: Momentum, momentum: 0.9, lr: {name: Constant, learning_rate: 0.01}}"}


def _losses(log):
    import re
    return [float(v) for v in re.findall(r"\[Iter \d+/\d+\] lr: [\d.]+, loss: ([\d.]+)", open(log).read())]


@pytest.mark.slow
@pytest.mark.distributed
def test_two_process_launch_with_the_sampler_equals_one_process(imbalanced, tmp_path):
    def over(out, batch):
        items = small_overrides(imbalanced, out, **NO_BN, **BALANCED,
                                **{"DataLoader.Train.sampler.batch_size": batch, "Global.print_batch_step": 1})
        return [x for o in items for x in ("-o", o)]

    one = subprocess.run([sys.executable, "tools/train.py", "-c", "configs/mobilenetv2.yaml",
                          *over(str(tmp_path / "one"), 8)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                          str(tmp_path / "log"), "tools/train.py", "-c", "configs/mobilenetv2.yaml",
                          *over(str(tmp_path / "two"), 4)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stdout[-3000:] + two.stderr[-3000:]
    a = _losses(str(tmp_path / "one" / "SqueezeNet1_1" / "train.log"))
    b = _losses(str(tmp_path / "two" / "SqueezeNet1_1" / "train.log"))
    assert len(a) == len(b) == 10  # 86 draws: 10 batches of 8 (drop_last)
    np.testing.assert_allclose(b, a, rtol=2e-4)
