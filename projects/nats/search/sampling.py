"""The "sample" search mode's state: each step's draw seeds and the temperature schedule.

A sampled search (``MODEL.NATS.SEARCH.MODE "sample"``) draws one candidate per channel group in
every training forward (:meth:`~projects.nats.modeling.MixedDilationConv.draw`). The draws come
from a seed derived from (run seed, step, iteration, rank, block): independent across groups and
blocks, different across ranks, and repeated exactly by a resumed run; the logits, averaged over
ranks, stay identical everywhere. The temperature falls linearly from ``TAU[0]`` at the first
iteration to ``TAU[1]`` at the last (GDAS: 10 -> 0.1).
"""

from dataclasses import dataclass

from detectron2.utils import comm

from ..modeling.mixed_op import mixed_ops
from .loader import derive_seed

__all__ = ["SamplingSchedule", "set_sampling"]


def set_sampling(model, *, seed, tau):
    """Give every mixed op of ``model`` its draw seed (``seed`` and its block name) and ``tau``.

    Args:
        model (nn.Module): a supernet, or a module holding one.
        seed (int): the step's seed, e.g. ``derive_seed(run_seed, "weight", iteration, rank)``.
        tau (float): the temperature of the draws and of the straight-through softmax.
    """
    for name, op in mixed_ops(model):
        op.sample_seed = derive_seed(seed, name)
        op.tau = tau


@dataclass(frozen=True, kw_only=True)
class SamplingSchedule:
    """The temperature of a sampled search, linear in the iteration.

    Attributes:
        tau_start (float): the temperature at iteration 0.
        tau_end (float): the temperature at the last iteration.
        max_iter (int): the search's iterations.
    """

    tau_start: float
    tau_end: float
    max_iter: int

    @classmethod
    def from_config(cls, cfg, max_iter):
        """The schedule of ``MODEL.NATS.SEARCH.TAU``, or None when MODE is not "sample".

        Args:
            cfg (CfgNode): a search config (checked: ``check_search_mode_config``).
            max_iter (int): the search's iterations.

        Returns:
            SamplingSchedule or None
        """
        if cfg.MODEL.NATS.SEARCH.MODE != "sample":
            return None
        start, end = cfg.MODEL.NATS.SEARCH.TAU
        return cls(tau_start=float(start), tau_end=float(end), max_iter=max_iter)

    def tau(self, iteration):
        """The temperature at ``iteration``."""
        progress = min(iteration / max(self.max_iter - 1, 1), 1.0)
        return self.tau_start + (self.tau_end - self.tau_start) * progress

    def apply(self, model, *, run_seed, step, iteration):
        """Set the draws of one step of this rank (:func:`set_sampling`).

        Args:
            model (nn.Module): the supernet.
            run_seed (int): the search's seed.
            step (str): "weight" or "arch".
            iteration (int): the current iteration.
        """
        seed = derive_seed(run_seed, "sample", step, iteration, comm.get_rank())
        set_sampling(model, seed=seed, tau=self.tau(iteration))
