"""Models with non-trivial BatchNorm statistics for export parity tests."""
from __future__ import annotations

import numpy as np
import paddle


def randomize_batch_norm(model: paddle.nn.Layer, rng: np.random.Generator) -> None:
    """Give every BN non-trivial statistics and affine parameters.

    A fresh BN (mean 0, variance 1, scale 1, shift 0) is nearly the identity in eval mode, so
    an export that ran BN in training mode, or dropped it, would go unnoticed.

    A re-parameterized model (a block with ``reparameterize``) sums several BN branches per block in
    its train-time form: statistics drawn regardless of each layer's input multiply its activations
    at every block (GhostNetV3: logits of 1e4), so its statistics are then those of a random batch
    (one training-mode pass), not the tested input's.
    """
    bns = [layer for layer in model.sublayers() if isinstance(layer, paddle.nn.BatchNorm2D)]
    for bn in bns:
        c = bn._mean.shape[0]
        bn._mean.set_value(rng.normal(0, 0.2, c).astype("float32"))
        bn._variance.set_value(rng.uniform(0.5, 2.0, c).astype("float32"))
        bn.weight.set_value(rng.uniform(0.5, 1.5, c).astype("float32"))
        bn.bias.set_value(rng.normal(0, 0.2, c).astype("float32"))
    if not any(callable(getattr(layer, "reparameterize", None)) for layer in model.sublayers()):
        return
    momenta, training = [bn._momentum for bn in bns], model.training
    for bn in bns:
        bn._momentum = 0.0            # the running statistics become this batch's
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(rng.normal(0, 1, (64, 3, 32, 32)).astype("float32")))
    model.train(training)
    for bn, momentum in zip(bns, momenta):
        bn._momentum = momentum


def randomize_bn_statistics(model: paddle.nn.Layer, seed: int = 0, gamma=(0.5, 1.5)) -> None:
    """Random statistics and affine parameters (scales drawn from ``gamma``) for every BatchNorm2D and
    BatchNorm1D: a fused form must fold them all (no training-mode pass, unlike :func:`randomize_batch_norm`)."""
    rng = np.random.default_rng(seed)
    for layer in model.sublayers():
        if isinstance(layer, (paddle.nn.BatchNorm2D, paddle.nn.BatchNorm1D)):
            n = layer._mean.shape[0]
            layer._mean.set_value(rng.normal(0, 0.3, n).astype("float32"))
            layer._variance.set_value(rng.uniform(0.5, 2, n).astype("float32"))
            layer.weight.set_value(rng.uniform(*gamma, n).astype("float32"))
            layer.bias.set_value(rng.normal(0, 0.3, n).astype("float32"))
