"""tools/predict.py on a damaged export folder: one line naming the file (docs/reliability.md,
"Weights and checkpoints")."""
from __future__ import annotations

import os
import shutil

import pytest
import yaml

from ppnets.cli import run

from test_reliability import _tool, train_args, trained, user_error  # noqa: F401 (trained: a fixture)


@pytest.fixture(scope="module")
def export_dir(trained, tmp_path_factory):  # noqa: F811
    out = str(tmp_path_factory.mktemp("export"))
    run(_tool("export_model"), train_args(trained["data"], out, **{"Global.pretrained_model": trained["prefix"],
                                                                   "Global.save_inference_dir": out}))
    return {"dir": out, "images": os.path.join(trained["data"], "val", "0")}


def _damaged(export_dir, tmp_path, damage):
    bad = str(tmp_path / "bad")
    shutil.copytree(export_dir["dir"], bad)
    damage(bad)
    return bad


def _truncate(path, size=5000):
    with open(path, "r+b") as f:
        f.truncate(size)


def _flip_a_byte(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


def _drop_recorded_files(folder):
    meta_path = os.path.join(folder, "inference.yml")
    meta = yaml.safe_load(open(meta_path))
    meta.pop("files")
    yaml.safe_dump(meta, open(meta_path, "w"))


def test_the_intact_export_predicts(export_dir, capsys):
    run(_tool("predict"), ["--model_dir", export_dir["dir"], "--image", export_dir["images"]])
    assert capsys.readouterr().out.count(": ") >= 4


@pytest.mark.parametrize("damage, expected", [
    (lambda d: open(os.path.join(d, "inference.yml"), "w").close(),
     "{d}/inference.yml: empty; re-export it with tools/export_model.py"),
    (lambda d: open(os.path.join(d, "inference.yml"), "w").write("transform_ops: 5\n"),
     "{d}/inference.yml: 'transform_ops' must be a list of {{Op: {{options}}}} items, got 5; re-export it with "
     "tools/export_model.py"),
    (lambda d: open(os.path.join(d, "inference.yml"), "w").write("[1, 2]\n"),
     "{d}/inference.yml: expected a mapping of sections at the top level, got list"),
    (lambda d: open(os.path.join(d, "inference.yml"), "w").write("a: [1\n"),
     "{d}/inference.yml: line 2 column 1: malformed YAML: expected ',' or ']', but got '<stream end>'"),
    (lambda d: _truncate(os.path.join(d, "inference.pdiparams")),
     "{d}/inference.pdiparams: 5000 bytes, but inference.yml records {size} (truncated, or from another export?); "
     "re-export it with tools/export_model.py"),
    (lambda d: _flip_a_byte(os.path.join(d, "inference.pdiparams")),
     "{d}/inference.pdiparams: its content differs from what inference.yml records (damaged, or from another "
     "export?); re-export it with tools/export_model.py"),
    (lambda d: (_drop_recorded_files(d), _truncate(os.path.join(d, "inference.pdiparams"))),
     "{d}: paddle.inference cannot load the exported model ((Unavailable) Cannot read tensor desc size); re-export "
     "it with tools/export_model.py"),
], ids=["empty-yml", "bad-transform-ops", "yml-not-a-mapping", "malformed-yml", "truncated-pdiparams",
        "changed-pdiparams", "truncated-pdiparams-without-digests"])
def test_a_damaged_export_dir(damage, expected, export_dir, tmp_path, capsys):
    bad = _damaged(export_dir, tmp_path, damage)
    size = os.path.getsize(os.path.join(export_dir["dir"], "inference.pdiparams"))
    msg = user_error("predict", ["--model_dir", bad, "--image", export_dir["images"]], capsys)
    assert msg == expected.format(d=bad, size=size)
