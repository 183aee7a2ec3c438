"""Every registered model: construction, forward/backward, size fidelity, PaddleClas key layout."""
from __future__ import annotations

import numpy as np
import paddle
import pytest

import ppnets
import ppnets.errors
from ppnets.analysis import count_params, profile_model
from ppnets.arch import model_info

from reference import has_manifest, manifest, manifest_names, model_sizes
from test_reliability import _tool

SIZES = model_sizes()
ALL = ppnets.list_models()
# The big EfficientNets share B0's code path; they are built and counted, not trained, to keep CI fast.
# So do MobileOne S2–S4 (S1's blocks; S4's squeeze-excite trains in tests/test_mobileone.py at a small
# width) and the deep RepViTs (M0.9's blocks).
HEAVY = {f"EfficientNetB{i}" for i in range(3, 8)} | {"MobileOne_s2", "MobileOne_s3", "MobileOne_s4",
                                                      "RepViT_m1_5", "RepViT_m2_3"}
LIGHT = [n for n in ALL if n not in HEAVY]


def _state_layout(model) -> list:
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", LIGHT)
def test_forward_backward_small_input(name):
    paddle.seed(0)
    model = ppnets.build_model(name, class_num=7)
    model.train()
    x = paddle.randn([2, 3, 32, 32])
    out = model(x)
    assert out.shape == [2, 7]
    assert np.isfinite(out.numpy()).all()
    out.mean().backward()
    no_grad = [p.name for p in model.parameters() if not p.stop_gradient and p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    model.eval()
    with paddle.no_grad():
        feats = model.forward_features(x)
    assert feats.ndim == 4 and feats.shape[0] == 2


WITH_SIZES = sorted(n for n in ALL if n in SIZES)
WITH_MANIFEST = sorted(n for n in ALL if has_manifest(n))


def test_reference_data_covers_every_paddleclas_model():
    # the two tests below are generated from tests/reference: every model PaddleClas ships (ModelInfo.paddleclas)
    # must have its sizes row and key manifest there, and the reference must name no other model
    paddleclas = sorted(n for n in ALL if model_info(n).paddleclas)
    assert paddleclas, "no registered model is marked paddleclas=True"
    assert sorted(SIZES) == WITH_SIZES == paddleclas, "tests/reference/model_sizes.md rows != PaddleClas models"
    assert WITH_MANIFEST == paddleclas, "tests/reference/paddleclas_keys/*.txt != PaddleClas models (make_reference.py)"
    assert sorted(SIZES) == sorted(manifest_names()), "a manifest without a sizes row, or the reverse"


@pytest.fixture(scope="module", params=sorted(set(WITH_SIZES) | set(WITH_MANIFEST)))
def reference_model(request):
    """Each model with reference data, built once (1000 classes) for the two tests below."""
    return request.param, ppnets.build_model(request.param, class_num=1000)


def test_params_and_macs_match_reference(reference_model):
    name, model = reference_model
    if name not in SIZES:
        pytest.fail(f"{name}: no row in tests/reference/model_sizes.md")
    size, params, macs = SIZES[name]
    assert count_params(model) == params
    prof = profile_model(model, size)
    assert prof.params == params
    if model_info(name).family == "EfficientNet":
        # PaddleClas pads the input explicitly and then convolves (and crops) a larger map; ppnets counts
        # the SAME-padded convolution at its true output size, 0.01–0.21 % fewer MACs
        assert prof.macs == pytest.approx(macs, rel=0.0025) and prof.macs <= macs, (prof.macs, macs)
    else:
        assert prof.macs == macs


def test_state_dict_matches_paddleclas_manifest(reference_model):
    name, model = reference_model
    if not has_manifest(name):
        pytest.fail(f"{name}: no tests/reference/paddleclas_keys/{name}.txt")
    info = model_info(name)
    ref = manifest(name)
    if info.from_paddleclas is None:
        assert _state_layout(model) == ref
    else:
        # a PaddleClas-shaped state_dict converts onto the model with nothing missing or left over
        fake = {k: np.zeros(shape, dtype="float32") for k, shape in ref}
        converted = info.from_paddleclas(fake)
        mine = dict(_state_layout(model))
        assert sorted(converted) == sorted(mine)
        assert all(list(np.shape(v)) == mine[k] for k, v in converted.items())


_TOY_PPCLS = """
import paddle.nn as nn


class ToyNet(nn.Layer):
    def __init__(self, width, class_num=1000):
        super().__init__()
        self.conv = nn.Conv2D(3, width, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2D(width)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(width, class_num)

    def forward(self, x):
        return self.fc(self.pool(self.bn(self.conv(x))).flatten(1))


def ToyNet_x1_0(pretrained=False, **kwargs):
    return ToyNet(8, **kwargs)
"""


def test_make_reference_writes_manifest_and_sizes_from_a_paddleclas_tree(tmp_path, capsys):
    root = tmp_path / "PaddleClas"
    backbone = root / "ppcls" / "arch" / "backbone"
    (backbone / "model_zoo").mkdir(parents=True)
    (backbone / "__init__.py").write_text("import sys\nfrom .model_zoo.toynet import ToyNet_x1_0\n")
    (backbone / "model_zoo" / "toynet.py").write_text(_TOY_PPCLS)
    (root / "ppcls" / "__init__.py").write_text("raise ImportError('the training stack must not be imported')\n")
    out = tmp_path / "reference"
    (out / "paddleclas_keys").mkdir(parents=True)
    (out / "model_sizes.md").write_text("# sizes\n\n| name | input | params | MACs | note |\n|---|---|---|---|---|\n"
                                        "| ToyNet_x1_0 | 32 | 1 | 2 | kept note |\n| Other | 224 | 3 | 4 |  |\n\nend\n")
    make_reference = _tool("make_reference")
    make_reference(["ToyNet_x1_0", "--ppcls", str(root), "--size", "32", "--out", str(out)])
    params, macs = 3 * 8 * 9 + 8 + 2 * 8 + 8 * 1000 + 1000, 16 * 16 * 8 * 27 + 8 * 1000
    assert capsys.readouterr().out.strip() == f"ToyNet_x1_0: {params:,} params, {macs:,} MACs at 32, 8 keys"
    assert (out / "paddleclas_keys" / "ToyNet_x1_0.txt").read_text().splitlines() == [
        "conv.weight [8, 3, 3, 3]", "conv.bias [8]", "bn.weight [8]", "bn.bias [8]", "bn._mean [8]",
        "bn._variance [8]", "fc.weight [8, 1000]", "fc.bias [1000]"]
    table = (out / "model_sizes.md").read_text()
    assert f"| ToyNet_x1_0 | 32 | {params:,} | {macs:,} | kept note |" in table and table.endswith("\nend\n")
    with pytest.raises(ppnets.errors.ConfigError, match="NoSuchNet: not a model of"):
        make_reference(["NoSuchNet", "--ppcls", str(root), "--out", str(out)])


def test_mobilenetv2_paper_exact_drops_t1_expansion():
    paddleclas = ppnets.build_model("MobileNetV2")
    exact = ppnets.build_model("MobileNetV2", paper_exact=True)
    assert count_params(paddleclas) == SIZES["MobileNetV2"][1] == 3_505_960
    # exactly the t = 1 block's 1×1 expansion (32 → 32, no bias) and its BatchNorm go
    a, b = dict(_state_layout(paddleclas)), dict(_state_layout(exact))
    prefix = "conv2._first_block._expand_conv."
    assert {k: a[k] for k in a if k not in b} == {
        prefix + "_conv.weight": [32, 32, 1, 1], prefix + "_batch_norm.weight": [32],
        prefix + "_batch_norm.bias": [32], prefix + "_batch_norm._mean": [32],
        prefix + "_batch_norm._variance": [32]}
    assert set(b) <= set(a)
    assert count_params(exact) == 3_505_960 - (32 * 32 + 2 * 32)  # running mean/variance are not parameters


def test_unknown_model_lists_the_closest_names():
    with pytest.raises(ppnets.errors.ConfigError, match=r"unknown model 'MobileNetV2_x0_6' \(did you mean "
                       r"'MobileNetV2_x0_5'\?\); closest: MobileNetV2_x0_5, .* models; see ppnets.list_models\(\)"):
        ppnets.build_model("MobileNetV2_x0_6")


def test_unknown_model_kwarg_is_named():
    with pytest.raises(ppnets.errors.ConfigError, match=r"unknown key 'scael'.*did you mean 'scale'"):
        ppnets.build_model("MobileNetV2", scael=0.5)
