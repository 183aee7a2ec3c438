"""The run state of :class:`~ppnets.engine.Engine` on disk: resuming from a checkpoint (its
epoch, best metric, EMA, AMP scaler and PaddleClas's epoch checkpoints) and writing
``latest``/``best_model``/``epoch_N`` (a DistillationModel's ``best_model`` is its evaluated
model alone)."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import numpy as np
import paddle

from ..arch.distillation import inference_arch, inference_model, is_distillation
from ..errors import CheckpointError, ConfigError
from ..checkpoint import load_checkpoint, save_checkpoint

__all__ = ["RunStateMixin"]


class RunStateMixin:
    """``save``, ``save_evaluated`` and the resume of the engine (which provides ``model``,
    ``optimizer``, ``ema``, ``scaler``, ``config``, ``output_dir`` …)."""

    def _last_good_checkpoint(self) -> str:
        """Where a failed run can resume from: this run's ``latest`` if it has been saved (a
        resumed run saves its own, so the resumed checkpoint is named only before that)."""
        latest = os.path.join(self.output_dir, "latest")
        if os.path.isfile(f"{latest}.pdstates"):
            return f"The last good checkpoint is {latest}"
        resumed = self.config["Global"]["checkpoints"]
        if resumed:
            return f"No checkpoint of this run was saved yet; it resumed from {resumed}"
        return "No checkpoint was saved yet"

    def _resume(self, prefix: str) -> None:
        states = load_checkpoint(prefix, self.model, self.optimizer, self.arch_name,
                                 trust=self.config["Global"]["trust_pickles"],
                                 optimizer_name=self.config["Optimizer"]["name"])
        self.global_step = int(states.get("global_step", 0))
        self.best_metric = float(states.get("best_metric", -np.inf))
        self.best_epoch = int(states.get("best_epoch", 0))
        self.best_ema_metric = float(states.get("best_ema_metric", -np.inf))
        self.partial = states.get("partial")
        self.start_epoch = int(states["epoch"]) + 1
        if states.get("paddleclas"):  # PaddleClas's checkpoint: the LR position follows from the epoch
            self.global_step = int(states["epoch"]) * self.steps_per_epoch
            updates = int(states["epoch"]) * (-(-self.steps_per_epoch // self.update_freq))
            self.lr_scheduler.step(int(states["epoch"]) if getattr(self.lr_scheduler, "by_epoch", False) else updates)
            self.log.info(f"resuming PaddleClas's checkpoint {prefix}: epoch {states['epoch']} done (its metric "
                          f"{states.get('metric', float('nan')):.5f}); the best metric restarts, as in PaddleClas")
        if int(states["epoch"]) > self.epochs:
            raise ConfigError(f"Global.epochs={self.epochs}, but checkpoint {prefix} has already finished "
                              f"{states['epoch']} epochs: nothing left to do (its LR schedule spanned more epochs; "
                              f"set Global.epochs above {states['epoch']} to train further)")
        extra = states.get("extra", {})
        if self.ema is not None:
            if "pdema" in extra:
                ema_state = extra["pdema"]
            elif "ema.safetensors" in extra:
                ema_state = {"weights": extra["ema.safetensors"], "updates": states.get("ema_updates") or 0}
            else:
                raise CheckpointError(f"checkpoint {prefix} has no EMA weights (.pdema) but EMA.decay is set; "
                                      "resume without EMA or from a checkpoint written with EMA")
            if not isinstance(ema_state, dict) or not isinstance(ema_state.get("weights"), dict):
                raise CheckpointError(f"checkpoint {prefix}: its EMA file does not hold EMA weights")
            self.ema.set_state_dict(ema_state)
        if self.scaler is not None and states.get("scaler"):
            self.scaler.load_state_dict(states["scaler"])
        where = (f"epoch {self.partial['epoch']} iteration {self.partial['iters']}" if self.partial
                 else f"epoch {states['epoch']} done")
        self.log.info(f"resumed from {prefix}: {where}, best {self.best_metric:.5f} at epoch {self.best_epoch}, "
                      f"lr {self.optimizer.get_lr():.6g}")

    def _states(self, epoch: int, partial: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        return {"epoch": epoch, "global_step": self.global_step, "best_metric": self.best_metric,
                "best_epoch": self.best_epoch, "best_ema_metric": self.best_ema_metric, "arch": self.arch_name,
                "class_num": self.config["Arch"]["class_num"], "class_names": self.class_names,
                "partial": partial, "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "optimizer": self.config["Optimizer"]["name"],
                "ema_updates": self.ema.updates if self.ema is not None else None}

    def save(self, name: str, epoch: int, partial: Optional[Dict[str, Any]] = None) -> None:
        """Write the checkpoint ``<output_dir>/<name>``: ``epoch`` epochs done, plus ``partial`` progress.
        A DistillationModel's ``best_model`` holds its ``infer_model_name`` model alone."""
        if name == "best_model" and is_distillation(self.config["Arch"]):
            self.save_evaluated(name, self.model, epoch)
            return
        fmt = self.config["Global"]["weights_format"]
        extra = None
        if self.ema is not None:  # safetensors holds tensors only: the update count is in .pdstates
            extra = {"pdema": self.ema.state_dict()} if fmt == "pdparams" else \
                {"ema.safetensors": self.ema.model.state_dict()}
        save_checkpoint(os.path.join(self.output_dir, name), self.model, self.optimizer,
                        self._states(epoch, partial), extra_files=extra, weights_format=fmt)

    def save_evaluated(self, name: str, model: paddle.nn.Layer, epoch: int) -> None:
        """Write the weights of the evaluated model (a DistillationModel's ``infer_model_name``) as
        ``<output_dir>/<name>``, loadable with that model's own Arch."""
        states = self._states(epoch)
        if is_distillation(self.config["Arch"]):
            states["arch"] = inference_arch(self.config["Arch"])[0]["name"]
        save_checkpoint(os.path.join(self.output_dir, name), inference_model(model), None, states,
                        weights_format=self.config["Global"]["weights_format"])
