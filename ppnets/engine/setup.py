"""What training and evaluation set up alike: the output folder, the log, the device, the conv
backend, the seed and the process group."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Dict

import paddle
import paddle.distributed as dist

from ..arch import backend
from ..errors import ConfigError
from ..utils.logger import setup_logger
from ..utils.runtime import retain_freed_memory
from .run_folder import run_name

__all__ = ["RunEnv", "prepare_run", "output_dir_of", "check_writable"]


@dataclass
class RunEnv:
    output_dir: str
    log: Any
    rank: int
    world_size: int
    #: the convolution kernels of the run's dynamic-mode passes (``Global.conv_backend`` resolved)
    conv_backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def output_dir_of(config: Dict[str, Any]) -> str:
    """The run's folder: ``<Global.output_dir>/<model>`` (:func:`~ppnets.engine.run_folder.run_name`)."""
    return os.path.join(config["Global"]["output_dir"], run_name(config["Arch"]))


def check_writable(output_dir: str) -> None:
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise ConfigError(f"Global.output_dir: cannot write to {output_dir}: {e.strerror or e}") from None


def _set_device(device: str) -> None:
    if device == "gpu" and not paddle.device.is_compiled_with_cuda():
        raise ConfigError("Global.device: gpu requested but this Paddle build has no CUDA; use cpu")
    paddle.set_device(f"gpu:{dist.ParallelEnv().dev_id}" if device == "gpu" else "cpu")


def prepare_run(config: Dict[str, Any], mode: str, output_dir: str) -> RunEnv:
    """Log to ``<output_dir>/<mode>.log``, select the device and conv backend, seed Paddle (the same on
    every rank: identical initial weights) and join the process group of a multi-process run."""
    g = config["Global"]
    rank = dist.get_rank()
    log = setup_logger(os.path.join(output_dir, f"{mode}.log"), rank)
    for notice in getattr(config, "notices", []):
        log.info(f"config: {notice}")
    _set_device(g["device"])
    conv_backend = backend.resolve(g["conv_backend"], g["device"], log)
    if g["device"] == "cpu":
        retain_freed_memory()  # no page faults on every step's fresh activations (see utils/runtime.py)
    if g["seed"] is not None:
        paddle.seed(g["seed"])  # the data pipeline's draws derive from the seed on their own (ppnets.data.rng)
    world_size = dist.get_world_size()
    if world_size > 1:
        dist.init_parallel_env()
    return RunEnv(output_dir, log, rank, world_size, conv_backend)
