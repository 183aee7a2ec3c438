"""Deploy: ONNX export and a parity test per backend, the auto rule, INT8, PaddleClas's deploy format,
consistent exports.

The all-models ONNX check is ``tools/check_onnx.py``; one model per code path on every backend is
tests/test_zoo_export.py's round trip.
"""
from __future__ import annotations

import json
import os
import re

import numpy as np
import onnx
import paddle
import pytest
import yaml

import ppnets
from ppnets.config import load_config
from ppnets.data.transforms import build_transforms
from ppnets.deploy import quantize as q
from ppnets.export.paddleclas import DEPLOY_CONFIG, LABEL_MAP
from ppnets.deploy.runtimes import AUTO_ORDER, OPENVINO_MIN_PIXELS, auto_backend, resolve_backend
from ppnets.deploy import Predictor
from ppnets.export import export_model
from ppnets.deploy.inputs import iterate_batches, list_inputs
from ppnets.errors import ConfigError, DataError

from helpers.runs import REPO, small_overrides
from helpers.deploy import tool, trained_export
from helpers.models import randomize_batch_norm

#: one model per family (MobileNetV3: HardSwish/HardSigmoid + SE; ShuffleNetV1: grouped 1×1 + shuffle)
@pytest.fixture(scope="module")
def export(digits_slice, tmp_path_factory):
    return trained_export(digits_slice, str(tmp_path_factory.mktemp("deploy")))


def _random_export(name, digits_slice, tmp_path, size=32):
    """An fp32 paddle+ONNX export of ``name`` with random weights and BN statistics, logits out."""
    paddle.seed(0)
    model = ppnets.build_model(name, class_num=4)
    randomize_batch_norm(model, np.random.default_rng(0))
    weights = str(tmp_path / "weights")
    paddle.save(model.state_dict(), weights + ".pdparams")
    cfg = load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"), small_overrides(
        digits_slice, str(tmp_path), **{"Arch.name": name, "Arch.class_num": 4, "Global.pretrained_model": weights,
                                        "Global.image_shape": f"[3,{size},{size}]",
                                        "DataLoader.Eval.dataset.transform_ops.1": f"{{ResizeImage: {{size: {size}}}}}",
                                        "Export.softmax": False, "Export.formats": "[paddle,onnx]"}))
    out = export_model(cfg, str(tmp_path / "inference"))
    return out, yaml.safe_load(open(os.path.join(out, "inference.yml")))


# Every family's export on every backend: tests/test_zoo_export.py::test_export_round_trip_matches_dynamic_model


def test_openvino_is_refused_for_an_export_it_gets_wrong(digits_slice, tmp_path, monkeypatch):
    """The export checks OpenVINO against paddle.inference too and records it; an export OpenVINO gets
    wrong is refused on it by name, and backend auto leaves it out, whatever the OpenVINO version."""
    from ppnets.deploy.runtimes import OpenVINORuntime, PaddleRuntime
    out, meta = _random_export("StarNet_S050", digits_slice, tmp_path, 32)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype("float32")
    reference = PaddleRuntime(out, cpu_threads=1)(x)
    measured = float(np.abs(OpenVINORuntime(os.path.join(out, "inference.onnx"), 1)(x) - reference).max())
    # the export's rule, on the export's own batch: 1e-4 · (1 + max |output|), or 10× ONNX Runtime's distance
    limit = max(1e-4 * (1 + float(np.abs(reference).max())), 10 * meta["onnx"]["parity_max_abs_diff"])
    recorded = meta["openvino"]["parity_max_abs_diff"]
    assert meta["openvino"]["parity_limit"] == pytest.approx(limit, rel=1e-5)
    assert (recorded > limit) == (measured > limit) and meta["onnx"]["parity_max_abs_diff"] < limit
    auto = Predictor(out, backend="auto", cpu_threads=1)
    assert auto.backend == "onnxruntime"
    if recorded > limit:   # OpenVINO 2026.4 on this model
        with pytest.raises(DataError, match=r"backend openvino: OpenVINO's outputs for this export differ from "
                                            r"paddle.inference's by [\d.e+-]+ \(limit [\d.e+-]+, checked at export "
                                            r"time, recorded in inference.yml\); use --backend onnxruntime"):
            Predictor(out, backend="openvino", cpu_threads=1)
        assert "openvino" not in auto.backend_choice
        # without ONNX Runtime, auto falls back to paddle.inference rather than run OpenVINO
        from ppnets.deploy import runtimes
        with monkeypatch.context() as m:
            m.setattr(runtimes, "installed", lambda b: b != "onnxruntime")
            assert Predictor(out, backend="auto", cpu_threads=1).backend == "paddle"
    else:
        assert Predictor(out, backend="openvino", cpu_threads=1).backend == "openvino"
    # the record is read as untrusted input: a malformed one is one line, not a traceback
    from ppnets.deploy.exported import write_export_meta
    write_export_meta(out, dict(meta, openvino={"parity_max_abs_diff": "none"}))
    with pytest.raises(DataError, match=r"inference.yml: openvino: expected \{parity_max_abs_diff: number, "
                                        r"parity_limit: number\}, got \{'parity_max_abs_diff': 'none'\}"):
        Predictor(out, backend="openvino", cpu_threads=1)


def test_predict_tool_gives_the_same_answers_on_every_backend(export, digits_slice):
    folder = os.path.join(digits_slice, "val", "2")
    outputs = {}
    for backend in ("paddle", "onnxruntime", "openvino", "auto"):
        r = tool("tools/predict.py", "--model_dir", export["model_dir"], "--image", folder, "--topk", "3",
                 "--backend", backend, "--batch_size", "4")
        assert r.returncode == 0, r.stderr
        outputs[backend] = r.stdout.strip().splitlines()
        # auto says what it chose, on stderr (stdout holds only the results)
        assert ("ppnets: backend auto: onnxruntime (input 32×32 is below 96×96 pixels, where ONNX Runtime is the "
                "faster; candidates: onnxruntime, openvino" in r.stderr) == (backend == "auto"), r.stderr
    assert len(outputs["paddle"]) == 10
    scores = {b: [[float(s) for s in re.findall(r": ([\d.]+)", line)] for line in lines] for b, lines in outputs.items()}
    names = {b: [re.findall(r"(\S+) \((\d+)\)", line) for line in lines] for b, lines in outputs.items()}
    for backend in ("onnxruntime", "openvino", "auto"):
        np.testing.assert_allclose(scores[backend], scores["paddle"], atol=2e-5)
        assert names[backend] == names["paddle"]
    assert outputs["auto"] == outputs["onnxruntime"]       # a 32-px export: auto is ONNX Runtime


def test_auto_rule_follows_the_files_present_and_the_input_size(export, tmp_path):
    """With an ONNX file: ONNX Runtime below 96×96 pixels, OpenVINO from there; without: paddle.inference."""
    model_dir = export["model_dir"]
    assert AUTO_ORDER == ("onnxruntime", "openvino", "paddle") and OPENVINO_MIN_PIXELS == 96 * 96
    assert resolve_backend(model_dir) == ["onnxruntime", "openvino"]
    assert Predictor(model_dir).backend == "onnxruntime"                    # the 32-px digits export
    both = ["onnxruntime", "openvino"]
    assert auto_backend(both, [3, 95, 96]) == "onnxruntime" and auto_backend(both, [3, 96, 96]) == "openvino"
    assert auto_backend(both, [3, 224, 224]) == "openvino" and auto_backend(["onnxruntime"], [3, 224, 224]) == \
        "onnxruntime"
    assert auto_backend(["paddle"], [3, 224, 224]) == "paddle"
    paddle_only = tmp_path / "paddle_only"
    paddle_only.mkdir()
    for f in os.listdir(model_dir):
        if f not in ("inference.onnx", "inference.yml", "inference.int8.onnx", "inference.int8.json"):
            os.link(os.path.join(model_dir, f), paddle_only / f)
    with open(os.path.join(model_dir, "inference.yml"), encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    for f in ("inference.onnx", "inference.int8.onnx", "inference.int8.json"):
        meta["files"].pop(f, None)   # as a Paddle-only export records its files
    (paddle_only / "inference.yml").write_text(yaml.safe_dump(meta))
    assert resolve_backend(str(paddle_only)) == ["paddle"]
    assert Predictor(str(paddle_only)).backend == "paddle"
    with pytest.raises(DataError, match=r"inference.onnx is missing for backend openvino \(export with"):
        Predictor(str(paddle_only), backend="openvino")
    with pytest.raises(DataError, match=r"no int8 model for any installed runtime"):
        Predictor(str(paddle_only), precision="int8")
    with pytest.raises(ConfigError, match=r"backend: expected auto or one of paddle, onnxruntime, openvino"):
        Predictor(model_dir, backend="tensorrt")
    with pytest.raises(ConfigError, match=r"backend paddle: no int8 support"):
        Predictor(model_dir, backend="paddle", precision="int8")


def test_onnx_only_export_and_bad_formats(export, digits_slice, tmp_path):
    cfg = dict(export["cfg"], Export=dict(export["cfg"]["Export"], formats=["onnx"]))
    out = export_model(cfg, str(tmp_path / "onnx_only"))
    assert sorted(os.listdir(out)) == sorted([DEPLOY_CONFIG, LABEL_MAP, "inference.onnx", "inference.yml"])
    predictor = Predictor(out)
    assert predictor.backend == "onnxruntime"
    x = np.random.default_rng(1).normal(0, 1, (2, 3, 32, 32)).astype("float32")
    np.testing.assert_allclose(predictor.run(x), Predictor(export["model_dir"], backend="paddle").run(x), atol=1e-5)
    assert yaml.safe_load(open(os.path.join(out, DEPLOY_CONFIG)))["Global"]["use_onnx"] is True
    cfg["Export"] = dict(cfg["Export"], formats=["paddle", "tflite"])
    with pytest.raises(ConfigError, match=r"Export.formats: expected a non-empty list of paddle, onnx"):
        export_model(cfg, str(tmp_path / "bad"))


def test_export_is_for_the_input_shape_its_preprocessing_produces(digits_slice, tmp_path, export, caplog):
    cfg = load_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"), small_overrides(
        digits_slice, str(tmp_path), **{"Global.pretrained_model": export["weights"], "Global.image_shape": "[3,64,64]"}))
    cfg["Infer"]["transforms"] = [{"DecodeImage": None}, {"ResizeImage": {"resize_short": 64}}, {"ToCHWImage": None}]
    with pytest.raises(ConfigError, match=r"Infer.transforms: the preprocessing gives images of different sizes"):
        export_model(cfg)
    assert not os.path.exists(cfg["Global"]["save_inference_dir"])   # nothing written
    del cfg["Infer"]["transforms"]   # the eval pipeline: 32×32 images, as PaddleClas's MobileNetV4 configs differ
    with caplog.at_level("WARNING"):
        out = export_model(cfg)
    assert ("Global.image_shape: [3, 64, 64] differs from the [3, 32, 32] images that "
            "DataLoader.Eval.dataset.transform_ops produces; exporting for [3, 32, 32]") in caplog.text
    assert Predictor(out, backend="paddle").run(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, cfg["Arch"]["class_num"])


def test_paddleclas_deploy_config_and_label_map(export, digits_slice):
    """inference_cls.yaml has PaddleClas deploy's sections; its PreProcess on a cv2-decoded RGB image
    (what PaddleClas's predict_cls.py does) equals the Predictor's own preprocessing of the file."""
    model_dir = export["model_dir"]
    deploy = yaml.safe_load(open(os.path.join(model_dir, DEPLOY_CONFIG)))
    assert list(deploy) == ["Global", "PreProcess", "PostProcess"]
    assert deploy["Global"]["inference_model_dir"] == os.path.abspath(model_dir)
    assert deploy["Global"]["use_onnx"] is False
    topk = deploy["PostProcess"]["Topk"]
    assert deploy["PostProcess"]["main_indicator"] == "Topk" and topk["topk"] == 3
    assert open(topk["class_id_map_file"]).read() == "0 0\n1 1\n2 2\n"
    ops = deploy["PreProcess"]["transform_ops"]
    assert [next(iter(op)) for op in ops] == ["ResizeImage", "NormalizeImage", "ToCHWImage"]
    assert isinstance(ops[1]["NormalizeImage"]["scale"], float)
    import cv2
    path = list_inputs(os.path.join(digits_slice, "val", "1"))[0]
    rgb = cv2.imread(path)[:, :, ::-1]
    predictor = Predictor(model_dir)
    np.testing.assert_array_equal(build_transforms(ops)(np.ascontiguousarray(rgb)),
                                  predictor.transform(open(path, "rb").read()))


def test_vnni_detection_decides_reduce_range(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma avx512f\n")
    assert q.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx2", "fma", "avx512f"}
    assert not q.has_vnni(q.cpu_flags(str(cpuinfo)))
    assert q.has_vnni({"avx2", "avx_vnni"}) and q.has_vnni({"avx512_vnni"}) and q.has_vnni({"amx_int8"})
    assert q.cpu_flags(str(tmp_path / "missing")) == set()


def test_quantize_tool_writes_a_qdq_int8_model_and_reports_accuracy(export, digits_slice):
    model_dir = export["model_dir"]
    r = tool("tools/quantize.py", "--model_dir", model_dir, "-c", "configs/mobilenetv2.yaml",
             *[x for o in small_overrides(digits_slice, "/tmp") for x in ("-o", o)],
             "--calib_images", "48", "--calibration", "percentile", "--batches")
    assert r.returncode == 0, r.stderr
    report = json.load(open(os.path.join(model_dir, "inference.int8.json")))
    assert report["calib_images"] == 48 and report["eval"]["int8"]["samples"] == 30
    assert report["settings"]["reduce_range"] == (not q.has_vnni())
    assert report["settings"]["per_channel"] is True and report["settings"]["calibration"] == "percentile"
    assert report["size_mb"]["int8"] < 0.5 * report["size_mb"]["fp32"]
    assert abs(report["top1_drop_points"]) <= 100 / 30 * 2 + 1e-9      # at most two of 30 images change
    assert report["eval"]["int8"]["agreement"] >= 28 / 30
    assert "top-1 drop" in r.stdout and "| int8 |" in r.stdout
    # each long step says what it does (and a terminal also gets progress bars)
    assert "calibrating on 48 of 120 training images (percentile)" in r.stdout
    assert re.search(r"wrote \S+inference\.int8\.onnx in [\d.]+ s", r.stdout)
    assert "evaluating fp32 and int8 on 30 validation images" in r.stdout
    meta = yaml.safe_load(open(os.path.join(model_dir, "inference.yml")))   # both files recorded with digests
    for f in ("inference.int8.onnx", "inference.int8.json"):
        assert meta["files"][f]["bytes"] == os.path.getsize(os.path.join(model_dir, f))
    assert meta["int8"] == report["settings"] and not [f for f in os.listdir(os.path.dirname(model_dir))
                                                       if ".export." in f]   # no staging folder left
    graph = onnx.load(os.path.join(model_dir, "inference.int8.onnx")).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    assert any(t.data_type == onnx.TensorProto.INT8 for t in graph.initializer)   # s8 weights
    assert any(t.data_type == onnx.TensorProto.UINT8 for t in graph.initializer)  # u8 activation zero points
    fp32, int8 = Predictor(model_dir), Predictor(model_dir, precision="int8")
    assert int8.backend == "onnxruntime"
    files = list_inputs(os.path.join(digits_slice, "val"))
    for _, batch in iterate_batches(files, fp32.transform, 16):
        a, b = fp32.run(batch), int8.run(batch)
        assert np.abs(a - b).max() < 0.1 and (a.argmax(1) == b.argmax(1)).mean() >= 0.8
    ov = Predictor(model_dir, backend="openvino", precision="int8")
    assert np.abs(ov.run(batch) - b).max() < 0.05
    r = tool("tools/predict.py", "--model_dir", model_dir, "--image", files[0], "--precision", "int8")
    assert r.returncode == 0 and r.stdout.startswith(files[0] + ": "), r.stderr
    int8_path = os.path.join(model_dir, "inference.int8.onnx")
    blob = open(int8_path, "rb").read()
    open(int8_path, "wb").write(blob[:-1] + bytes([blob[-1] ^ 1]))   # the INT8 file is re-checked
    with pytest.raises(DataError, match=r"inference.int8.onnx: its content differs from what inference.yml records "
                                        r"\(damaged, or from another export\?\); run tools/quantize.py again"):
        Predictor(model_dir, precision="int8")
    open(int8_path, "wb").write(blob)


def test_quantize_tool_errors_are_one_line(export, tmp_path):
    r = tool("tools/quantize.py", "--model_dir", str(tmp_path), "-c", "configs/mobilenetv2.yaml")
    assert r.returncode == 2 and r.stderr.startswith("ppnets: error: ") and "not an exported ppnets model" in r.stderr
    r = tool("tools/quantize.py", "--model_dir", export["model_dir"], "-c", "configs/mobilenetv2.yaml",
             "--calib_images", "0")
    assert r.returncode == 2 and "--calib_images: expected a positive integer, got 0" in r.stderr


def test_runtime_benchmark_times_each_runtime_in_its_own_process(tmp_path):
    from ppnets.bench.runtimes import bench_backends

    rows = bench_backends("MobileNetV2_x0_25", 32, str(tmp_path), batches=(1, 2), threads=1, rounds=2, warmup=1,
                          variants=[("paddle", "fp32"), ("auto", "fp32"), ("onnxruntime", "int8")], class_num=10)
    assert [(r.settings["backend"], r.settings["precision"], r.batch_size) for r in rows] == [
        ("paddle", "fp32", 1), ("paddle", "fp32", 2), ("auto", "fp32", 1), ("auto", "fp32", 2),
        ("onnxruntime", "int8", 1), ("onnxruntime", "int8", 2)]
    assert rows[2].settings["runtime"] == "onnxruntime" and rows[2].variant.startswith("auto (chose onnxruntime)")
    for r in rows:
        assert r.metrics["img_s"] == pytest.approx(r.batch_size / r.metrics["latency_ms"] * 1000.0)
    assert os.path.isfile(tmp_path / "export_MobileNetV2_x0_25_32_onnx" / "inference.int8.onnx")


def test_label_files_in_paddleclas_id_name_form_are_read(tmp_path):
    from ppnets.data.labels import read_label_file

    (tmp_path / "ids.txt").write_text("0 tench, Tinca tinca\n1 goldfish\n2 great white shark\n")
    assert read_label_file(str(tmp_path / "ids.txt")) == ["tench, Tinca tinca", "goldfish", "great white shark"]
    (tmp_path / "names.txt").write_text("cat\n2 dogs\n")
    assert read_label_file(str(tmp_path / "names.txt")) == ["cat", "2 dogs"]
