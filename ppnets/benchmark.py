"""Throughput benchmarks: training, evaluation, the exported predictor and the data pipeline.

Every timed comparison runs its variants **interleaved in rounds** (variant A, B, C, then A,
B, C again …) after warm-up runs, and reports the median over rounds, so that a busy spell
of a shared machine falls on all variants alike (as :mod:`ppnets.analysis.zoo` does).

Sections (each returns :class:`Result` rows):

- :func:`bench_train` — training img/s of the ppnets engine's own loop
  (``Engine._train_epoch`` on in-memory batches) with its fast convolutions, with Paddle's
  convolution kernels (``native``: the behaviour before :mod:`ppnets.arch.onednn`), under
  ``to_static``, and ``paddle.Model.fit`` on ``paddle.vision.models.mobilenet_v2`` with the
  same data, batch, input size and optimizer (MobileNetV2 models only).
- :func:`bench_eval` — dynamic-mode evaluation img/s, fast vs native convolutions.
- :func:`bench_predictor` — the exported model on :class:`~ppnets.engine.export.Predictor`:
  img/s and latency per batch size, oneDNN on/off, thread counts.
- :func:`bench_pipeline` — the data pipeline alone (JPEG decode + augmentation + collation)
  in img/s per ``num_workers``.
- :func:`bench_reader_cost` — a real training run of the engine on JPEGs: the engine's own
  ``reader_cost`` as a share of ``batch_cost``.
- :func:`bench_config` — whole epochs (training + evaluation) of a config, fast vs native.

JPEG data is generated into a temporary directory (:func:`make_jpeg_folder`), never kept.
:func:`write_json`, :func:`write_csv` and :func:`write_markdown` save the results.
"""
from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from .errors import ConfigError

__all__ = ["Result", "machine_info", "peak_rss_mb", "set_threads", "interleaved", "make_jpeg_folder",
           "bench_train", "bench_eval", "bench_predictor", "bench_pipeline", "bench_reader_cost", "bench_config",
           "write_json", "write_csv", "write_markdown", "DEFAULT_CONFIG"]

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(REPO, "configs", "mobilenetv2.yaml")

Progress = Callable[[Iterable[Any], str], Iterable[Any]]


def _no_progress(items: Iterable[Any], desc: str) -> Iterable[Any]:
    return items


@dataclass
class Result:
    """One measured row: a ``section``, a ``variant`` within it, the workload and its metrics."""

    section: str
    variant: str
    model: str
    input_size: int
    batch_size: int
    metrics: Dict[str, float] = field(default_factory=dict)
    settings: Dict[str, Any] = field(default_factory=dict)

    def flat(self) -> Dict[str, Any]:
        row = {"section": self.section, "variant": self.variant, "model": self.model,
               "input_size": self.input_size, "batch_size": self.batch_size}
        row.update({k: _round(v) for k, v in self.metrics.items()})
        row.update({f"setting.{k}": v for k, v in self.settings.items()})
        return row


def _round(v: Any) -> Any:
    return round(v, 4) if isinstance(v, float) else v


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> Optional[float]:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def machine_info() -> Dict[str, Any]:
    """CPU, cores, memory, load, and the versions of Python, Paddle, oneDNN, NumPy and OpenCV."""
    import cv2

    from .arch import onednn
    info: Dict[str, Any] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gb": _memory_gb(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "paddle": paddle.__version__, "numpy": np.__version__,
        "opencv": cv2.__version__, "platform": platform.platform(),
        "onednn_training": onednn._get_runtime().version if onednn.available() else onednn.unavailable_reason(),
    }
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def set_threads(onednn_threads: int, paddle_threads: Optional[int] = None) -> None:
    """Threads of the oneDNN training convolutions and, if given, of Paddle's own CPU math
    kernels (Paddle's default is 1; more makes its OpenMP workers spin between calls, which
    delays the oneDNN kernels' thread wake-ups on a 2-core machine)."""
    from .arch import onednn
    if paddle_threads is not None:
        paddle.base.core.set_num_threads(int(paddle_threads))
    if onednn.available():
        onednn.set_num_threads(int(onednn_threads))


# --------------------------------------------------------------------------- timing


def interleaved(runs: Dict[str, Callable[[], Any]], rounds: int, warmup: int = 1,
                progress: Progress = _no_progress, desc: str = "rounds") -> Dict[str, List[float]]:
    """Seconds per call of each run: ``warmup`` untimed calls each, then ``rounds`` rounds
    that call every run once, in order. Interleaving spreads changes of the machine's load
    over all runs instead of penalising the one measured while it lasted."""
    if rounds < 1:
        raise ConfigError(f"--rounds: must be a positive integer, got {rounds}")
    for fn in runs.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {k: [] for k in runs}
    for _ in progress(range(rounds), desc):
        for name, fn in runs.items():
            tic = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - tic)
    return times


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


_DEVNULL: Optional[Any] = None


@contextlib.contextmanager
def _quiet_logger() -> Iterator[None]:
    """Keep the engine's console log lines off the terminal; log files are still written.

    An engine set up within the block binds its console handler to the ``sys.stdout`` of
    that moment, so stdout is a null stream that stays open for the life of the process."""
    global _DEVNULL
    if _DEVNULL is None:
        _DEVNULL = open(os.devnull, "w")
    with contextlib.redirect_stdout(_DEVNULL):
        yield


# --------------------------------------------------------------------------- data


def make_jpeg_folder(root: str, n_images: int = 320, size: int = 256, classes: int = 10, seed: int = 0,
                     quality: int = 90) -> str:
    """Write ``n_images`` JPEGs of ``size``×``size`` into ``root/<class>/`` and return ``root``.

    The images are smooth random colour fields with fine grain (upsampled noise plus
    pixel noise), so that they compress and decode like photographs rather than like flat
    or white-noise images; each class has its own tint.
    """
    import cv2

    rng = np.random.default_rng(seed)
    for i in range(n_images):
        c = i % classes
        d = os.path.join(root, f"class_{c:02d}")
        os.makedirs(d, exist_ok=True)
        base = rng.uniform(0, 255, (8, 8, 3)).astype(np.float32)
        img = cv2.resize(base, (size, size), interpolation=cv2.INTER_CUBIC)
        img += rng.normal(0.0, 10.0, img.shape).astype(np.float32)
        img[..., c % 3] += 30.0
        ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("cv2.imencode failed")
        buf.tofile(os.path.join(d, f"{i:05d}.jpg"))
    return root


def _train_ops(size: int) -> str:
    return ("[{DecodeImage: {to_rgb: true, channel_first: false}}, {RandCropImage: {size: %d}}, "
            "{RandFlipImage: {flip_code: 1}}, {NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], "
            "std: [0.229, 0.224, 0.225], order: ''}}, {ToCHWImage: null}]" % size)


def _eval_ops(size: int) -> str:
    return ("[{DecodeImage: {to_rgb: true, channel_first: false}}, {ResizeImage: {size: %d}}, "
            "{NormalizeImage: {scale: 1.0/255.0, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], "
            "order: ''}}, {ToCHWImage: null}]" % size)


def _config(data_root: str, out_dir: str, model: str, size: int, batch: int, class_num: int, workers: int = 0,
            extra: Optional[Dict[str, Any]] = None, config_path: str = DEFAULT_CONFIG) -> Dict[str, Any]:
    """configs/mobilenetv2.yaml turned into a run of ``model`` at ``size`` on ``data_root``."""
    from .config import load_config
    items: Dict[str, Any] = {
        "Global.output_dir": out_dir, "Global.use_visualdl": False, "Global.eval_during_train": False,
        "Global.save_interval": 0, "Global.print_batch_step": 1000000, "Global.image_shape": f"[3, {size}, {size}]",
        "Global.epochs": 1, "Arch.name": model, "Arch.class_num": class_num,
        "DataLoader.Train.dataset.root": data_root, "DataLoader.Eval.dataset.root": data_root,
        "DataLoader.Train.dataset.transform_ops": _train_ops(size),
        "DataLoader.Eval.dataset.transform_ops": _eval_ops(size),
        "DataLoader.Train.sampler.batch_size": batch, "DataLoader.Train.loader.num_workers": workers,
        "DataLoader.Eval.sampler.batch_size": batch,
    }
    items.update(extra or {})
    return load_config(config_path, [f"{k}={v}" for k, v in items.items()])


class _Sampler:
    def skip(self, n: int) -> None:
        pass

    def set_epoch(self, epoch: int) -> None:
        pass


class _Dataset:
    bad_image = "stop"

    def set_epoch(self, epoch: int) -> None:
        pass


class _MemoryLoader:
    """Stands in for the engine's training loader: the same in-memory batches every epoch,
    in the 4-item form of :func:`ppnets.data.iterate_loader` (images, labels, skipped, status)."""

    def __init__(self, batches: List[Tuple[paddle.Tensor, paddle.Tensor]]) -> None:
        self.batches = batches
        self.batch_sampler, self.dataset = _Sampler(), _Dataset()
        self._skipped = paddle.to_tensor(np.array(0, np.int64))
        self._ok = paddle.to_tensor(np.frombuffer(b"O", np.uint8))

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for images, labels in self.batches:
            yield images, labels, self._skipped, self._ok


def _random_batches(n_batches: int, batch: int, size: int, class_num: int, seed: int = 0
                    ) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((n_batches * batch, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, class_num, (n_batches * batch, 1)).astype(np.int64)
    return images, labels


def _engine_for_steps(config: Dict[str, Any], images: np.ndarray, labels: np.ndarray, batch: int):
    """An Engine whose training loop runs on the given in-memory batches."""
    from .engine.engine import Engine
    with _quiet_logger():
        engine = Engine(config, "train")
    batches = [(paddle.to_tensor(images[i:i + batch]), paddle.to_tensor(labels[i:i + batch]))
               for i in range(0, len(images), batch)]
    engine.train_loader = _MemoryLoader(batches)
    engine.steps_per_epoch = len(batches)
    engine._clock, engine._stop_signal = (time.time(), engine.global_step), None  # what Engine.train() sets up
    return engine


def _run_epoch(engine) -> None:
    with _quiet_logger():
        engine._train_epoch(1, None)


def _vision_mobilenet_v2_scale(model: str) -> Optional[float]:
    """The ``scale`` of ``paddle.vision.models.mobilenet_v2`` equal to a ppnets MobileNetV2 name."""
    if model == "MobileNetV2":
        return 1.0
    prefix = "MobileNetV2_x"
    if model.startswith(prefix):
        try:
            return float(model[len(prefix):].replace("_", "."))
        except ValueError:
            return None
    return None


def _model_fit_runner(model: str, images: np.ndarray, labels: np.ndarray, batch: int, class_num: int,
                      config: Dict[str, Any]) -> Optional[Callable[[], None]]:
    """``paddle.Model.fit`` for one epoch over the batches, on paddle.vision's MobileNetV2."""
    scale = _vision_mobilenet_v2_scale(model)
    if scale is None:
        return None
    opt_cfg = config["Optimizer"]
    lr = float(opt_cfg["lr"]["learning_rate"]) if isinstance(opt_cfg.get("lr"), dict) else 0.01
    net = paddle.vision.models.mobilenet_v2(scale=scale, num_classes=class_num)
    hapi = paddle.Model(net)
    hapi.prepare(paddle.optimizer.Momentum(learning_rate=lr, momentum=float(opt_cfg.get("momentum", 0.9)),
                                           parameters=net.parameters(), weight_decay=4e-5),
                 paddle.nn.CrossEntropyLoss())
    dataset = paddle.io.TensorDataset([paddle.to_tensor(images), paddle.to_tensor(labels)])
    loader = paddle.io.DataLoader(dataset, batch_size=batch, shuffle=False, drop_last=True, num_workers=0)
    return lambda: hapi.fit(loader, epochs=1, verbose=0)


# --------------------------------------------------------------------------- sections


def bench_train(model: str, size: int, batch: int, data_root: str, work_dir: str, steps: int = 3, rounds: int = 3,
                warmup: int = 1, class_num: int = 10, variants: Sequence[str] = ("ppnets", "native", "to_static",
                                                                                 "model_fit"),
                threads: Optional[int] = None, progress: Progress = _no_progress) -> List[Result]:
    """Training img/s of each variant (see the module docstring); ``steps`` batches per timed call.

    ``data_root`` is an ImageFolder the engine is configured with (it needs one to start);
    the timed loop itself runs on random in-memory batches, identical for every variant.
    """
    from .arch.layers import native_convolutions

    unknown = sorted(set(variants) - {"ppnets", "native", "to_static", "model_fit"})
    if unknown:
        raise ConfigError(f"train variants: unknown {unknown}; valid: ppnets, native, to_static, model_fit")
    images, labels = _random_batches(steps, batch, size, class_num)
    runs: Dict[str, Callable[[], Any]] = {}
    names = {"ppnets": "ppnets (dynamic)", "native": "ppnets, Paddle's conv kernels (before)",
             "to_static": "ppnets (to_static)", "model_fit": "paddle.Model.fit, paddle.vision mobilenet_v2"}
    config = _config(data_root, os.path.join(work_dir, "train"), model, size, batch, class_num)
    if "ppnets" in variants or "native" in variants:
        engine = _engine_for_steps(config, images, labels, batch)
        if "ppnets" in variants:
            runs["ppnets"] = lambda: _run_epoch(engine)
        if "native" in variants:
            def native() -> None:
                with native_convolutions():
                    _run_epoch(engine)
            runs["native"] = native
    if "to_static" in variants:
        static_cfg = _config(data_root, os.path.join(work_dir, "train_static"), model, size, batch, class_num,
                             extra={"Global.to_static": True})
        static_engine = _engine_for_steps(static_cfg, images, labels, batch)
        runs["to_static"] = lambda: _run_epoch(static_engine)
    if "model_fit" in variants:
        fit = _model_fit_runner(model, images, labels, batch, class_num, config)
        if fit is not None:
            runs["model_fit"] = fit
    times = interleaved(runs, rounds, warmup, progress, f"train {model} {size}px b{batch}")
    results = []
    n = steps * batch
    for key, ts in times.items():
        results.append(Result("train", names[key], model, size, batch,
                              {"img_s": n / _median(ts), "step_s": _median(ts) / steps},
                              {"steps_per_round": steps, "rounds": rounds, "threads": threads}))
    by = {r.variant: r.metrics["img_s"] for r in results}
    base = by.get(names["ppnets"])
    for r in results:
        if base and r.variant != names["ppnets"]:
            r.metrics["ppnets_speedup"] = base / r.metrics["img_s"]
    return results


def bench_eval(model: str, size: int, batch: int, rounds: int = 3, warmup: int = 1, class_num: int = 10,
               threads: Optional[int] = None, progress: Progress = _no_progress) -> List[Result]:
    """Dynamic-mode evaluation (``no_grad`` forward) img/s: fast vs Paddle's convolutions."""
    from .arch import build_model
    from .arch.layers import native_convolutions

    paddle.seed(0)
    net = build_model(model, class_num=class_num)
    net.eval()
    x = paddle.to_tensor(_random_batches(1, batch, size, class_num)[0])

    def fast() -> None:
        with paddle.no_grad():
            net(x)

    def native() -> None:
        with native_convolutions(), paddle.no_grad():
            net(x)

    times = interleaved({"fast": fast, "native": native}, rounds, warmup, progress, f"eval {model} {size}px b{batch}")
    out = []
    for key, name in (("fast", "ppnets (dynamic)"), ("native", "ppnets, Paddle's conv kernels (before)")):
        out.append(Result("eval", name, model, size, batch, {"img_s": batch / _median(times[key])},
                          {"rounds": rounds, "threads": threads}))
    out[0].metrics["ppnets_speedup"] = out[0].metrics["img_s"] / out[1].metrics["img_s"]
    return out


def bench_predictor(model: str, size: int, work_dir: str, batches: Sequence[int] = (1, 16),
                    threads: Sequence[int] = (1, 2), mkldnn: Sequence[bool] = (True, False), rounds: int = 5,
                    warmup: int = 2, class_num: int = 1000, progress: Progress = _no_progress,
                    runtimes: Sequence[Tuple[str, str]] = ()) -> List[Result]:
    """The exported model on the deploy :class:`Predictor`: img/s and latency (ms per batch)
    for every (oneDNN on/off, threads, batch size), all timed in interleaved rounds; then the
    ``(backend, precision)`` pairs of ``runtimes`` each in its own process, at the largest thread
    count (:func:`ppnets.deploy.bench.bench_backends`)."""
    from .analysis.zoo import export_for_benchmark
    from .arch import build_model
    from .engine.export import Predictor

    paddle.seed(0)
    net = build_model(model, class_num=class_num)
    out_dir = export_for_benchmark(net, os.path.join(work_dir, f"export_{model}_{size}"), size, model)
    del net
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, 3, size, size)).astype(np.float32) for b in batches}
    runs: Dict[Tuple[bool, int, int], Callable[[], Any]] = {}
    for use_mkldnn in mkldnn:
        for t in threads:
            predictor = Predictor(out_dir, cpu_threads=t, use_mkldnn=use_mkldnn)
            for b in batches:
                runs[(use_mkldnn, t, b)] = (lambda p=predictor, x=inputs[b]: p.run(x))
    times = interleaved(runs, rounds, warmup, progress, f"predictor {model} {size}px")  # type: ignore[arg-type]
    results = []
    for (use_mkldnn, t, b), ts in times.items():
        med = _median(ts)
        results.append(Result("predictor", f"paddle.inference, {'oneDNN' if use_mkldnn else 'no oneDNN'}, "
                                           f"{t} thread{'s' if t != 1 else ''}", model, size, b,
                              {"img_s": b / med, "latency_ms": med * 1000.0},
                              {"mkldnn": use_mkldnn, "threads": t, "rounds": rounds}))
    if runtimes:
        from .deploy.bench import bench_backends
        results += bench_backends(model, size, work_dir, batches, max(threads), rounds, warmup, runtimes, class_num,
                                  progress)
    return results


def bench_pipeline(data_root: str, work_dir: str, size: int = 224, batch: int = 32,
                   workers: Sequence[int] = (0, 1, 2), n_batches: int = 8, rounds: int = 3,
                   progress: Progress = _no_progress) -> List[Result]:
    """Data pipeline alone — the ppnets training loader (JPEG decode, RandCropImage to ``size``,
    flip, normalize, CHW, collate) — in img/s per ``num_workers``; the first batch of each
    pass (worker start-up) is not counted."""
    from .data import build_dataloader, iterate_loader

    if n_batches < 2:
        raise ConfigError(f"--pipeline-batches: need at least 2 (the first is not timed), got {n_batches}")
    loaders = {}
    for w in workers:
        cfg = _config(data_root, os.path.join(work_dir, "pipeline"), "MobileNetV2", size, batch, 10, workers=w)
        loaders[w] = build_dataloader(cfg, "Train", seed=0)
        if len(loaders[w]) < n_batches:
            raise ConfigError(f"pipeline: the generated dataset has {len(loaders[w])} batches of {batch}, "
                              f"fewer than {n_batches}")
    rates: Dict[int, List[float]] = {w: [] for w in workers}
    for _ in progress(range(rounds), f"pipeline {size}px b{batch}"):
        for w in workers:
            it = iter(iterate_loader(loaders[w]))
            next(it)  # start-up
            tic = time.perf_counter()
            seen = 0
            for _ in range(n_batches - 1):
                images, _, _ = next(it)
                seen += images.shape[0]
            rates[w].append(seen / (time.perf_counter() - tic))
            del it
    return [Result("pipeline", f"DataLoader, num_workers={w}", "-", size, batch, {"img_s": _median(rates[w])},
                   {"num_workers": w, "rounds": rounds, "batches_timed": n_batches - 1}) for w in workers]


def bench_reader_cost(data_root: str, work_dir: str, model: str = "MobileNetV2", size: int = 224, batch: int = 32,
                      workers: int = 2, class_num: int = 10) -> List[Result]:
    """One epoch of real training on the JPEG folder; the engine's logged ``reader_cost`` and
    ``batch_cost`` per iteration (the first, which waits for the workers to start, is left out)."""
    from .analysis.logplot import parse_log
    from .engine.engine import Engine

    out_dir = os.path.join(work_dir, "reader")
    cfg = _config(data_root, out_dir, model, size, batch, class_num, workers=workers,
                  extra={"Global.print_batch_step": 1})
    with _quiet_logger():
        engine = Engine(cfg, "train")
        if len(engine.train_loader) < 3:
            raise ConfigError(f"reader_cost: need at least 3 batches of {batch}, the dataset has "
                              f"{len(engine.train_loader)}")
        engine.train()
    log = parse_log(os.path.join(out_dir, model, "train.log"))
    rows = [log.train[k] for k in sorted(log.train)][1:]
    reader = [r["reader_cost"] for r in rows]
    batch_cost = [r["batch_cost"] for r in rows]
    pct = 100.0 * sum(reader) / sum(batch_cost)
    return [Result("reader", f"engine, num_workers={workers}", model, size, batch,
                   {"reader_cost_s": _median(reader), "batch_cost_s": _median(batch_cost),
                    "reader_cost_pct": pct, "img_s": batch / _median(batch_cost)},
                   {"num_workers": workers, "iterations": len(rows)})]


def bench_config(config_path: str, work_dir: str, epochs: int = 1, rounds: int = 2,
                 overrides: Sequence[str] = (), progress: Progress = _no_progress) -> List[Result]:
    """``epochs`` epochs of a config (training and its evaluations), with the fast
    convolutions and with Paddle's, alternating; wall seconds per run. ``overrides`` are
    ``-o`` items; the output goes to ``work_dir`` whatever they say."""
    from .arch.layers import native_convolutions
    from .config import load_config
    from .engine.engine import Engine

    def run(native: bool, i: int) -> None:
        out = os.path.join(work_dir, f"config_{'native' if native else 'fast'}_{i}")
        cfg = load_config(config_path, list(overrides) + [f"Global.epochs={epochs}", f"Global.output_dir={out}",
                                                          "Global.use_visualdl=false", "Global.save_interval=0"])
        with _quiet_logger(), (native_convolutions() if native else contextlib.nullcontext()):
            engine = Engine(cfg, "train")
            engine.train()

    counter = {"fast": 0, "native": 0}

    def fast() -> None:
        counter["fast"] += 1
        run(False, counter["fast"])

    def native() -> None:
        counter["native"] += 1
        run(True, counter["native"])

    times = interleaved({"fast": fast, "native": native}, rounds, 0, progress, f"config {os.path.basename(config_path)}")
    cfg = load_config(config_path, list(overrides))
    model, size = cfg["Arch"]["name"], cfg["Global"]["image_shape"][-1]
    batch = cfg["DataLoader"]["Train"]["sampler"]["batch_size"]
    fast_s, native_s = _median(times["fast"]), _median(times["native"])
    settings = {"config": os.path.relpath(config_path, REPO) if config_path.startswith(REPO) else config_path,
                "epochs": epochs, "rounds": rounds}
    return [Result("config", "ppnets (fast convolutions)", model, size, batch,
                   {"wall_s": fast_s, "s_per_epoch": fast_s / epochs, "speedup_vs_before": native_s / fast_s},
                   settings),
            Result("config", "ppnets, Paddle's conv kernels (before)", model, size, batch,
                   {"wall_s": native_s, "s_per_epoch": native_s / epochs}, settings)]


# --------------------------------------------------------------------------- output


def write_json(results: Sequence[Result], info: Dict[str, Any], path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"machine": info, "results": [asdict(r) for r in results]}, f, indent=2, default=str)
    return path


def write_csv(results: Sequence[Result], path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    rows = [r.flat() for r in results]
    fields: List[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields or ["section"])
        w.writeheader()
        w.writerows(rows)
    return path


_SECTION_TITLES = {
    "train": "Training throughput (img/s; engine loop on in-memory batches, median of interleaved rounds)",
    "eval": "Dynamic-mode evaluation (img/s)",
    "predictor": "Exported model on paddle.inference (Predictor)",
    "pipeline": "Data pipeline alone (decode + augment + collate, img/s)",
    "reader": "reader_cost of a real training run (engine log)",
    "config": "Whole config runs (training + evaluation), fast vs Paddle's conv kernels",
}
_COLUMNS = {
    "train": [("img_s", "img/s", "{:.1f}"), ("step_s", "s/step", "{:.3f}"), ("ppnets_speedup", "ppnets ×", "{:.2f}")],
    "eval": [("img_s", "img/s", "{:.1f}"), ("ppnets_speedup", "ppnets ×", "{:.2f}")],
    "predictor": [("img_s", "img/s", "{:.1f}"), ("latency_ms", "latency (ms/batch)", "{:.1f}")],
    "pipeline": [("img_s", "img/s", "{:.1f}")],
    "reader": [("reader_cost_s", "reader_cost (s)", "{:.4f}"), ("batch_cost_s", "batch_cost (s)", "{:.3f}"),
               ("reader_cost_pct", "reader/batch (%)", "{:.2f}"), ("img_s", "img/s", "{:.1f}")],
    "config": [("wall_s", "wall (s)", "{:.1f}"), ("s_per_epoch", "s/epoch", "{:.1f}"),
               ("speedup_vs_before", "× before", "{:.2f}")],
}


def markdown_tables(results: Sequence[Result]) -> str:
    """One Markdown table per section, in the order of :data:`_SECTION_TITLES`."""
    parts = []
    for section, title in _SECTION_TITLES.items():
        rows = [r for r in results if r.section == section]
        if not rows:
            continue
        cols = _COLUMNS[section]
        head = ["variant", "model", "input", "batch"] + [c[1] for c in cols]
        lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
                 "|" + "|".join("---" if i < 2 else "---:" for i in range(len(head))) + "|"]
        for r in rows:
            cells = [r.variant, r.model, f"{r.input_size}²" if r.input_size else "-", str(r.batch_size)]
            cells += [fmt.format(r.metrics[k]) if k in r.metrics else "-" for k, _, fmt in cols]
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_markdown(results: Sequence[Result], info: Dict[str, Any], path: str, command: str = "") -> str:
    """The tables with the machine and the command above them."""
    load = info.get("load_average")
    head = [f"Machine: {info.get('cpu')}, {info.get('cores')} cores, {info.get('memory_gb')} GB; Python "
            f"{info.get('python')}, Paddle {info.get('paddle')}, oneDNN (training) {info.get('onednn_training')}; "
            f"load average at the end {load}; {info.get('date')}."]
    if "retain_freed_memory" in info:
        head.append(f"Threads: oneDNN training convolutions {info.get('onednn_threads')}, Paddle's kernels "
                    f"{info.get('paddle_threads')}; freed memory retained: {info['retain_freed_memory']} "
                    "(every variant alike).")
    if command:
        head.append(f"Command: `{command}`")
    if "peak_rss_mb" in info:
        head.append(f"Peak RSS of the benchmark process: {info['peak_rss_mb']:.0f} MiB.")
    text = "\n\n".join(head) + "\n\n" + markdown_tables(results)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def temporary_workdir() -> tempfile.TemporaryDirectory:
    """A temporary directory for generated images, exports and run outputs (removed on exit)."""
    return tempfile.TemporaryDirectory(prefix="ppnets_bench_")
