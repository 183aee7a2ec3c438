"""Training and evaluation: a :class:`Trainer` that owns the loop, an :class:`Evaluator` that also runs
alone, a :class:`~ppnets.engine.checkpointer.Checkpointer` of the run's :class:`RunState`, and
callbacks (:mod:`ppnets.engine.callbacks`) for everything else a run does."""
from .callbacks import Callback, Step
from .evaluator import Evaluator
from .state import RunState
from .trainer import Trainer

__all__ = ["Trainer", "Evaluator", "RunState", "Callback", "Step"]
