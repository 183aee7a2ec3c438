"""The :class:`Checkpointer` of a training run: writes ``latest`` / ``best_model`` / ``epoch_N`` /
``best_model_ema`` (the model, optimizer, EMA, AMP scaler and the :class:`~ppnets.engine.state.RunState`),
and restores all of them on resume, PaddleClas's ``epoch_N`` checkpoints included."""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import paddle

from ..arch.distillation import inference_arch, inference_model, is_distillation
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import CheckpointError, ConfigError

__all__ = ["Checkpointer"]


class Checkpointer:
    """Checkpoints of ``trainer`` (its model, optimizer, EMA, scaler, state, class names and config)
    in ``trainer.output_dir``. A DistillationModel's ``best_model`` is its evaluated model alone."""

    def __init__(self, trainer: Any) -> None:
        self.trainer = trainer

    @property
    def _config(self) -> Dict[str, Any]:
        return self.trainer.config

    def last_good_checkpoint(self) -> str:
        """Where a failed run can resume from: this run's ``latest`` if it has been saved (a
        resumed run saves its own, so the resumed checkpoint is named only before that)."""
        latest = os.path.join(self.trainer.output_dir, "latest")
        if os.path.isfile(f"{latest}.pdstates"):
            return f"The last good checkpoint is {latest}"
        resumed = self._config["Global"]["checkpoints"]
        if resumed:
            return f"No checkpoint of this run was saved yet; it resumed from {resumed}"
        return "No checkpoint was saved yet"

    def resume(self, prefix: str) -> None:
        """Restore the run from the checkpoint ``prefix``: weights, optimizer and LR, the run state,
        EMA and AMP scaler."""
        t = self.trainer
        g = self._config["Global"]
        names = tuple(dict.fromkeys((t.arch_name, self._config["Arch"]["name"])))  # checkpoints name either
        states = load_checkpoint(prefix, t.model, t.optimizer, names, trust=g["trust_pickles"],
                                 optimizer_name=self._config["Optimizer"]["name"])
        state = t.state
        state.restore(states)
        if states.get("paddleclas"):  # PaddleClas's checkpoint: the LR position follows from the epoch
            state.global_step = int(states["epoch"]) * t.steps_per_epoch
            updates = int(states["epoch"]) * (-(-t.steps_per_epoch // t.update_freq))
            t.lr_scheduler.step(int(states["epoch"]) if getattr(t.lr_scheduler, "by_epoch", False) else updates)
            t.log.info(f"resuming PaddleClas's checkpoint {prefix}: epoch {states['epoch']} done (its metric "
                       f"{states.get('metric', float('nan')):.5f}); the best metric restarts, as in PaddleClas")
        if int(states["epoch"]) > t.epochs:
            raise ConfigError(f"Global.epochs={t.epochs}, but checkpoint {prefix} has already finished "
                              f"{states['epoch']} epochs: nothing left to do (its LR schedule spanned more epochs; "
                              f"set Global.epochs above {states['epoch']} to train further)")
        extra = states.get("extra", {})
        if t.ema is not None:
            if "pdema" in extra:
                ema_state = extra["pdema"]
            elif "ema.safetensors" in extra:
                ema_state = {"weights": extra["ema.safetensors"], "updates": states.get("ema_updates") or 0}
            else:
                raise CheckpointError(f"checkpoint {prefix} has no EMA weights (.pdema) but EMA.decay is set; "
                                      "resume without EMA or from a checkpoint written with EMA")
            if not isinstance(ema_state, dict) or not isinstance(ema_state.get("weights"), dict):
                raise CheckpointError(f"checkpoint {prefix}: its EMA file does not hold EMA weights")
            t.ema.set_state_dict(ema_state)
        if t.scaler is not None and states.get("scaler"):
            t.scaler.load_state_dict(states["scaler"])
        where = (f"epoch {state.partial['epoch']} iteration {state.partial['iters']}" if state.partial
                 else f"epoch {states['epoch']} done")
        t.log.info(f"resumed from {prefix}: {where}, best {state.best_metric:.5f} at epoch {state.best_epoch}, "
                   f"lr {t.optimizer.get_lr():.6g}")

    def _states(self, epoch: int, partial: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        t = self.trainer
        return {**t.state.to_states(epoch, partial), "arch": t.arch_name,
                "class_num": self._config["Arch"]["class_num"], "class_names": t.class_names,
                "scaler": t.scaler.state_dict() if t.scaler is not None else None,
                "optimizer": self._config["Optimizer"]["name"],
                "ema_updates": t.ema.updates if t.ema is not None else None}

    def save(self, name: str, epoch: int, partial: Optional[Dict[str, Any]] = None) -> None:
        """Write the checkpoint ``<output_dir>/<name>``: ``epoch`` epochs done, plus ``partial`` progress.
        A DistillationModel's ``best_model`` holds its ``infer_model_name`` model alone."""
        t = self.trainer
        if name == "best_model" and is_distillation(self._config["Arch"]):
            self.save_evaluated(name, t.model, epoch)
            return
        fmt = self._config["Global"]["weights_format"]
        extra = None
        if t.ema is not None:  # safetensors holds tensors only: the update count is in .pdstates
            extra = {"pdema": t.ema.state_dict()} if fmt == "pdparams" else \
                {"ema.safetensors": t.ema.model.state_dict()}
        save_checkpoint(os.path.join(t.output_dir, name), t.model, t.optimizer, self._states(epoch, partial),
                        extra_files=extra, weights_format=fmt)

    def save_evaluated(self, name: str, model: paddle.nn.Layer, epoch: int) -> None:
        """Write the weights of the evaluated model (a DistillationModel's ``infer_model_name``) as
        ``<output_dir>/<name>``, loadable with that model's own Arch."""
        states = self._states(epoch)
        if is_distillation(self._config["Arch"]):
            states["arch"] = inference_arch(self._config["Arch"])[0]["name"]
        save_checkpoint(os.path.join(self.trainer.output_dir, name), inference_model(model), None, states,
                        weights_format=self._config["Global"]["weights_format"])
