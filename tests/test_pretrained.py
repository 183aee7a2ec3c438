"""Published weights: downloads into the caches, digests, mirrors, offline use, timm's hub and layout,
``ppnets.build_model(pretrained=…)``, ``tools/weights.py``, and PaddleClas's configs with ``pretrained: True``.

A real HTTP server on 127.0.0.1 (``ThreadingHTTPServer`` in a thread) serves the files a test makes,
answers 404 for the others, can cut a transfer off mid-body (Content-Length larger than what it sends,
then close), counts requests, and plays the two endpoints of the Hugging Face hub that
``hf_hub_download`` calls (HEAD/GET ``/{repo}/resolve/{revision}/{file}`` with ``X-Repo-Commit``,
``ETag`` and ``Content-Length``). Every cache is a tmp folder (``HOME``, ``PPNETS_HOME``, ``HF_HOME``).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest
from safetensors.numpy import save as save_safetensors

import ppnets
from ppnets.arch.registry import MODELS, TIMM_NAMES, register_model
from ppnets.checkpoint import hub, load_pretrained
from ppnets.checkpoint.models import build_run_model, load_run_weights
from ppnets.checkpoint.pretrained import timm_table, weight_sources
from ppnets.checkpoint.sources import TIMM_HUB, paddleclas_url
from ppnets.checkpoint.weights import fetch_weights
from ppnets.config import load_config
from ppnets.errors import CheckpointError
from ppnets.cli import run
from ppnets.cli import weights as weights_cli
from ppnets.utils.logger import get_logger

from helpers.runs import REPO, load_tool, make_digits_slice
from helpers.weights_server import WeightsServer

HOST = "https://paddle-imagenet-models-name.bj.bcebos.com"


@pytest.fixture(scope="module")
def server():
    s = WeightsServer()
    yield s
    s.httpd.shutdown()


@pytest.fixture
def srv(server):
    server.reset()
    return server


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Every cache in tmp_path; no offline switch, mirror or endpoint from the environment."""
    for var in ("PPNETS_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "PPNETS_PADDLECLAS_MIRROR", "HF_HUB_CACHE",
                "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PPNETS_HOME", str(tmp_path / "ppnets"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    return {"paddleclas": tmp_path / "home" / ".paddleclas" / "weights", "ppnets": tmp_path / "ppnets",
            "hf": tmp_path / "hf" / "hub"}


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def log():
    handler = Records()
    get_logger().addHandler(handler)
    yield handler.lines
    get_logger().removeHandler(handler)


def _pdparams(model) -> bytes:
    from ppnets.checkpoint.serialization import encode
    return encode(model.state_dict(), "w.pdparams")


def _tool_lines(stderr: str) -> list:
    """The tool's own lines of ``stderr`` (not a progress bar's, nor a logging handler's of another test)."""
    return [line for line in stderr.splitlines() if line.startswith("ppnets: ")]


def _numpy(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


# -- plain URLs: PaddleClas's cache -------------------------------------------------------------------------

def test_a_download_shows_progress_then_the_cache_is_used_without_a_request(srv, home, capfd):
    body = os.urandom(300_000)
    srv.files["/w/a_pretrained.pdparams"] = body
    url = f"{srv.url}/w/a_pretrained.pdparams"
    got = hub.fetch_url(url)
    assert got.path == str(home["paddleclas"] / "a_pretrained.pdparams") and open(got.path, "rb").read() == body
    assert "300k/300k" in capfd.readouterr().err  # pooch's progress bar, complete
    digest = hashlib.sha256(body).hexdigest()
    assert (home["paddleclas"] / "SHA256SUMS").read_text() == f"{digest}  a_pretrained.pdparams\n"
    assert hub.fetch_url(url).path == got.path and srv.count("/w/a_pretrained.pdparams") == 1
    assert sorted(os.listdir(home["paddleclas"])) == [".SHA256SUMS.lock", "SHA256SUMS", "a_pretrained.pdparams"]


def test_a_checksum_mismatch_is_an_error_and_nothing_is_cached(srv, home):
    body = os.urandom(50_000)
    srv.files["/w/b.pdparams"] = body
    digest = hashlib.sha256(body).hexdigest()
    with pytest.raises(CheckpointError) as e:
        hub.fetch_url(f"{srv.url}/w/b.pdparams", sha256="ab" * 32)
    assert str(e.value) == (f"{srv.url}/w/b.pdparams: SHA-256 {digest} differs from the pinned "
                            f"Arch.pretrained_sha256 {'ab' * 32}; nothing was cached")
    assert os.listdir(home["paddleclas"]) == []
    # a cached file that changes after its digest was recorded is refused, naming both digests
    path = hub.fetch_url(f"{srv.url}/w/b.pdparams", sha256=digest.upper()).path
    tool = weights_cli
    assert tool.verify() == 1
    with open(path, "r+b") as f:
        f.write(b"\0")
    changed = hashlib.sha256(open(path, "rb").read()).hexdigest()
    with pytest.raises(CheckpointError, match=re.escape(
            f"{path}: SHA-256 {changed} differs from {digest} recorded in {home['paddleclas'] / 'SHA256SUMS'}")):
        fetch_weights(f"{srv.url}/w/b.pdparams")
    with pytest.raises(SystemExit) as exit_:
        run(tool.main, ["verify"])
    assert exit_.value.code == 2


def test_a_transfer_cut_off_mid_body_is_retried_or_refused_never_cached_short(srv, home, monkeypatch):
    body = os.urandom(200_000)
    srv.files["/w/c.pdparams"] = body
    srv.cuts["/w/c.pdparams"] = (10_000, "once")
    path = hub.fetch_url(f"{srv.url}/w/c.pdparams").path  # pooch tries again: the second transfer is whole
    assert open(path, "rb").read() == body and srv.count("/w/c.pdparams") == 2
    srv.files["/w/d.pdparams"] = body
    srv.cuts["/w/d.pdparams"] = (10_000, "always")
    monkeypatch.setattr(hub, "RETRIES", 0)
    dest = home["paddleclas"] / "d.pdparams"
    with pytest.raises(CheckpointError) as e:
        hub.fetch_url(f"{srv.url}/w/d.pdparams")
    message = str(e.value)
    assert message.startswith(f"cannot download {srv.url}/w/d.pdparams (ChunkedEncodingError: ")
    assert message.endswith(f"; download it yourself and put it at {dest}") and "\n" not in message
    assert sorted(os.listdir(home["paddleclas"])) == [".SHA256SUMS.lock", "SHA256SUMS", "c.pdparams"]


def test_404_and_offline_are_one_line_errors_naming_the_url_and_the_path(srv, home, monkeypatch, capsys):
    url, dest = f"{srv.url}/w/missing.pdparams", home["paddleclas"] / "missing.pdparams"
    tool = weights_cli
    with pytest.raises(SystemExit) as exit_:
        run(tool.main, ["download", url])
    assert exit_.value.code == 2
    assert _tool_lines(capsys.readouterr().err) == [f"ppnets: error: cannot download {url} (HTTP 404 Not Found); "
                                                    f"download it yourself and put it at {dest}"]
    assert srv.count("/w/missing.pdparams") == 1  # a client error is not retried
    monkeypatch.setenv("PPNETS_OFFLINE", "1")
    srv.requests.clear()
    with pytest.raises(CheckpointError) as e:
        hub.fetch_url(url)
    assert str(e.value) == (f"cannot download {url}: offline (PPNETS_OFFLINE=1); download it yourself and put it "
                            f"at {dest}")
    dest.write_bytes(b"put here by hand")  # the file at that path is used, offline, without a request
    run(tool.main, ["download", url])
    assert f"file:   {dest}" in capsys.readouterr().out and srv.requests == []
    assert not [f for f in os.listdir(home["paddleclas"]) if f.startswith(".download")]


# -- PaddleClas's weights by name, the mirror, fine-tuning, the pin ----------------------------------------

def test_paddleclas_weights_through_the_mirror_and_a_fine_tune_to_other_classes(srv, home, monkeypatch, log):
    imagenet = ppnets.build_model("ShuffleNetV2_x0_25")  # 1000 classes: stands in for PaddleClas's file
    srv.files["/dygraph/ShuffleNetV2_x0_25_pretrained.pdparams"] = _pdparams(imagenet)
    monkeypatch.setenv("PPNETS_PADDLECLAS_MIRROR", srv.url + "/")
    model = ppnets.build_model("ShuffleNetV2_x0_25", pretrained=True, num_classes=3)
    assert srv.count("/dygraph/ShuffleNetV2_x0_25_pretrained.pdparams") == 1
    ours, theirs = _numpy(model), _numpy(imagenet)
    assert all(np.array_equal(ours[k], theirs[k]) for k in ours if not k.startswith("_fc."))
    assert ours["_fc.weight"].shape == (512, 3)  # the classifier starts afresh, and the log says so once
    skipped = [line for line in log if line.startswith("pretrained skipped")]
    assert skipped == ["pretrained skipped (2): _fc.weight [512, 1000] vs model [512, 3], _fc.bias [1000] vs "
                       "model [3]"]
    cached = home["paddleclas"] / "ShuffleNetV2_x0_25_pretrained.pdparams"
    assert cached.is_file()
    # the config key beats the variable; ssld follows PaddleClas's file name rule
    monkeypatch.setenv("PPNETS_PADDLECLAS_MIRROR", "http://127.0.0.1:9/unused")
    arch = {"name": "ShuffleNetV2_x0_25", "pretrained_mirror": srv.url}
    fresh = ppnets.build_model("ShuffleNetV2_x0_25")
    with pytest.raises(CheckpointError, match=re.escape(
            f"cannot download {srv.url}/dygraph/ShuffleNetV2_x0_25_ssld_pretrained.pdparams (HTTP 404 Not Found); "
            f"download it yourself and put it at {home['paddleclas']}/ShuffleNetV2_x0_25_ssld_pretrained.pdparams")):
        load_run_weights(fresh, arch, "ssld", "train", strict=False)
    # a pinned digest: checked for published weights in every mode, for a run's own files only when training
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    arch["pretrained_sha256"] = "0" * 64
    with pytest.raises(CheckpointError, match=f"SHA-256 {digest} differs from the pinned Arch.pretrained_sha256 "
                                              f"{'0' * 64}"):
        load_run_weights(fresh, arch, "paddleclas", "eval", strict=True)
    own = str(cached)  # as a local path: pinned when a training starts from it, not when it is evaluated
    with pytest.raises(CheckpointError, match="differs from the pinned"):
        load_run_weights(fresh, arch, own, "train", strict=False)
    load_run_weights(fresh, arch, own, "eval", strict=True)
    arch["pretrained_sha256"] = digest
    load_run_weights(fresh, arch, "paddleclas", "train", strict=False)
    # the two keys are Arch keys of a config, not arguments of the model; unset, they are absent
    default = os.path.join(REPO, "configs", "mobilenetv2.yaml")
    cfg = load_config(default, [f"Arch.pretrained_sha256={digest}", f"Arch.pretrained_mirror={srv.url}"])
    assert cfg["Arch"]["pretrained_sha256"] == digest and isinstance(build_run_model(cfg["Arch"], "train"), nn.Layer)
    assert "pretrained_sha256" not in load_config(default)["Arch"]
    assert srv.count("/dygraph/ShuffleNetV2_x0_25_pretrained.pdparams") == 1


def test_paddleclas_urls_follow_paddleclas_s_rules():
    """MODEL_URLS' folders, ``use_ssld``'s ``_ssld_pretrained`` file, and PP-HGNetV2's loader, which asks for
    the SSLD stage-1 file whether or not ``use_ssld`` is set (PaddleClas d178931f)."""
    assert paddleclas_url("MobileNetV2", ssld=True) == f"{HOST}/dygraph/MobileNetV2_ssld_pretrained.pdparams"
    legendary = f"{HOST}/dygraph/legendary_models"
    assert paddleclas_url("MobileNetV1_x0_25") == f"{legendary}/MobileNetV1_x0_25_pretrained.pdparams"
    stage1 = f"{HOST}/dygraph/legendary_models/PPHGNetV2_B0_ssld_stage1_pretrained.pdparams"
    assert paddleclas_url("PPHGNetV2_B0") == paddleclas_url("PPHGNetV2_B0", ssld=True) == stage1
    assert paddleclas_url("ShuffleNetV1_g3_x1_0") is None


def test_models_with_published_weights_and_the_list_command(home, capsys):
    with_weights = ppnets.list_models(pretrained=True)
    assert "MobileNetV3_large_x1_0" in with_weights and "EfficientNetB7" in with_weights
    assert not [n for n in with_weights if n.startswith("ShuffleNetV1")]  # nobody publishes ShuffleNetV1's
    assert ppnets.list_models("*small_x1_0", pretrained=True) == ["MobileNetV3_small_x1_0"]
    sources = weight_sources("MobileNetV3_small_x1_0")
    assert [(s.source, s.top1, s.location) for s in sources] == [
        ("paddleclas", 68.24, f"{HOST}/dygraph/legendary_models/MobileNetV3_small_x1_0_pretrained.pdparams"),
        ("ssld", 71.29, f"{HOST}/dygraph/legendary_models/MobileNetV3_small_x1_0_ssld_pretrained.pdparams")]
    run(weights_cli.main, ["list", "*small_x1_0"])
    assert capsys.readouterr().out.splitlines() == [
        "model                   source      top-1  size  weights                                          cached",
        "MobileNetV3_small_x1_0  paddleclas  68.24  224   MobileNetV3_small_x1_0_pretrained.pdparams       -",
        "MobileNetV3_small_x1_0  ssld        71.29  224   MobileNetV3_small_x1_0_ssld_pretrained.pdparams  -"]


# -- timm: the hub, the layout --------------------------------------------------------------------------------

class TinyTimm(nn.Layer):
    """A conv, a BatchNorm and a Linear head: enough of timm's layout to convert (keys kept as timm's)."""

    def __init__(self, class_num: int = 1000) -> None:
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, stride=2, padding=1, bias_attr=False)
        self.bn = nn.BatchNorm2D(8)
        self.head = nn.Linear(8, class_num)

    def forward(self, x):
        return self.head(F.relu(self.bn(self.conv(x))).mean(axis=[2, 3]))


@pytest.fixture
def tiny_timm(monkeypatch):
    """``TinyTimmNet``, registered as timm's ``tinytimm_test`` (published as ``timm/tinytimm_test.t1_in1k``)."""
    register_model("TinyTimmNet", TinyTimm, family="TinyTimm", paddleclas=False, timm=("tinytimm_test",))
    monkeypatch.setitem(TIMM_HUB, "tinytimm_test", (("t1_in1k", 32, 50.5),))
    yield "TinyTimmNet"
    MODELS._items.pop("TinyTimmNet")
    TIMM_NAMES.pop("tinytimm_test")


def _timm_file(model) -> bytes:
    """``model``'s weights as timm saves them: BatchNorm running_* buffers, Linear weights [out, in]."""
    out = {"bn.num_batches_tracked": np.array(12, dtype=np.int64)}
    for key, value in _numpy(model).items():
        key = key.replace("bn._mean", "bn.running_mean").replace("bn._variance", "bn.running_var")
        out[key] = np.ascontiguousarray(value.T if key == "head.weight" else value)
    return save_safetensors(out)


def test_timm_hub_weights_through_hf_endpoint(srv, home, monkeypatch, tiny_timm):
    paddle.seed(3)
    reference = ppnets.build_model(tiny_timm)
    srv.hub[("timm/tinytimm_test.t1_in1k", "model.safetensors")] = _timm_file(reference)
    monkeypatch.setenv("HF_ENDPOINT", srv.url)
    import huggingface_hub.constants  # its user-agent telemetry would fetch a registry from the real hub
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    resolve = "/timm/tinytimm_test.t1_in1k/resolve/main/model.safetensors"
    model = ppnets.build_model(tiny_timm, pretrained="timm/tinytimm_test.t1_in1k")
    assert all(np.array_equal(a, _numpy(reference)[k]) for k, a in _numpy(model).items())
    assert srv.requests == [("HEAD", resolve), ("GET", resolve)]  # huggingface_hub's HEAD, then the GET
    snapshot = home["hf"] / "models--timm--tinytimm_test.t1_in1k" / "snapshots" / ("1" * 40) / "model.safetensors"
    assert snapshot.is_file()
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert (home["ppnets"] / "SHA256SUMS").read_text() == f"{digest}  timm/tinytimm_test.t1_in1k/model.safetensors\n"
    # again, by timm's own spelling and by source name: from the cache, no request
    ppnets.build_model(tiny_timm, pretrained="hf-hub:timm/tinytimm_test.t1_in1k")
    ppnets.build_model(tiny_timm, pretrained="timm")
    assert srv.count(resolve) == 2
    assert ppnets.list_models("tinytimm*", pretrained=True) == [tiny_timm]
    assert "| `tinytimm_test` | `TinyTimmNet` | yes | `t1_in1k` 50.50 @ 32 |" in timm_table()
    # a hub file of one timm model does not load into another ppnets model
    with pytest.raises(CheckpointError, match="timm/tinytimm_test.t1_in1k holds timm's tinytimm_test, which is "
                                              "ppnets's TinyTimmNet, not MobileNetV2_x0_25: set Arch.name: "
                                              "TinyTimmNet"):
        load_pretrained(ppnets.build_model("MobileNetV2_x0_25"), "timm/tinytimm_test.t1_in1k", "MobileNetV2_x0_25")
    # offline: what is not cached is one line naming the URL and where to put the file; put there, it is used
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    srv.hub[("timm/tinytimm_test.t2_in1k", "model.safetensors")] = _timm_file(reference)
    dropin = home["ppnets"] / "timm" / "tinytimm_test.t2_in1k.safetensors"
    with pytest.raises(CheckpointError) as e:
        ppnets.build_model(tiny_timm, pretrained="timm/tinytimm_test.t2_in1k")
    assert str(e.value) == (f"cannot download timm/tinytimm_test.t2_in1k: offline (HF_HUB_OFFLINE=1) and not in "
                            f"the Hugging Face cache {home['hf']}; download {srv.url}/timm/tinytimm_test.t2_in1k/"
                            f"resolve/main/model.safetensors and put it at {dropin}")
    dropin.parent.mkdir(parents=True)
    dropin.write_bytes(_timm_file(reference))
    ppnets.build_model(tiny_timm, pretrained="timm/tinytimm_test.t2_in1k")
    assert srv.count("/timm/tinytimm_test.t2_in1k/resolve/main/model.safetensors") == 0
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(CheckpointError, match=re.escape(
            f"cannot download {srv.url}/timm/tinytimm_test.t9_in1k/resolve/main/model.safetensors (HTTP 404")):
        ppnets.build_model(tiny_timm, pretrained="timm/tinytimm_test.t9_in1k")


def test_a_timm_layout_file_converts_whatever_its_path_and_the_tool_writes_it_once(tmp_path, tiny_timm, capsys):
    paddle.seed(4)
    reference = ppnets.build_model(tiny_timm)
    src = tmp_path / "some where" / "exported by timm.safetensors"
    src.parent.mkdir()
    src.write_bytes(_timm_file(reference))
    model = ppnets.build_model(tiny_timm, num_classes=5)
    report = load_pretrained(model, str(src), tiny_timm)  # recognised by its keys, converted in memory
    assert sorted(report["skipped"]) == ["head.bias [1000] vs model [5]", "head.weight [8, 1000] vs model [8, 5]"]
    assert np.array_equal(_numpy(model)["bn._variance"], _numpy(reference)["bn._variance"])
    dst = tmp_path / "converted.pdparams"
    tool = load_tool("convert_weights")
    run(tool.main, ["--model", tiny_timm, "--from", "timm", "--src", str(src), "--dst", str(dst)])
    assert capsys.readouterr().out == f"{tiny_timm}: 7 tensors converted from timm's layout -> {dst}\n"
    written = fetch_weights(str(dst))[0]
    assert written.keys() == _numpy(reference).keys()
    assert all(np.array_equal(v, _numpy(reference)[k]) for k, v in written.items())
    with pytest.raises(SystemExit):  # a ppnets-layout file is not timm's
        run(tool.main, ["--model", tiny_timm, "--from", "timm", "--src", str(dst), "--dst", str(tmp_path / "x")])
    assert _tool_lines(capsys.readouterr().err) == [f"ppnets: error: {dst}: not in timm's layout (no BatchNorm "
                                                    "running_mean/running_var)"]
    broken = dict(fetch_weights(str(src))[0])
    broken.pop("conv.weight")
    (tmp_path / "broken.safetensors").write_bytes(save_safetensors(broken))
    with pytest.raises(CheckpointError, match="timm weights converted to ppnets's layout do not fit TinyTimmNet: "
                                              "1 missing key"):
        load_pretrained(ppnets.build_model(tiny_timm), str(tmp_path / "broken.safetensors"), tiny_timm)


def test_docs_timm_table_is_current():
    doc = open(os.path.join(REPO, "docs", "pretrained.md"), encoding="utf-8").read()
    tool = weights_cli
    assert f"{tool.START}\n{timm_table()}\n{tool.END}" in doc, \
        "docs/pretrained.md is stale: run python tools/weights.py docs --update docs/pretrained.md"


# -- PaddleClas's own configs with Arch.pretrained: True ----------------------------------------------------

PPCLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference", "paddleclas_configs")


def load_module(path: str):
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _file_list(root: str, split: str) -> str:
    lines = [f"{split}/{c}/{f} {c}" for c in sorted(os.listdir(os.path.join(root, split)))
             for f in sorted(os.listdir(os.path.join(root, split, c)))]
    path = os.path.join(root, f"{split}_list.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _small(out: str, root: str, train_list: str, val_list: str, class_num: int) -> list:
    """Data paths, sizes and one epoch on the CPU: the rest of the config runs as written."""
    pairs = {"Global.device": "cpu", "Global.epochs": 1, "Global.output_dir": out, "Arch.class_num": class_num,
             "DataLoader.Train.dataset.image_root": root, "DataLoader.Train.dataset.cls_label_path": train_list,
             "DataLoader.Eval.dataset.image_root": root, "DataLoader.Eval.dataset.cls_label_path": val_list,
             "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size": 32,
             "DataLoader.Eval.dataset.transform_ops.1.ResizeImage.resize_short": 32,
             "DataLoader.Eval.dataset.transform_ops.2.CropImage.size": 32,
             "DataLoader.Train.sampler.batch_size": 16, "DataLoader.Eval.sampler.batch_size": 16,
             "DataLoader.Train.loader.num_workers": 0, "DataLoader.Eval.loader.num_workers": 0,
             "Global.print_batch_step": 1}
    return [x for k, v in pairs.items() for x in ("-o", f"{k}={v}")]


@pytest.mark.slow
@pytest.mark.parametrize("config, model", [("MobileNetV1_multilabel.yaml", "MobileNetV1"),
                                           ("MobileNetV3_small_x1_0.yaml", "MobileNetV3_small_x1_0")])
def test_paddleclas_configs_with_pretrained_true_download_then_reuse_the_weights(config, model, srv, home, tmp_path,
                                                                                monkeypatch):
    """PaddleClas's quick-start multi-label config and its MobileNetV3 config set ``Arch.pretrained: True``:
    the first run downloads the weights (here from the test server, through the mirror variable) into
    PaddleClas's cache and fine-tunes from them, a second run offline uses the cached file."""
    root = str(tmp_path / "data")
    if config.startswith("MobileNetV1"):
        make_pairs = load_module(os.path.join(REPO, "dataset", "digits", "make_multilabel.py")).make_pairs
        make_pairs(root, n_train=16, n_val=8, seed=5)
        lists, class_num = (os.path.join(root, "train_list.txt"), os.path.join(root, "val_list.txt")), 10
        extra = ["-o", f"Infer.PostProcess.class_id_map_file={os.path.join(root, 'label_list.txt')}"]
    else:
        make_digits_slice(root, n_train=6, n_val=3)
        lists, class_num, extra = (_file_list(root, "train"), _file_list(root, "val")), 3, []
    url_path = f"/dygraph/legendary_models/{model}_pretrained.pdparams"
    imagenet = ppnets.build_model(model)
    srv.files[url_path] = _pdparams(imagenet)
    monkeypatch.setenv("PPNETS_PADDLECLAS_MIRROR", srv.url)
    train = load_tool("train").main
    out = str(tmp_path / "out")
    run(train, ["-c", os.path.join(PPCLS, config), *_small(out, root, *lists, class_num), *extra])
    cached = home["paddleclas"] / f"{model}_pretrained.pdparams"
    assert srv.count(url_path) == 1 and cached.read_bytes() == srv.files[url_path]
    log = open(os.path.join(out, model, "train.log"), encoding="utf-8").read()
    assert "config: Arch.pretrained: true — Global.pretrained_model: paddleclas" in log
    assert f"loaded pretrained weights {cached}: {len(imagenet.state_dict()) - 2}/" in log
    assert "pretrained skipped (2): " in log and "[Eval][Epoch 1][Avg]" in log
    monkeypatch.setenv("PPNETS_OFFLINE", "1")
    run(train, ["-c", os.path.join(PPCLS, config), *_small(str(tmp_path / "again"), root, *lists, class_num), *extra])
    assert srv.count(url_path) == 1
    assert f"loaded pretrained weights {cached}" in open(os.path.join(tmp_path, "again", model, "train.log")).read()
