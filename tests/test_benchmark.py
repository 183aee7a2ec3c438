"""tools/benchmark.py and ppnets.bench: every section at tiny sizes, output structure and values.

These check what the benchmark measures and writes, not how fast anything is.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import cv2
import pytest

from helpers.runs import REPO, small_overrides
from ppnets import bench as bm
from ppnets.errors import ConfigError

pytestmark = pytest.mark.slow  # exports/benchmarks of real models: see -m 'not slow'

TINY = "MobileNetV2_x0_25"


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    return bm.make_jpeg_folder(str(tmp_path_factory.mktemp("jpeg")), n_images=24, size=48, classes=10)


def test_make_jpeg_folder_writes_decodable_images_per_class(jpegs):
    classes = sorted(os.listdir(jpegs))
    assert classes == [f"class_{i:02d}" for i in range(10)]
    files = [os.path.join(jpegs, c, f) for c in classes for f in os.listdir(os.path.join(jpegs, c))]
    assert len(files) == 24
    img = cv2.imread(files[0])
    assert img.shape == (48, 48, 3) and img.std() > 5  # not a flat image


def test_worker_runs_its_variant_in_another_process_and_reports_errors(tmp_path):
    from ppnets.bench.workers import Worker, WorkerError
    from ppnets.utils.timing import Timed
    with Worker("time:sleep", 0.0, str(tmp_path / "w.log")) as w:  # time.sleep(0.0) builds the "runner"
        with pytest.raises(WorkerError, match="TypeError"):
            w.wait_ready()  # None is not callable… the worker says so instead of hanging
    factory = str(tmp_path / "f.py")
    with open(factory, "w") as f:
        f.write("import os, time\n"
                "def make(spec):\n"
                "    def run():\n"
                "        time.sleep(spec['s'])\n"
                "    run.info = {'pid': os.getpid()}\n"
                "    return run\n"
                "def broken(spec):\n"
                "    def run():\n"
                "        raise ValueError('bad step')\n"
                "    return run\n")
    with Worker(factory + ":make", {"s": 0.05}, str(tmp_path / "ok.log")) as w:
        assert w.wait_ready()["pid"] != os.getpid()
        t = w()
        assert isinstance(t, Timed) and 0.05 <= t < 1.0
    with Worker(factory + ":broken", {}, str(tmp_path / "bad.log")) as w:
        with pytest.raises(WorkerError, match="ValueError: bad step"):
            w()


def test_interleaved_counts_timed_seconds_of_a_run():
    from ppnets.utils.timing import Timed
    times = bm.interleaved({"own": lambda: Timed(2.5), "wall": lambda: 2.5}, rounds=2, warmup=0)
    assert times["own"] == [2.5, 2.5] and all(t < 1 for t in times["wall"])


def test_interleaved_calls_every_run_in_rounds_after_warmup():
    calls = []
    times = bm.interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, rounds=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert set(times) == {"a", "b"} and all(len(v) == 3 and min(v) >= 0 for v in times.values())
    with pytest.raises(ConfigError, match="--rounds"):
        bm.interleaved({"a": lambda: None}, rounds=0)


def test_train_section_compares_every_variant(jpegs, tmp_path):
    results = bm.bench_train(TINY, 32, 4, jpegs, str(tmp_path), steps=1, rounds=1, warmup=0)
    by = {r.variant: r for r in results}
    assert list(by) == ["ppnets (dynamic)", "ppnets, Paddle's conv kernels (before)", "ppnets (to_static)",
                        "paddle.Model.fit, paddle.vision mobilenet_v2"]
    for r in results:
        assert r.section == "train" and (r.model, r.input_size, r.batch_size) == (TINY, 32, 4)
        assert r.metrics["img_s"] > 0
        assert r.metrics["step_s"] == pytest.approx(4 / r.metrics["img_s"])
    pids = [r.settings["pid"] for r in results]
    assert len(set(pids)) == 4 and os.getpid() not in pids  # each variant in its own process
    assert by["ppnets, Paddle's conv kernels (before)"].settings["conv_backend"] == "paddle"
    ours = by["ppnets (dynamic)"].metrics["img_s"]
    fit = by["paddle.Model.fit, paddle.vision mobilenet_v2"].metrics
    assert fit["ppnets_speedup"] == pytest.approx(ours / fit["img_s"])
    with pytest.raises(ConfigError, match="unknown"):
        bm.bench_train(TINY, 32, 4, jpegs, str(tmp_path), variants=["fastest"])


def test_model_fit_is_only_compared_for_mobilenet_v2():
    from ppnets.bench.train import vision_mobilenet_v2_scale
    assert vision_mobilenet_v2_scale("MobileNetV2") == 1.0
    assert vision_mobilenet_v2_scale("MobileNetV2_x0_25") == 0.25
    assert vision_mobilenet_v2_scale("ShuffleNetV2_x1_0") is None


def test_torchvision_counterparts():
    from ppnets.bench.torch_ref import torchvision_model
    assert torchvision_model("MobileNetV2_x0_5") == ("mobilenet_v2", {"width_mult": 0.5})
    assert torchvision_model("MobileNetV3_large_x1_0") == ("mobilenet_v3_large", {})
    assert torchvision_model("EfficientNetB0") == ("efficientnet_b0", {})
    assert torchvision_model("ShuffleNetV2_x1_5") == ("shufflenet_v2_x1_5", {})
    assert torchvision_model("MobileNetV1") is None and torchvision_model("MobileNetV3_large_x0_75") is None


def test_torch_variants_need_torch(jpegs, tmp_path, monkeypatch):
    from ppnets.bench import torch_ref
    monkeypatch.setattr(torch_ref, "available", lambda: False)
    assert "torch" not in bm.default_variants() and "ppnets" in bm.default_variants()
    with pytest.raises(ConfigError, match="PyTorch is not installed"):
        bm.bench_train(TINY, 32, 4, jpegs, str(tmp_path), variants=["ppnets", "torch"])


@pytest.mark.skipif(not __import__("ppnets.bench.torch_ref").bench.torch_ref.available(),
                    reason="torch/torchvision not installed (not a ppnets dependency)")
def test_train_section_with_pytorch(jpegs, tmp_path):
    results = bm.bench_train("MobileNetV2_x0_5", 32, 4, jpegs, str(tmp_path), steps=1, rounds=1, warmup=0,
                             variants=["ppnets", "torch", "torch_channels_last"])
    by = {r.variant: r for r in results}
    assert list(by) == ["ppnets (dynamic)", "PyTorch + torchvision, NCHW", "PyTorch + torchvision, channels_last"]
    torch_row = by["PyTorch + torchvision, NCHW"]
    assert torch_row.settings["torchvision_model"] == "mobilenet_v2" and torch_row.settings["torch"]
    assert not torch_row.settings["paddle_loaded"]  # its own process, without Paddle
    assert torch_row.metrics["ppnets_speedup"] == pytest.approx(by["ppnets (dynamic)"].metrics["img_s"]
                                                                / torch_row.metrics["img_s"])


def test_eval_section():
    fast, native = bm.bench_eval(TINY, 32, 2, rounds=1, warmup=0)
    assert fast.variant == "ppnets (dynamic)" and native.variant.endswith("(before)")
    assert fast.metrics["ppnets_speedup"] == pytest.approx(fast.metrics["img_s"] / native.metrics["img_s"])


def test_predictor_section_times_every_setting(tmp_path):
    results = bm.bench_predictor(TINY, 32, str(tmp_path), batches=(1, 2), threads=(1,), mkldnn=(True, False),
                                 rounds=1, warmup=1, class_num=10)
    assert [(r.settings["mkldnn"], r.batch_size) for r in results] == [(True, 1), (True, 2), (False, 1), (False, 2)]
    for r in results:
        assert r.variant.startswith("paddle.inference, ") and r.variant.endswith("1 thread")
        assert r.metrics["img_s"] == pytest.approx(r.batch_size / r.metrics["latency_ms"] * 1000.0)
    assert os.path.isfile(os.path.join(tmp_path, f"export_{TINY}_32", "inference.json"))


def test_pipeline_section_per_worker_count(jpegs, tmp_path):
    results = bm.bench_pipeline(jpegs, str(tmp_path), size=32, batch=4, workers=(0, 1), n_batches=3, rounds=1)
    assert [r.settings["num_workers"] for r in results] == [0, 1]
    assert all(r.metrics["img_s"] > 0 and r.settings["batches_timed"] == 2 for r in results)
    with pytest.raises(ConfigError, match="fewer than 100"):
        bm.bench_pipeline(jpegs, str(tmp_path), size=32, batch=4, workers=(0,), n_batches=100)


def test_reader_cost_section_reads_the_engine_log(jpegs, tmp_path):
    (r,) = bm.bench_reader_cost(jpegs, str(tmp_path), TINY, size=32, batch=4, workers=0)
    m = r.metrics
    assert r.settings["iterations"] == 24 // 4 - 1  # the first iteration is left out
    assert 0 <= m["reader_cost_s"] <= m["batch_cost_s"]
    assert 0 <= m["reader_cost_pct"] <= 100
    assert os.path.isfile(os.path.join(tmp_path, "reader", TINY, "train.log"))


def test_config_section_runs_fast_and_native(digits_slice, tmp_path):
    overrides = small_overrides(digits_slice, str(tmp_path / "unused"), **{"Global.epochs": 1})
    fast, native = bm.bench_config(os.path.join(REPO, "configs", "mobilenetv2.yaml"), str(tmp_path), epochs=1,
                                   rounds=1, overrides=overrides)
    assert (fast.model, fast.input_size, fast.batch_size) == (TINY, 32, 16)
    assert fast.metrics["speedup_vs_before"] == pytest.approx(native.metrics["wall_s"] / fast.metrics["wall_s"])
    for variant in ("fast", "native"):
        assert os.path.isfile(os.path.join(tmp_path, f"config_{variant}_1", TINY, "latest.pdparams"))


def test_writers(tmp_path):
    results = [bm.Result("train", "ppnets (dynamic)", TINY, 32, 4, {"img_s": 123.456, "step_s": 0.0324},
                         {"threads": 2}),
               bm.Result("pipeline", "DataLoader, num_workers=0", "-", 224, 32, {"img_s": 80.0}, {"num_workers": 0})]
    info = {"cpu": "Test CPU", "cores": 2, "memory_gb": 1.0, "python": "3", "paddle": "3", "onednn_training": "3.6",
            "load_average": [0.1, 0.2, 0.3], "date": "today", "peak_rss_mb": 321.0,
            "frameworks": {"torch": "2.9"}}
    data = json.load(open(bm.write_json(results, info, str(tmp_path / "b.json"))))
    assert data["machine"]["cpu"] == "Test CPU" and data["results"][0]["metrics"]["img_s"] == 123.456
    rows = list(csv.DictReader(open(bm.write_csv(results, str(tmp_path / "b.csv")))))
    assert rows[0]["img_s"] == "123.456" and rows[0]["setting.threads"] == "2" and rows[1]["step_s"] == ""
    md = open(bm.write_markdown(results, info, str(tmp_path / "b.md"), "python tools/benchmark.py")).read()
    assert "oneDNN (training) 3.6; torch 2.9; load" in md
    assert "Test CPU, 2 cores" in md and "`python tools/benchmark.py`" in md and "321 MiB" in md
    assert "| ppnets (dynamic) | MobileNetV2_x0_25 | 32² | 4 | 123.5 | 0.032 | - |" in md
    assert "| DataLoader, num_workers=0 | - | 224² | 32 | 80.0 |" in md


def _tool(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "benchmark.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_tool_writes_json_csv_markdown(tmp_path):
    out = tmp_path / "out"
    proc = _tool("--sections", "eval", "pipeline", "--models", TINY, "--sizes", "32", "--batch-sizes", "2",
                 "--rounds", "1", "--warmup", "0", "--workers", "0", "--pipeline-size", "32", "--pipeline-batch",
                 "4", "--pipeline-batches", "2", "--images", "16", "--image-size", "40", "--out", str(out),
                 "--no-progress")
    assert proc.returncode == 0, proc.stderr
    data = json.load(open(out / "benchmark.json"))
    assert [r["section"] for r in data["results"]] == ["eval", "eval", "pipeline"]
    assert data["machine"]["cores"] == os.cpu_count() and data["machine"]["peak_rss_mb"] > 0
    assert set(data["machine"]["peak_rss_mb_after_section"]) == {"eval", "pipeline"}
    assert "**Dynamic-mode evaluation (img/s)**" in proc.stdout and (out / "benchmark.csv").is_file()


def test_tool_user_errors_are_one_line():
    proc = _tool("--sections", "pipeline", "--images", "10")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("ppnets: error: --images: 10 generated images are fewer than the 256 the chosen "
                                   "sections need (batch size × batches)")
    proc = _tool("--models", "MobileNetV9")
    assert proc.returncode == 2 and "MobileNetV9" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_predictor_use_mkldnn_false_really_disables_onednn(tmp_path):
    # Paddle 3 enables oneDNN by default: the Predictor has to switch it off explicitly
    from ppnets.analysis.zoo import export_for_benchmark
    from ppnets.arch import build_model
    from ppnets.deploy import Predictor
    out = export_for_benchmark(build_model(TINY, class_num=3), str(tmp_path / "m"), 32, TINY)
    assert Predictor(out, cpu_threads=1, use_mkldnn=True).config.mkldnn_enabled()
    assert not Predictor(out, cpu_threads=1, use_mkldnn=False).config.mkldnn_enabled()


def test_retain_freed_memory_is_idempotent():
    import platform

    from ppnets.utils.runtime import retain_freed_memory
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is expected
    assert retain_freed_memory() is expected
