"""Config loading, overrides, inheritance and validation errors."""
from __future__ import annotations

import os

import pytest
import yaml

from ppnets.config import load_config, parse_overrides
from ppnets.errors import ConfigError

from helpers.runs import REPO, load_tool

DEFAULT = os.path.join(REPO, "configs", "mobilenetv2.yaml")


def write(path, data) -> str:
    with open(path, "w") as f:
        f.write(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def test_default_config_loads_and_fills_defaults():
    cfg = load_config(DEFAULT)
    assert cfg["Arch"]["name"].startswith("MobileNetV2")
    assert cfg["Global"]["image_shape"] == [3, 32, 32]
    assert cfg["Export"]["softmax"] is True          # default filled
    assert cfg["Optimizer"]["regularizer"]["coeff"] == pytest.approx(4e-5)


def test_overrides_parse_yaml_scalars_and_list_indices():
    cfg = load_config(DEFAULT, ["Global.epochs=5", "Arch.scale=0.5", "Arch.name=MobileNetV2",
                                "Global.image_shape=[3, 64, 64]",
                                "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=64",
                                "Optimizer.lr.learning_rate=1e-3"])
    assert cfg["Global"]["epochs"] == 5
    assert cfg["Arch"]["scale"] == 0.5
    assert cfg["Global"]["image_shape"] == [3, 64, 64]
    assert cfg["DataLoader"]["Train"]["dataset"]["transform_ops"][1]["RandCropImage"]["size"] == 64
    assert cfg["Optimizer"]["lr"]["learning_rate"] == pytest.approx(1e-3)


def test_override_values_are_never_evaluated():
    parsed = parse_overrides(["Global.output_dir=__import__('os').getcwd()"])
    assert parsed == [(["Global", "output_dir"], "__import__('os').getcwd()")]


@pytest.mark.parametrize("item", ["Global.epochs", "=5", "Global..epochs=5"])
def test_bad_override_syntax(item):
    with pytest.raises(ConfigError, match=r"bad override .*expected Section\.key=value"):
        parse_overrides([item])


def test_override_list_index_out_of_range():
    with pytest.raises(ConfigError, match=r"index 9 out of range \(the list has 4 items\)"):
        load_config(DEFAULT, ["DataLoader.Train.dataset.transform_ops.9.ToCHWImage=null"])


def test_base_inheritance_deep_merges(tmp_path):
    child = write(tmp_path / "child.yaml", f"_base_: {DEFAULT}\nGlobal:\n  epochs: 3\nArch:\n  name: MobileNetV2_x0_25\n")
    cfg = load_config(child)
    assert cfg["Global"]["epochs"] == 3
    assert cfg["Global"]["image_shape"] == [3, 32, 32]        # kept from the base
    assert cfg["Arch"] == {"name": "MobileNetV2_x0_25", "class_num": 10}


def test_base_chain_lists_replace_and_delete(tmp_path):
    base = write(tmp_path / "base.yaml", {"Arch": {"name": "MobileNetV2", "class_num": 10, "scale": 0.5},
                                          "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 5]}}]}})
    mid = write(tmp_path / "mid.yaml", {"_base_": "base.yaml", "Metric": {"Eval": [{"TopkAcc": {"topk": [1]}}]}})
    top = write(tmp_path / "top.yaml", {"_base_": ["mid.yaml"],
                                        "Arch": {"_delete_": True, "name": "MobileNetV2_x0_5", "class_num": 3}})
    cfg = load_config(top)
    assert cfg["Metric"]["Eval"] == [{"TopkAcc": {"topk": [1]}}]
    assert cfg["Arch"] == {"name": "MobileNetV2_x0_5", "class_num": 3}   # 'scale' was deleted, not merged


def test_base_cycle_is_an_error(tmp_path):
    write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="inheritance cycle"):
        load_config(str(tmp_path / "a.yaml"))


def test_missing_config_file():
    with pytest.raises(ConfigError, match=r"^config file not found: /nonexistent.yaml$"):
        load_config("/nonexistent.yaml")


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.yaml", "Global:\n  epochs: [1, 2\nArch: {}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: line \d+ column \d+: malformed YAML"):
        load_config(path)


def test_unknown_section_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown section 'Optimiser' \(did you mean 'Optimizer'\?\)"):
        load_config(DEFAULT, ["Optimiser.name=SGD"])


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"Global: unknown key 'epoch' \(did you mean 'epochs'\?\)"):
        load_config(DEFAULT, ["Global.epoch=3"])


def test_wrong_type_names_key_value_and_type():
    with pytest.raises(ConfigError, match=r"^Global\.epochs: expected int, got 'ten' \(str\)$"):
        load_config(DEFAULT, ["Global.epochs=ten"])


def test_wrong_type_of_a_model_kwarg():
    with pytest.raises(ConfigError, match=r"Arch\.scale: expected float, got 'big' \(str\)"):
        load_config(DEFAULT, ["Arch.scale=big"])


def test_choice_error():
    with pytest.raises(ConfigError, match=r"Global\.device: expected one of cpu, gpu, got 'cpuu'"):
        load_config(DEFAULT, ["Global.device=cpuu"])


@pytest.mark.parametrize("override, pattern", [
    ("Arch.name=MobileNetV9", r"Arch\.name: unknown model 'MobileNetV9'.*; closest: MobileNetV[0-9]"),
    ("DataLoader.Train.dataset.transform_ops.0=RandomFlip",
     r"transform_ops\.0: expected one \{Name: \{options\}\} mapping"),
    ("Optimizer.name=Adamm", r"Optimizer\.name: unknown optimizer 'Adamm' \(did you mean 'Adam'\?\)"),
    ("Optimizer.lr.name=Cosin", r"Optimizer\.lr\.name: unknown LR schedule 'Cosin' \(did you mean 'Cosine'\?\)"),
    ("Loss.Train.0={CrossEntropy: {}}", r"Loss\.Train\.0: unknown loss 'CrossEntropy'.*valid: CELoss, .*FocalLoss"),
    ("Metric.Eval.0={Accuracy: {}}", r"Metric\.Eval\.0: unknown metric 'Accuracy'.*valid: AccuracyScore, .*TopkAcc"),
    ("DataLoader.Train.dataset.transform_ops.1={RandomCrop: {size: 3}}",
     r"transform_ops\.1: unknown transform op 'RandomCrop'"),
    ("DataLoader.Train.dataset.transform_ops.1.RandCropImage.sise=3",
     r"RandCropImage: unknown key 'sise' \(did you mean 'size'\?\)"),
    ("DataLoader.Train.dataset.name=ImageFolders", r"unknown dataset 'ImageFolders' \(did you mean 'ImageFolder'\?\)"),
    ("Optimizer.momentun=0.9", r"Optimizer: unknown key 'momentun' \(did you mean 'momentum'\?\)"),
])
def test_unknown_component_names(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(DEFAULT, [override])


def test_scientific_notation_without_dot_is_a_float(tmp_path):
    path = write(tmp_path / "c.yaml", f"_base_: {DEFAULT}\nOptimizer:\n  lr:\n    learning_rate: 1e-3\n")
    assert load_config(path)["Optimizer"]["lr"]["learning_rate"] == pytest.approx(1e-3)


def test_yaml_python_tags_are_refused(tmp_path):
    path = write(tmp_path / "evil.yaml", "Global: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(path)


def test_config_reference_lists_every_global_key():
    table = load_tool("config_reference").config_reference()
    for key in ("Global.epochs", "Global.checkpoints", "DataLoader.Train.sampler.batch_size", "Export.softmax"):
        assert f"`{key}`" in table


def test_every_shipped_config_validates():
    configs = []
    for dirpath, _, files in os.walk(os.path.join(REPO, "configs")):
        configs += [os.path.join(dirpath, f) for f in files if f.endswith(".yaml")]
    assert configs
    for path in configs:
        load_config(path)


def test_docs_config_reference_is_current():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, os.path.join(REPO, "tools", "config_reference.py")], capture_output=True,
                         text=True, check=True).stdout.strip()
    doc = open(os.path.join(REPO, "docs", "configuration.md"), encoding="utf-8").read()
    assert out in doc, "docs/configuration.md is stale: run python tools/config_reference.py --update docs/configuration.md"


def test_one_default_topk_everywhere():
    """tools/infer.py (Infer.topk of the default config), ppnets predict and ppnets serve print
    the same number of classes by default: 5, PaddleClas's."""
    import ast
    from ppnets.config.schema import SCHEMA

    defaults = {"schema": SCHEMA["Infer"].keys["topk"].default, "config": load_config(DEFAULT)["Infer"]["topk"]}
    for tool in ("predict", "serve"):
        tree = ast.parse(open(os.path.join(REPO, "ppnets", "cli", f"{tool}.py")).read())
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and call.args and getattr(call.args[0], "value", None) == "--topk":
                defaults[tool] = next(k.value.value for k in call.keywords if k.arg == "default")
    assert defaults == {"schema": 5, "config": 5, "predict": 5, "serve": 5}
