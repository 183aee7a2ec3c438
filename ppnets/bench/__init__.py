"""Throughput benchmarks: training, evaluation, the exported predictor and the data pipeline.

Every timed comparison runs its variants **interleaved in rounds** (A, B, C, then A, B, C
again …) after warm-up runs and reports the median over rounds
(:func:`ppnets.utils.timing.interleaved`), so that a busy spell of a shared machine falls on
all variants alike. Sections, each a function returning :class:`Result` rows:

- :func:`bench_train` (:mod:`.train`) — training img/s of the engine loop, Paddle's kernels,
  ``to_static``, ``paddle.Model.fit`` and PyTorch, each variant in its own process (:mod:`.workers`);
- :func:`bench_eval` (:mod:`.evaluate`) — dynamic-mode evaluation img/s, oneDNN vs Paddle's kernels;
- :func:`bench_predictor` (:mod:`.predictor`) — the exported model per deploy runtime: img/s and
  latency per batch size and thread count;
- :func:`bench_pipeline`, :func:`bench_reader_cost` (:mod:`.pipeline`) — the data loader alone,
  and ``reader_cost`` in a real training run on JPEGs;
- :func:`bench_config` (:mod:`.runs`) — whole epochs of a config, fast vs Paddle's kernels.

JPEG data is generated into a temporary directory (:func:`make_jpeg_folder`), never kept.
:func:`write_json`, :func:`write_csv` and :func:`write_markdown` save the results.
``tools/benchmark.py`` is the command line.
"""
from ..utils.timing import interleaved
from .data import DEFAULT_CONFIG, engine_config, make_jpeg_folder, random_batches
from .evaluate import bench_eval
from .machine import machine_info, peak_rss_mb, set_threads, temporary_workdir
from .pipeline import bench_pipeline, bench_reader_cost
from .predictor import PREDICTOR_BACKENDS, bench_predictor
from .reparam import REPARAM_MODELS, bench_reparam
from .results import Result, markdown_tables, write_csv, write_json, write_markdown
from .runs import bench_config
from .train import TRAIN_VARIANTS, bench_train, default_variants

__all__ = ["Result", "machine_info", "peak_rss_mb", "set_threads", "interleaved", "make_jpeg_folder",
           "random_batches", "engine_config", "bench_train", "bench_eval", "bench_predictor", "bench_pipeline",
           "bench_reader_cost", "bench_config", "write_json", "write_csv", "write_markdown", "markdown_tables",
           "temporary_workdir", "DEFAULT_CONFIG", "TRAIN_VARIANTS", "PREDICTOR_BACKENDS", "default_variants",
           "bench_reparam", "REPARAM_MODELS"]
