"""Hostile and out-of-domain configs: YAML bombs, deep nesting, huge files, duplicate keys,
values of the right type but outside their domain (docs/reliability.md, "Config and command line").

Resource bombs run the real script in a subprocess whose address space is capped, so an
unbounded expansion would fail with a MemoryError (a traceback) instead of the one-line error.
"""
from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from helpers.runs import REPO
from helpers.cli import CONFIG, train_args, user_error, user_errors

#: the address-space cap of the bomb subprocesses: tools/train.py runs in 1 GiB
MEMORY_CAP = 1 << 30


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_capped(args, timeout=120):
    """``tools/train.py args`` in a subprocess limited to :data:`MEMORY_CAP` of address space."""
    return subprocess.run([sys.executable, "tools/train.py", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=_capped)


def _one_line(r) -> str:
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ppnets: error: "), r.stderr[-2000:]
    return lines[0][len("ppnets: error: "):]


def _laughs(levels: int = 9, anchor: str = "l") -> str:
    """YAML anchors ``l0 … l{levels-1}``, each a list of nine of the previous: 9**levels leaves."""
    lines = [f"- &{anchor}0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"- &{anchor}{i} [{', '.join([f'*{anchor}{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines)


@pytest.mark.parametrize("where", ["Arch.name", "Global.output_dir", "transform_ops"])
def test_a_billion_laughs_config_is_one_line_in_bounded_memory(where, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    body = {"Arch.name": f"Arch:\n  name: *l8\n",
            "Global.output_dir": f"Global:\n  output_dir: *l8\n",
            "transform_ops": "DataLoader:\n  Train:\n    dataset:\n      transform_ops: *l8\n"}[where]
    bomb.write_text(f"_bombs:\n{_laughs()}\n_base_: {CONFIG}\n{body}")
    msg = _one_line(run_capped(["-c", str(bomb)]))
    assert msg == f"{bomb}: expands to more than 100,000 values (YAML aliases repeating large blocks?); a config " \
                  "has a few hundred"


def test_a_billion_laughs_override_value(tmp_path):
    value = "[" + ", ".join(["&a [x, x, x, x, x, x, x, x, x, x]"] + ["*a"] * 9) + "]"
    nested = value
    for level in range(6):  # each level repeats the previous ten times
        nested = f"[&b{level} {nested}, " + ", ".join([f"*b{level}"] * 9) + "]"
    msg = _one_line(run_capped(["-c", CONFIG, "-o", f"Arch.name={nested}"]))
    assert msg.startswith(f"override 'Arch.name=[&b5 [&b4") and msg.endswith(
        ": expands to more than 100,000 values (YAML aliases repeating large blocks?); a config has a few hundred")


@pytest.mark.parametrize("style", ["flow", "block"])
def test_yaml_nested_20000_levels(style, tmp_path):
    deep = tmp_path / "deep.yaml"
    if style == "flow":
        deep.write_text("Global: " + "[" * 20000 + "]" * 20000 + "\n")
    else:
        deep.write_text("Global: \n  " + "- " * 20000 + "x\n")  # compact nested block sequences
    msg = _one_line(run_capped(["-c", str(deep)]))
    assert msg.startswith(f"{deep}: line ") and msg.endswith(": nested deeper than 64 levels")


def test_a_config_file_too_large(tmp_path, capsys):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\nGlobal: {epochs: 1}\n")
    assert user_error("train", ["-c", str(big)], capsys) == \
        f"{big}: larger than 1 MiB, which no config is (is it a config file?)"


def test_duplicate_keys_are_refused_with_both_lines(tmp_path, capsys):
    dup = tmp_path / "dup.yaml"
    dup.write_text(f"_base_: {CONFIG}\nGlobal:\n  epochs: 3\n  seed: 1\nArch:\n  name: MobileNetV2_x0_25\n"
                   "Global:\n  epochs: 5\n")
    assert user_error("train", ["-c", str(dup)], capsys) == (
        f"{dup}: line 7 column 1: duplicate key 'Global' (first on line 2); YAML would keep only the last one and "
        "silently drop the first — merge them into one")


def test_merge_keys_are_not_duplicates():
    from ppnets.config import yaml_load
    text = "a: &x {k: 1, j: 0}\nb: &y\n  <<: *x\n  k: 2\nc:\n  <<: *y\n  k: 3\n"
    assert yaml_load(text, "f.yaml") == {"a": {"k": 1, "j": 0}, "b": {"k": 2, "j": 0}, "c": {"k": 3, "j": 0}}


def test_a_utf8_bom_config_loads(tmp_path):
    from ppnets.config import load_config
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + f"_base_: {CONFIG}\nGlobal:\n  epochs: 3\n".encode())
    assert load_config(str(bom))["Global"]["epochs"] == 3


@pytest.mark.parametrize("override, message", [
    ("Global.seed=-1", "Global.seed: expected a number >= 0, got -1"),
    ("Global.seed=18446744073709551616", "Global.seed: expected a number that fits in 64 bits, got 18446744073709551616"),
    ("Global.seed=4294967296", "Global.seed: expected a number <= 4294967295, got 4294967296"),
    ("Optimizer.lr.learning_rate=.nan", "Optimizer.lr.learning_rate: expected a finite number, got nan"),
    ("Optimizer.lr.learning_rate=-0.1", "Optimizer.lr.learning_rate: expected a non-negative number, got -0.1"),
    ("Optimizer.lr.learning_rate=.inf", "Optimizer.lr.learning_rate: expected a finite number, got inf"),
    ("Arch.scale=-0.5", "Arch.scale: expected a number > 0, got -0.5"),
    ("Arch.scale=1000", "Arch.scale: expected a number <= 8, got 1000.0"),
    ("Arch.dropout=1", "Arch.dropout: expected a number < 1, got 1.0"),
    ("Arch.dropout=-0.1", "Arch.dropout: expected a number >= 0, got -0.1"),
    ("Global.epochs=2147483648", "Global.epochs: expected a number <= 1000000, got 2147483648"),
    ("Global.epochs=99999999999999999999999", "Global.epochs: expected a number that fits in 64 bits, "
                                              "got 99999999999999999999999"),
    ("Arch.class_num=1000000000", "Arch.class_num: expected a number <= 100000, got 1000000000"),
    ("Global.image_shape=[3, 200000, 200000]", "Global.image_shape: expected numbers <= 16384, got [3, 200000, 200000]"),
    ("DataLoader.Train.loader.num_workers=100000", "DataLoader.Train.loader.num_workers: expected a number <= 256, "
                                                   "got 100000"),
    ("EMA.decay=1.0", "EMA.decay: expected a number < 1, got 1.0"),
    ("Optimizer.clip_norm=.nan", "Optimizer.clip_norm: expected a finite number, got nan"),
    ("Optimizer.momentum=1.5", "Optimizer.momentum: expected a value in [0, 1), got 1.5"),
    ("Optimizer.lr.warmup_start_lr=-1", "Optimizer.lr.warmup_start_lr: expected a non-negative number, got -1.0"),
    ("Metric.Eval.0={TopkAcc: {topk: [0]}}", "TopkAcc.topk: expected a non-empty list of integers >= 1 (k of top-k "
                                             "accuracy), got [0]"),
    ("Metric.Eval.0={TopkAcc: {topk: []}}", "TopkAcc.topk: expected a non-empty list of integers >= 1 (k of top-k "
                                            "accuracy), got []"),
])
def test_values_of_the_right_type_outside_their_domain(override, message, capsys):
    assert user_error("train", ["-c", CONFIG, "-o", override], capsys) == message


@pytest.mark.parametrize("override, message", [
    ("DataLoader.Train.dataset.transform_ops.1={RandCropImage: {size: 32, scale: [0, 1]}}",
     "RandCropImage.scale: expected two numbers [min, max] with 0 < min <= max, got [0.0, 1.0]"),
    ("DataLoader.Train.dataset.transform_ops.1={ResizeImage: {size: 200000}}",
     "ResizeImage.size: expected at most 16384 px per side, got 200000"),
    ("DataLoader.Train.dataset.batch_transform_ops=[{MixupOperator: {alpha: -1}}]",
     "MixupOperator.alpha: expected a positive number (the Beta(α, α) parameter), got -1.0"),
    ("Optimizer.momentum=-3", "Optimizer.momentum: expected a value in [0, 1), got -3.0"),
])
def test_component_options_are_checked_when_the_config_loads(override, message, capsys):
    """--print-config only loads the config: the transform/batch op/optimizer is built once there."""
    assert user_error("train", ["-c", CONFIG, "-o", override, "--print-config"], capsys) == message


@pytest.mark.parametrize("override, shown", [("Global=5", "5"), ("Arch=[1, 2]", "[1, 2]"),
                                             ("DataLoader=text", "'text'")])
def test_a_section_overridden_by_a_scalar_is_one_line(override, shown, capsys):
    """Before anything reads the section (PaddleClas's key mapping read Global.epochs of the int 5)."""
    section = override.split("=")[0]
    assert user_error("train", ["-c", CONFIG, "-o", override], capsys) == (
        f"{section}: expected a section (a mapping of its keys), got {shown}; an override sets one key: "
        f"-o {section}.key=value")


def test_long_values_are_abbreviated_in_messages(capsys):
    msg = user_error("train", ["-c", CONFIG, "-o", "Arch.name=[" + ", ".join(["abcdefgh"] * 5000) + "]"], capsys)
    assert msg.startswith("Arch.name: expected str, got ['abcdefgh', ") and len(msg) < 200


def test_yaml_nesting_limit_allows_real_configs():
    """Every shipped config loads: the limits are far above what a config needs."""
    import glob
    from ppnets.config import load_config
    paths = [p for p in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True) if "_base_" not in p]
    assert len(paths) > 50
    for path in paths:
        load_config(path)


# ----------------------------------------------------------------------------- numbers and component options

@pytest.mark.parametrize("override, message", [
    ("Global.print_batch_step=0", "Global.print_batch_step: expected a number >= 1, got 0"),
    ("Global.eval_interval=0", "Global.eval_interval: expected a number >= 1, got 0"),
    ("Global.update_freq=0", "Global.update_freq: expected a number >= 1, got 0"),
    ("Global.save_steps=-3", "Global.save_steps: expected a number >= 0, got -3"),
    ("Infer.batch_size=0", "Infer.batch_size: expected a number >= 1, got 0"),
    ("Global.image_shape=[3,32]", "Global.image_shape: expected 3 items, got [3, 32]"),
    ("Global.image_shape=[3,0,32]", "Global.image_shape: expected numbers >= 1, got [3, 0, 32]"),
])
def test_numbers_out_of_range(trained, tmp_path, capsys, override, message):
    args = train_args(trained["data"], str(tmp_path / "o")) + ["-o", override]
    assert user_error("train", args, capsys) == message


@pytest.mark.parametrize("overrides, message", [
    (["Optimizer.lr={name: Cosine}"], "Optimizer.lr.Cosine: missing required key 'learning_rate'"),
    (["Optimizer.lr.name=Piecewise"], "Optimizer.lr.Piecewise: missing required key 'decay_epochs'\n"
                                      "Optimizer.lr.Piecewise: missing required key 'values'"),
    (["DataLoader.Train.dataset.seed=1"],
     "DataLoader.Train.dataset.ImageFolder: 'seed' is set by ppnets itself, remove it from the config"),
    (["Optimizer.regularizer={name: L2, coeff: abc}"], "Optimizer.regularizer.coeff: expected a number >= 0, got 'abc'"),
    (["Metric.Eval=[]"], "Metric.Eval: empty, but evaluating during training needs a metric to pick best_model, "
                         "e.g. [{TopkAcc: {topk: [1, 5]}}] (or Global.eval_during_train: false)"),
])
def test_component_options_checked_as_a_whole(trained, tmp_path, capsys, overrides, message):
    args = train_args(trained["data"], str(tmp_path / "o")) + [x for o in overrides for x in ("-o", o)]
    assert "\n".join(user_errors("train", args, capsys)) == message


def test_component_name_must_be_a_string(trained, tmp_path, capsys):
    args = train_args(trained["data"], str(tmp_path / "o")) + ["-o", "Optimizer.lr.name=[Cosine]"]
    assert user_error("train", args, capsys).startswith(
        "Optimizer.lr.name: expected the name of a LR schedule, got ['Cosine']; valid: Constant, Cosine")
