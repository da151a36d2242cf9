"""Where Detectron2 v0.6 and its GitHub main differ in the engine details the trainers rely on.

Each difference is detected by feature (main still says ``__version__ == "0.6"``), here and
nowhere else:

* ``SimpleTrainer``'s data iterator: v0.6 makes ``self._data_loader_iter = iter(data_loader)``
  in ``__init__``; main makes ``_data_loader_iter`` a read-only property and offers the public
  ``reset_data_loader(builder)`` to start it anew.
* ``SimpleTrainer.write_metrics``: v0.6 takes ``(loss_dict, data_time, prefix="")``, main
  ``(loss_dict, data_time, cur_iter, prefix="")``.
* ``DefaultTrainer``'s checkpointed state: main saves the inner trainer's state (optimizer, grad
  scaler) under ``"_trainer"`` and requires it on load; v0.6 saves neither, so a v0.6 resume
  restarts the optimizer's momentum. :class:`InnerTrainerState` saves and loads it on both.
"""

import inspect
import logging

from detectron2.engine import DefaultTrainer, SimpleTrainer, TrainerBase

__all__ = ["restart_data_iterator", "write_metrics", "InnerTrainerState"]

logger = logging.getLogger(__name__)

_WRITE_METRICS_TAKES_ITER = "cur_iter" in inspect.signature(SimpleTrainer.write_metrics).parameters
# main's DefaultTrainer has state_dict/load_state_dict of its own; v0.6's inherits TrainerBase's
_DEFAULT_TRAINER_LOADS_INNER = "load_state_dict" in vars(DefaultTrainer)


def restart_data_iterator(trainer):
    """Make ``trainer`` (a ``SimpleTrainer``) draw its next batch from a new iterator over its
    ``data_loader``, e.g. after the loader was moved to another start iteration."""
    if hasattr(trainer, "reset_data_loader"):  # main: public API, iterator made lazily
        loader = trainer.data_loader
        trainer.reset_data_loader(lambda: loader)
    else:  # v0.6: a plain attribute
        trainer._data_loader_iter = iter(trainer.data_loader)


def write_metrics(loss_dict, data_time, *, iteration, prefix=""):
    """``SimpleTrainer.write_metrics`` (gathers the losses of every rank into the current
    ``EventStorage``), called as this Detectron2 takes it.

    Args:
        loss_dict: scalar loss tensors by name.
        data_time: seconds spent waiting for the batch.
        iteration: the current iteration (main writes the scalars at it).
        prefix: prepended to ``total_loss``.
    """
    if _WRITE_METRICS_TAKES_ITER:
        SimpleTrainer.write_metrics(loss_dict, data_time, iteration, prefix)
    else:
        SimpleTrainer.write_metrics(loss_dict, data_time, prefix)


class InnerTrainerState:
    """Mixin for a ``DefaultTrainer`` subclass: its checkpoints hold the inner trainer's state
    (``"_trainer"``: optimizer, grad scaler, ...) on v0.6 as on main, and a checkpoint without it
    (written by v0.6's ``DefaultTrainer``) resumes on either with a warning that the optimizer
    state starts anew, instead of main's ``KeyError``."""

    def state_dict(self):
        ret = super().state_dict()
        if "_trainer" not in ret:  # v0.6
            ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        if "_trainer" not in state_dict:
            logger.warning(
                "The checkpoint has no '_trainer' state (Detectron2 v0.6's DefaultTrainer saves "
                "no optimizer state): resuming with a fresh optimizer state"
            )
            TrainerBase.load_state_dict(self, state_dict)
            return
        super().load_state_dict(state_dict)
        if not _DEFAULT_TRAINER_LOADS_INNER:
            self._trainer.load_state_dict(state_dict["_trainer"])
