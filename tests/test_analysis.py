"""Architecture analysis: summary tables, block structure, diagrams, cost calculators, zoo comparison, log plots."""
from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys

import paddle
import paddle.nn as nn
import pytest

import ppnets
from ppnets.analysis import count_params, profile_model
from ppnets.analysis.blocks import describe_block, find_blocks
from ppnets.analysis.costs import conv_cost, format_conv_cost
from ppnets.analysis.diagram import dot_available, log_graph_to_visualdl, model_dot, render_dot
from ppnets.analysis.logplot import best_eval, last_eval, parse_log, plot_log
from ppnets.analysis.scaling import compound_scaling, format_scaling, variant_phis
from ppnets.analysis.summary import KINDS, format_summary, summarize, write_layers_csv
from ppnets.analysis.zoo import read_accuracy, select_models
from ppnets.analysis.zoo_plot import short_label
from ppnets.arch.layers import ConvBNLayer
from ppnets.arch.mobilenet_v1 import ARCH as MNV1_ARCH
from ppnets.errors import ConfigError, DataError

from helpers.runs import REPO, load_tool
from helpers.reference import model_sizes

SIZES = model_sizes()
TOOLS = os.path.join(REPO, "tools")
SMALL = ["MobileNetV1_x0_25", "MobileNetV2_x0_25", "MobileNetV3_small_x0_35", "EfficientNetB0",
         "ShuffleNetV1_g3_x0_5", "ShuffleNetV2_x0_5", "SqueezeNet1_1", "GhostNet_x0_5", "PPLCNet_x0_25",
         "MobileNetV4_hybrid_medium", "PPHGNetV2_B0", "MobileOne_s0", "RepViT_m0_9"]


def _tool(name):
    return load_tool(name)


def _png_ok(path):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return img


# --------------------------------------------------------------------------- summary / roll-up


@pytest.mark.parametrize("name", SMALL)
def test_layer_block_stage_and_kind_sums_equal_totals(name):
    model = ppnets.build_model(name, class_num=10)
    s = summarize(model, 64, name)
    assert s.params == count_params(model) == sum(layer.params for layer in s.profile.layers)
    assert s.macs == sum(layer.macs for layer in s.profile.layers) > 0
    # stem + stages + head partition the layers exactly
    ids = [id(layer) for sec in s.sections for layer in sec.layers]
    assert sorted(ids) == sorted(id(layer) for layer in s.profile.layers)
    assert sum(sec.params for sec in s.sections) == s.params
    assert sum(sec.macs for sec in s.sections) == s.macs
    for sec in s.stages:
        assert sec.blocks
        assert sum(b.macs for b in sec.blocks) + sum(x.macs for x in sec.other) == sec.macs
        assert sum(b.params for b in sec.blocks) + sum(x.params for x in sec.other) == sec.params
    by_kind = s.macs_by_kind()
    assert list(by_kind)[:len(KINDS)] == list(KINDS) and sum(by_kind.values()) == s.macs
    # every linear layer once (the classifier, RepViT's two; GhostNet's squeeze-excite layers too)
    linear = sum(layer.weight.shape[0] * layer.weight.shape[1] for layer in model.sublayers()
                 if isinstance(layer, nn.Linear))
    classifiers = 0 if name.startswith("SqueezeNet") else 2 if name.startswith("RepViT") else 1
    assert by_kind["fc"] == linear == classifiers * model.head_hidden_size * 10 + (
        sum(2 * se.squeeze.weight.shape[0] * se.squeeze.weight.shape[1] for se in model.sublayers()
            if type(se).__name__ == "SqueezeExcite" and se.linear))
    # the stages are the model's feature_info, each ending with its declared output map
    assert [sec.out_shape[1] for sec in s.stages] == [d["num_chs"] for d in model.feature_info]
    assert all(b.stage == sec.name for sec in s.stages for b in sec.blocks)
    text = format_summary(s)
    assert f"{s.params:,} params, {s.macs:,} MACs" in text and "FLOPs = 2 × MACs" in text and "input 3×64×64" in text


@pytest.mark.parametrize("name", ["MobileNetV2", "SqueezeNet1_1", "ShuffleNetV2_x1_0"])
def test_totals_match_reference_at_224(name):
    size, params, macs = SIZES[name]
    s = summarize(ppnets.build_model(name), size, name)
    assert (s.params, s.macs) == (params, macs)
    assert (sum(sec.params for sec in s.sections), sum(sec.macs for sec in s.sections)) == (params, macs)


def test_mobilenetv2_block_figures_by_hand():
    s = summarize(ppnets.build_model("MobileNetV2"), 224)
    b = next(b for b in s.blocks if b.name == "conv3.conv3_2")  # 24 → 144 → 24 at 56×56, stride 1
    hw = 56 * 56
    assert b.macs == hw * 24 * 144 + hw * 144 * 9 + hw * 144 * 24 == 25_740_288
    assert b.params == 24 * 144 + 144 * 9 + 144 * 24 + 2 * (144 + 144 + 24) == 8_832
    assert b.in_shape == b.out_shape == (1, 24, 56, 56)
    assert b.info.residual and (b.info.kernel, b.info.stride, b.info.expansion, b.info.act) == (3, 1, 6, "ReLU6")
    assert [(sec.module, len(sec.blocks)) for sec in s.stages] == [
        ("conv2", 1), ("conv3", 2), ("conv4", 3), ("conv5", 4), ("conv6", 3), ("conv7", 3), ("conv8", 1)]
    assert s.stem.macs == 112 * 112 * 32 * 3 * 9 and s.stem.out_shape == (1, 32, 112, 112)


def test_mobilenetv1_kinds_by_hand():
    s = summarize(ppnets.build_model("MobileNetV1"), 224)
    res, c, dw, pw = 112, 32, 0, 0
    for k, c_out, stride in MNV1_ARCH:
        res //= stride
        dw += k * k * c * res * res
        pw += c * c_out * res * res
        c = c_out
    assert s.macs_by_kind() == {"full": 112 * 112 * 32 * 27, "pointwise": pw, "depthwise": dw, "grouped": 0,
                                "fc": 1024 * 1000}
    # the 13 blocks are grouped into 5 stages by output resolution
    assert [len(sec.blocks) for sec in s.stages] == [1, 2, 2, 6, 2]
    assert [sec.out_shape[2] for sec in s.stages] == [112, 56, 28, 14, 7]


@pytest.mark.parametrize("name, stages, merge", [
    ("EfficientNetB0", [1, 2, 2, 3, 3, 4, 1], "add"),
    ("ShuffleNetV1_g3_x0_5", [4, 8, 4], "add"),
    ("ShuffleNetV2_x0_5", [4, 8, 4], "concat"),
    ("SqueezeNet1_0", [3, 4, 1], "concat"),
    ("MobileNetV3_large_x0_35", [1, 2, 3, 6, 3], "add"),
])
def test_stages_and_block_paths(name, stages, merge):
    s = summarize(ppnets.build_model(name), 224)
    assert [len(sec.blocks) for sec in s.stages] == stages
    assert any(b.info.merge == merge for b in s.blocks)
    for b in s.blocks:
        assert b.info.out_channels == b.out_shape[1], b.name
        assert b.info.in_channels == b.in_shape[1], b.name


def test_block_descriptions():
    sn2 = ppnets.build_model("ShuffleNetV2_x0_5")
    info = describe_block(getattr(sn2, "2_2"))
    assert info.split and info.merge == "concat" and info.branches[0] == [] and len(info.branches[1]) == 3
    assert [op.label for op in info.post] == ["channel shuffle g2"]
    down = describe_block(getattr(sn2, "2_1"))
    assert not down.split and [len(b) for b in down.branches] == [2, 3] and down.stride == 2
    fire = describe_block(ppnets.build_model("SqueezeNet1_1")._conv1)
    assert [op.label for op in fire.pre] == ["1×1 conv 64→16, ReLU"]
    assert [[op.label for op in b] for b in fire.branches] == [["1×1 conv 16→64, ReLU"], ["3×3 conv 16→64, ReLU"]]
    sn1 = ppnets.build_model("ShuffleNetV1_g3_x1_0")
    unit = describe_block(sn1.stage3[1])
    assert unit.residual and "channel shuffle g3" in [op.label for op in unit.branches[1]]
    assert describe_block(sn1.stage3[0]).branches[0][0].label == "3×3 avg pool /2"
    mb = describe_block(ppnets.build_model("EfficientNetB0").blocks[2][1])
    assert (mb.title, mb.kernel, mb.stride, mb.expansion, mb.se, mb.act, mb.residual) == \
        ("MBConv6", 5, 1, 6.0, True, "swish", True)


def test_analysis_imports_no_family_module():
    import ast
    from ppnets.arch import FAMILY_MODULES
    folder = os.path.join(REPO, "ppnets", "analysis")
    for fname in sorted(os.listdir(folder)):
        if not fname.endswith(".py") or fname == "scaling.py":  # scaling.py is EfficientNet's compound scaling
            continue
        tree = ast.parse(open(os.path.join(folder, fname), encoding="utf-8").read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in imported if m.split(".")[-1] in FAMILY_MODULES}, fname


def test_unlisted_families_get_distinct_chart_styles():
    from ppnets.analysis.zoo_plot import FAMILY_STYLE, family_style
    families = {ppnets.model_info(n).family for n in ppnets.list_models()}
    assert len({family_style(f) for f in families}) == len(families)  # new families need no FAMILY_STYLE entry
    assert family_style("ToyNet") not in FAMILY_STYLE.values()
    assert family_style("MobileNetV2") == FAMILY_STYLE["MobileNetV2"]


class _Custom(nn.Layer):
    """A block class the analysis has never heard of."""

    def __init__(self, c):
        super().__init__()
        self.shortcut = True
        self.a = ConvBNLayer(c, 2 * c, 1, act="relu")
        self.b = ConvBNLayer(2 * c, c, 3)

    def forward(self, x):
        return x + self.b(self.a(x))


class _Net(nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem = ConvBNLayer(3, 8, 3, 2, act="relu")
        self.body = nn.Sequential(_Custom(8), _Custom(8))
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(paddle.flatten(self.body(self.stem(x)).mean(axis=[2, 3], keepdim=True), 1))


def test_unknown_block_class_is_found_and_described_generically():
    net = _Net()
    assert [n for n, _ in find_blocks(net)] == ["body.0", "body.1"]
    info = describe_block(net.body[0])
    assert info.residual and [op.label for op in info.branches[1]] == ["1×1 conv 8→16, ReLU", "3×3 conv 16→8"]
    s = summarize(net, 16)
    assert [len(sec.blocks) for sec in s.stages] == [2] and s.params == count_params(net)
    assert s.macs == 8 * 8 * 8 * 27 + 2 * (64 * 8 * 16 + 64 * 16 * 8 * 9) + 8 * 4


def test_layers_csv(tmp_path):
    s = summarize(ppnets.build_model("MobileNetV2_x0_25"), 32)
    path = str(tmp_path / "layers.csv")
    write_layers_csv(s, path)
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert len(rows) == len(s.profile.layers)
    assert sum(int(r["macs"]) for r in rows) == s.macs and sum(int(r["params"]) for r in rows) == s.params
    assert {r["section"] for r in rows} == {sec.name for sec in s.sections}


# --------------------------------------------------------------------------- calculators


def test_conv_cost_seed_example_exact():
    c = conv_cost(56, 56, 16, 32, 3)
    assert c.standard_macs == 14_450_688 == 56 * 56 * 16 * 32 * 3 * 3
    assert c.separable_macs == 2_057_216 == 3 * 3 * 16 * 56 * 56 + 16 * 32 * 56 * 56
    assert (c.standard_params, c.depthwise_params, c.pointwise_params, c.separable_params) == (4608, 144, 512, 656)
    assert c.ratio == pytest.approx(1 / 32 + 1 / 9)
    text = format_conv_cost(c)
    assert "14,450,688 MACs" in text and "2,057,216 MACs" in text
    s2 = conv_cost(56, 56, 16, 32, 3, stride=2)
    assert (s2.out_height, s2.standard_macs, s2.separable_macs) == (28, 14_450_688 // 4, 2_057_216 // 4)
    with pytest.raises(ConfigError, match="kernel must be a positive integer"):
        conv_cost(56, 56, 16, 32, 0)


def test_compound_scaling_multipliers():
    s = compound_scaling(1, profile=False)
    assert (s.depth, s.width, s.resolution_mult, s.resolution) == (pytest.approx(1.2), pytest.approx(1.1),
                                                                    pytest.approx(1.15), 258)
    assert s.constraint == pytest.approx(1.2 * 1.1 ** 2 * 1.15 ** 2) == pytest.approx(1.9203, abs=1e-4)
    assert abs(s.constraint - 2) < 0.1
    assert compound_scaling(3, profile=False).flops_factor == pytest.approx(s.constraint ** 3)
    rows = {r["name"]: r for r in variant_phis(profile=False)}
    assert rows["EfficientNetB2"]["phi_width"] == pytest.approx(1.0) and rows["EfficientNetB2"]["phi_depth"] == \
        pytest.approx(1.0)
    assert rows["EfficientNetB7"]["phi_res"] == pytest.approx(math.log(600 / 224) / math.log(1.15))
    with pytest.raises(ConfigError, match="beta must be > 1"):
        compound_scaling(1, beta=0.9, profile=False)
    # a coefficient of 1 would divide by log(1) = 0 when placing the variants
    for kw in ({"alpha": 1.0}, {"beta": 1.0}, {"gamma": 1.0}):
        name = next(iter(kw))
        with pytest.raises(ConfigError, match=f"{name} must be > 1, got 1"):
            compound_scaling(1, profile=False, **kw)
        with pytest.raises(ConfigError, match=f"{name} must be > 1, got 1"):
            variant_phis(profile=False, **kw)


def test_scaling_rounding_note_only_when_a_row_exceeds_the_prediction():
    from ppnets.analysis.scaling import ScaledModel
    b0 = {"name": "EfficientNetB0", "width": 1.0, "depth": 1.0, "resolution": 224, "phi": 0.0,
          "phi_width": 0.0, "phi_depth": 0.0, "phi_res": 0.0, "params": 5_000_000, "macs": 400_000_000}

    def row(phi, macs):
        return ScaledModel(phi, 1.2, 1.1, 1.15, 1.2 ** phi, 1.1 ** phi, 1.15 ** phi, 224, 1, macs)

    note = "exceeds (αβ²γ²)^φ"
    # (αβ²γ²)^1 = 1.92: 2.0 × B0 exceeds it, 1.5 × does not
    assert "(MACs/B0 of a φ row exceeds" in format_scaling([row(1, 800_000_000)], [b0])
    assert note not in format_scaling([row(1, 600_000_000)], [b0])
    assert note not in format_scaling([row(0, 400_000_000)], [b0])          # φ = 0 is B0 itself
    assert note not in format_scaling([row(1, 800_000_000)], [])            # no B0: no MACs/B0 column
    mixed = format_scaling([row(1, 600_000_000), row(2, 1_600_000_000)], [b0])
    assert "(MACs/B0 of the φ = 2 row exceeds" in mixed


def test_compound_scaling_phi1_is_b2_shaped():
    # φ = 1 gives width 1.1 and depth 1.2: exactly B2's multipliers, so the same parameters
    s = compound_scaling(1)
    assert s.params == SIZES["EfficientNetB2"][1]
    b0 = compound_scaling(0)
    assert (b0.params, b0.resolution) == (SIZES["EfficientNetB0"][1], 224)
    assert b0.macs == profile_model(ppnets.build_model("EfficientNetB0"), 224).macs
    text = format_scaling([b0, s], variant_phis(profile=False))
    assert "α·β²·γ² = 1.9203" in text and "B7" in text and "φ = 1" in text


# --------------------------------------------------------------------------- diagrams


def _diagram(name, **kw):
    model = ppnets.build_model(name)
    return model_dot(summarize(model, 64, name), model, **kw)


def _clusters(dot):
    return re.findall(r"subgraph cluster_\d+ \{(.*?)\n  \}", dot, flags=re.S)


def test_diagram_mobilenetv2_residuals():
    dot = _diagram("MobileNetV2_x0_25")
    assert len(_clusters(dot)) == 7
    assert all("->" not in c for c in _clusters(dot))  # edges outside clusters keep nodes where they belong
    assert dot.count('label=<+>') == 10           # conv3_2, conv4_2-3, conv5_2-4, conv6_2-3, conv7_2-3
    assert dot.count('style="dashed"') == 10 and dot.count("identity") >= 10
    assert "k3 s2 e6 ReLU6" in dot and "→ 4×32×32" in dot and "stem" in dot and "FC 1280→1000" in dot
    compact = _diagram("MobileNetV2_x0_25", compact=True)
    assert "×3" in compact and compact.count("->") < dot.count("->")


def test_diagram_shufflenetv2_split_concat_shuffle():
    dot = _diagram("ShuffleNetV2_x0_5")
    assert dot.count("concat → channel shuffle g2") == 16
    assert dot.count("48 → 24 + 24") == 3 and dot.count("96 → 48 + 48") == 7 and dot.count("192 → 96 + 96") == 3
    assert dot.count("identity (") == 13          # the un-convolved half of each basic unit
    assert dot.count("3×3 dw 24 /2") == 2         # both branches of the first down-sampling unit


def test_diagram_squeezenet_and_efficientnet():
    dot = _diagram("SqueezeNet1_1")
    assert dot.count("<td>concat</td>") == 8 and dot.count("3×3 max pool /2") == 3  # stem + 2 between fires
    assert dot.count("1×1 conv 64→16, ReLU") == 1 and dot.count("1×1 conv 128→16, ReLU") == 1  # fire2/3 squeeze
    assert dot.count("1×1 conv 16→64, ReLU") == 2 and dot.count("3×3 conv 16→64, ReLU") == 2  # their two paths
    eff = _diagram("EfficientNetB0")
    assert eff.count('label=<+>') == 9 and "MBConv6" in eff and "SE swish" in eff and "k5 s2 e6" in eff


def test_diagram_newer_families():
    ghost = _diagram("GhostNet_x0_5")
    assert ghost.count("Ghost bottleneck") == 16 and len(_clusters(ghost)) == 5
    assert ghost.count('label=<+>') == 11 and ghost.count("+ (add)") == 5   # identity / projected shortcuts
    assert "SE 36→9→36, clip[0,1]" in ghost
    v4 = _diagram("MobileNetV4_hybrid_medium")
    assert v4.count("Mobile MQA 4 heads") == 8 and v4.count("Mobile MQA 4 heads, kv /2") == 4  # stride 8 / 16
    assert "Fused IB" in v4 and "UIB ExtraDW" in v4 and "UIB FFN" in v4 and "UIB ConvNext-like" in v4
    lc = _diagram("PPLCNet_x0_25")
    assert lc.count("DW-separable") == 13 and lc.count("SE h-swish") == 2     # blocks6: 5×5 + SE


@pytest.mark.skipif(dot_available() is None, reason="Graphviz 'dot' is not installed")
def test_diagram_renders_svg_and_png(tmp_path):
    path = str(tmp_path / "sn2.dot")
    open(path, "w", encoding="utf-8").write(_diagram("ShuffleNetV2_x0_5", compact=True))
    out = render_dot(path)
    assert [os.path.basename(p) for p in out] == ["sn2.svg", "sn2.png"]
    assert "<svg" in open(out[0], encoding="utf-8").read()
    _png_ok(out[1])


@pytest.mark.slow
def test_visualdl_graph(tmp_path):
    path = log_graph_to_visualdl("MobileNetV2_x0_25", 32, str(tmp_path / "vdl"), {"class_num": 10})
    assert os.path.basename(path).startswith("vdlgraph") and os.path.getsize(path) > 1000


# --------------------------------------------------------------------------- CLIs


def _run_tool(*args):
    return subprocess.run([sys.executable, os.path.join(TOOLS, "analyze_model.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_analyze_model_cli_totals_and_errors():
    size, params, macs = SIZES["MobileNetV2"]
    res = _run_tool("--model", "MobileNetV2", "--input-size", str(size), "--conv-cost", "56", "56", "16", "32", "3")
    assert res.returncode == 0, res.stderr
    assert f"MobileNetV2: {params:,} params, {macs:,} MACs" in res.stdout
    assert "conv2._expand_conv" not in res.stdout and "conv2._first_block._expand_conv._conv" in res.stdout
    assert re.search(rf"^total\s+{params:,}\s+{macs:,}\s+100.0%$", res.stdout, flags=re.M)
    assert "14,450,688 MACs" in res.stdout and "2,057,216 MACs" in res.stdout
    bad = _run_tool("--model", "MobileNetV2_x0_6")
    assert bad.returncode == 2 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ppnets: error: --model: unknown model 'MobileNetV2_x0_6'")


def test_analyze_model_config_and_diagram(tmp_path, capsys):
    tool = _tool("analyze_model")
    prefix = str(tmp_path / "diagram")
    tool.main(["-c", os.path.join(REPO, "configs", "mobilenetv2.yaml"), "-o", "Arch.name=ShuffleNetV2_x0_25",
               "--brief", "--diagram", prefix, "--compact", "--csv", str(tmp_path / "layers.csv")])
    out = capsys.readouterr().out
    model = ppnets.build_model("ShuffleNetV2_x0_25", class_num=10)
    prof = profile_model(model, 32)
    assert f"ShuffleNetV2_x0_25: {prof.params:,} params, {prof.macs:,} MACs" in out and "input 3×32×32" in out
    assert os.path.isfile(prefix + ".dot") and os.path.isfile(str(tmp_path / "layers.csv"))
    if dot_available():
        assert os.path.isfile(prefix + ".png") and os.path.isfile(prefix + ".svg")
    else:
        assert "apt-get install graphviz" in out
    with pytest.raises(ConfigError, match="either -c CONFIG or --model"):
        tool.main(["-c", "x.yaml", "--model", "MobileNetV2"])
    with pytest.raises(ConfigError, match="nothing to do"):
        tool.main([])


@pytest.mark.slow
def test_compare_models_two_tiny_models(tmp_path, capsys):
    tool = _tool("compare_models")
    runs = tmp_path / "runs" / "MobileNetV2_x0_25"
    runs.mkdir(parents=True)
    (runs / "train.log").write_text(_synthetic_log(epochs=3, iters=4), encoding="utf-8")
    out = str(tmp_path / "zoo")
    tool.main(["--models", "MobileNetV2_x0_25", "ShuffleNetV2_x0_25", "--input-size", "32", "--batch-sizes", "1", "2",
               "--repeats", "2", "--warmup", "1", "--runs", str(tmp_path / "runs"), "--out", out, "--no-progress"])
    rows = {r["model"]: r for r in csv.DictReader(open(os.path.join(out, "zoo.csv"), encoding="utf-8"))}
    assert set(rows) == {"MobileNetV2_x0_25", "ShuffleNetV2_x0_25"}
    for name, r in rows.items():
        size, params, macs = SIZES[name]
        assert (int(r["params"]), int(r["native_input"]), int(r["macs_native"])) == (params, size, macs)
        assert int(r["macs_common"]) == profile_model(ppnets.build_model(name), 32).macs
        assert float(r["latency_b1_ms"]) > 0 and float(r["latency_b2_ms"]) > 0
    assert float(rows["MobileNetV2_x0_25"]["top1"]) == pytest.approx(0.8) and rows["ShuffleNetV2_x0_25"]["top1"] == ""
    md = open(os.path.join(out, "zoo.md"), encoding="utf-8").read()
    assert "| MobileNetV2_x0_25 | MobileNetV2 (2018) | 1.52 | 224 | 30.5 |" in md and "FLOPs = 2 × MACs" in md
    assert f"Top-1 from:\n- MobileNetV2_x0_25: {runs / 'train.log'} (best, epoch 2)\n" in md
    for png in ("zoo_params_vs_macs.png", "zoo_latency_vs_macs.png"):
        _png_ok(os.path.join(out, png))
    # re-drawing from the CSV keeps the numbers and the measurement note
    redo = str(tmp_path / "redo")
    tool.main(["--from-csv", os.path.join(out, "zoo.csv"), "--out", redo, "--repeats", "2"])
    assert open(os.path.join(redo, "zoo.md"), encoding="utf-8").read() == md
    capsys.readouterr()


def test_compare_models_reports_both_forms_and_published_top1(tmp_path, capsys):
    """A re-parameterized model's row holds its fused size too (the export's, drawn hollow), and
    --published fills top-1 from the best published weights."""
    from ppnets.analysis.zoo import read_csv

    out = str(tmp_path / "zoo")
    _tool("compare_models").main(["--models", "MobileOne_s0", "MobileNetV2", "--no-latency", "--published",
                                  "--input-size", "64", "--out", out, "--no-progress"])
    entries = {e.name: e for e in read_csv(os.path.join(out, "zoo.csv"))[0]}
    fused = ppnets.reparameterize(ppnets.build_model("MobileOne_s0"))
    assert (entries["MobileOne_s0"].params_fused, entries["MobileOne_s0"].macs_fused) == \
        (count_params(fused), profile_model(fused, 64).macs)
    assert entries["MobileOne_s0"].params_fused < entries["MobileOne_s0"].params
    assert entries["MobileNetV2"].params_fused is None
    # timm's mobileone_s0.apple_in1k (71.40 %); PaddleClas's SSLD MobileNetV2 (76.74 %) beats its plain 72.15 %
    assert entries["MobileOne_s0"].top1 == pytest.approx(0.7140)
    assert entries["MobileNetV2"].top1 == pytest.approx(0.7674)
    md = open(os.path.join(out, "zoo.md"), encoding="utf-8").read()
    assert "- MobileOne_s0: published: timm timm/mobileone_s0.apple_in1k (71.40 % at 224 px)" in md
    assert "fused: params (M) / MACs (M) at 64" in md
    _png_ok(os.path.join(out, "zoo_params_vs_macs.png"))
    capsys.readouterr()


def test_zoo_selection_and_labels():
    assert select_models(["MobileNetV2_x0_*5"]) == ["MobileNetV2_x0_25", "MobileNetV2_x0_5", "MobileNetV2_x0_75"]
    assert select_models(None, "SqueezeNet") == ["SqueezeNet1_0", "SqueezeNet1_1"]
    with pytest.raises(ConfigError, match="unknown model 'MobileNetV2_x9'"):
        select_models(["MobileNetV2_x9"])
    with pytest.raises(ConfigError, match="unknown family 'MobileNetV9'"):
        select_models(None, "MobileNetV9")
    assert [short_label(n, f) for n, f in [("MobileNetV2_x0_25", "MobileNetV2"), ("EfficientNetB3", "EfficientNet"),
                                           ("SqueezeNet1_1", "SqueezeNet"), ("MobileNetV2", "MobileNetV2"),
                                           ("ShuffleNetV1_g3_x1_5", "ShuffleNetV1")]] == \
        ["x0.25", "B3", "1.1", "x1.0", "g3_x1.5"]


# --------------------------------------------------------------------------- training-log plots


def _synthetic_log(epochs=3, iters=4):
    lines = []
    for e in range(1, epochs + 1):
        for i in range(1, iters + 1):
            step = (e - 1) * iters + i
            lines.append(f"[2026/01/01 00:00:{step:02d}] ppnets INFO: [Train][Epoch {e}/{epochs}][Iter {i}/{iters}] "
                         f"lr: {0.1 / step:.6f}, loss: {2.0 / step:.5f}, top1: {min(1.0, 0.1 * step):.5f}, "
                         f"top5: 1.00000, batch_cost: 0.10000 s, reader_cost: 0.00100 s, ips: 160.00 samples/s, "
                         f"eta: 0:00:{10 - e:02d}")
        lines.append(f"[2026/01/01 00:01:00] ppnets INFO: [Train][Epoch {e}/{epochs}][Avg] loss: {2.0 / e:.5f}")
        top1 = {1: 0.5, 2: 0.8, 3: 0.7}.get(e, 0.6)
        lines.append(f"[2026/01/01 00:01:00] ppnets INFO: [Eval][Epoch {e}][Avg] loss: {1.0 / e:.5f}, "
                     f"top1: {top1:.5f}, top5: 1.00000, samples: 30, time: 0.10 s")
        lines.append(f"[2026/01/01 00:01:00] ppnets INFO: [Eval][Epoch {e}][best top1: 0.80000 at epoch 2]")
    return "\n".join(lines) + "\n"


def test_parse_log_and_plot(tmp_path):
    run = tmp_path / "MobileNetV2_x0_25"
    run.mkdir()
    (run / "train.log").write_text(_synthetic_log(), encoding="utf-8")
    log = parse_log(str(run))
    x, lr = log.train_series("lr")
    assert x[0] == pytest.approx(0.25) and x[-1] == pytest.approx(3.0) and len(x) == 12
    assert lr[3] == pytest.approx(0.025)
    assert log.eval_series("top1") == ([1, 2, 3], [0.5, 0.8, 0.7])
    assert best_eval(log) == (2, 0.8) and last_eval(log) == 0.7
    out = plot_log(str(run / "train.log"))
    assert out == str(run / "train_curves.png")
    _png_ok(out)
    # the CLI: exit 0 and a named output
    tool = _tool("plot_log")
    tool.main([str(run), "--out", str(tmp_path / "curves.png")])
    _png_ok(str(tmp_path / "curves.png"))


def test_log_restart_keeps_latest_run_and_errors(tmp_path):
    path = tmp_path / "train.log"
    first = _synthetic_log(epochs=2, iters=2)
    second = first.replace("loss: ", "loss: 9")  # a second run in the same directory, different losses
    path.write_text(first + second, encoding="utf-8")
    _, loss = parse_log(str(path)).train_series("loss")
    assert len(loss) == 4 and all(v >= 9 for v in loss)
    with pytest.raises(DataError, match="training log not found"):
        parse_log(str(tmp_path / "missing.log"))
    (tmp_path / "other.log").write_text("hello\n", encoding="utf-8")
    with pytest.raises(DataError, match="no '\\[Train\\]"):
        parse_log(str(tmp_path / "other.log"))
    evals = tmp_path / "evalrun" / "Net"
    evals.mkdir(parents=True)
    (evals / "eval.log").write_text("[x] ppnets INFO: [Eval][Avg] loss: 0.3, top1: 0.91234, top5: 1.0\n",
                                    encoding="utf-8")
    assert read_accuracy(str(tmp_path / "evalrun"), "Net") == (0.91234, str(evals / "eval.log"))
    assert read_accuracy(str(tmp_path / "evalrun"), "Other") == (None, "")


def test_count_params_counts_trainable_weights_only():
    from ppnets.arch.layers import ConvBNLayer
    layer = ConvBNLayer(3, 4, 3)
    assert count_params(layer) == 4 * 3 * 9 + 2 * 4      # BN running mean/variance are not counted
    layer.conv.weight.stop_gradient = True               # nor frozen weights
    assert count_params(layer) == 2 * 4
    with pytest.raises(TypeError):
        count_params(layer, trainable_only=False)        # the option that counted the statistics is gone


def test_zoo_class_num_reaches_the_csv_and_the_chart_title(tmp_path, monkeypatch):
    import dataclasses

    import matplotlib.axes

    from ppnets.analysis.zoo import measure_zoo, read_csv, write_csv
    from ppnets.analysis.zoo_plot import plot_zoo
    entries = measure_zoo(["MobileNetV3_small_x0_35"], latency=False, class_num=10)
    assert entries[0].class_num == 10
    back, _ = read_csv(write_csv(entries, str(tmp_path / "ten.csv"), []))
    assert back[0].class_num == 10
    default = [dataclasses.replace(entries[0], class_num=1000)]
    header = open(write_csv(default, str(tmp_path / "default.csv"), []), encoding="utf-8").readline()
    assert "class_num" not in header                       # the default CSV keeps its columns
    titles = []
    real = matplotlib.axes.Axes.set_title
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title",
                        lambda self, label, *a, **kw: titles.append(label) or real(self, label, *a, **kw))
    plot_zoo(back, str(tmp_path / "a"))
    plot_zoo(default, str(tmp_path / "b"))
    assert titles == ["Parameters vs compute of 1 ppnets models (batch 1, 224×224 input, 10 classes)",
                      "Parameters vs compute of 1 ppnets models (batch 1, 224×224 input, 1000 classes)"]
