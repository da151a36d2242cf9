"""Hooks of a search: the logits' LR scheduler, and the architecture log/file/picture.

``ArchLRScheduler`` is a separate class so its scalar (``arch/lr``) and its state-dict key (the
hook class name) do not collide with the weights' ``LRScheduler``.
``ArchitectureLogger`` puts, per searched block, the genotype intensities I^g (eq. 5) and the
mean entropy of the groups' softmax into the EventStorage (so metrics.json and TensorBoard get
them), writes ``architecture.json`` at every checkpoint and at the end, puts the heatmap (shaded by
the groups' winning probabilities) into the EventStorage as the image ``arch/heatmap`` at the same
times (Detectron2's ``TensorboardXWriter`` writes it to TensorBoard), and writes it as
``architecture_heatmap.png`` at the end.
"""

import logging
import os
import warnings

import torch
from detectron2.engine import HookBase
from detectron2.engine.hooks import LRScheduler

from ..architecture import save_architecture, save_architecture_heatmap
from ..architecture.heatmap import architecture_heatmap_image

__all__ = ["ArchLRScheduler", "ArchitectureLogger", "block_statistics"]

logger = logging.getLogger(__name__)


class ArchLRScheduler(LRScheduler):
    """``LRScheduler`` for the architecture optimizer, logging ``arch/lr``.

    Constructed as Detectron2's ``LRScheduler``.

    Args:
        optimizer (torch.optim.Optimizer): the architecture optimizer (Adam over the logits).
        scheduler: its LR scheduler (:func:`~.schedule.build_arch_lr_scheduler`).
    """

    def after_step(self):
        lr = self._optimizer.param_groups[self._best_param_group_id]["lr"]
        self.trainer.storage.put_scalar("arch/lr", lr, smoothing_hint=False)
        with warnings.catch_warnings():  # no optimizer.step() yet during the warm-up: expected
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            self.scheduler.step()


@torch.no_grad()
def block_statistics(alpha):
    """(I^g per candidate, mean over groups of the softmax entropy in nats) of one block.

    Args:
        alpha (Tensor): the block's logits [num_groups, num_candidates].

    Returns:
        tuple[list[float], float]: per candidate (column), I^g: the share of the groups whose
        argmax it is; and the groups' mean softmax entropy, in nats.
    """
    alpha = alpha.detach().float().cpu()
    counts = torch.bincount(alpha.argmax(dim=1), minlength=alpha.shape[1])
    prob = alpha.softmax(dim=1)
    entropy = -(prob * prob.clamp_min(1e-12).log()).sum(dim=1).mean()
    return (counts.float() / alpha.shape[0]).tolist(), float(entropy)


class ArchitectureLogger(HookBase):
    """Logs the architecture as it learns; writes architecture.json and the heatmap."""

    def __init__(self, *, blocks, decode_fn, period, checkpoint_period, output_dir, heatmap=True):
        """Register on rank 0 only (it writes files).

        Args:
            blocks (list): ``[(block_name, alpha, candidates)]`` of the supernet's mixed ops,
                ``candidates`` the (dh, dw)s in the order of ``alpha``'s columns.
            decode_fn (callable): ``decode_fn(iteration)`` returns the current
                :class:`~projects.nats.architecture.Architecture`.
            period (int): iterations between logs of ``arch/<block>/I_<dh>x<dw>`` and
                ``arch/<block>/entropy`` to the EventStorage; also at the last iteration;
                <= 0: only there.
            checkpoint_period (int): iterations between writes of ``architecture.json``
                (``SOLVER.CHECKPOINT_PERIOD``); <= 0: only at the end.
            output_dir (str): where ``architecture.json`` and ``architecture_heatmap.png`` go.
            heatmap (bool): whether to draw the heatmap: into the EventStorage (``arch/heatmap``)
                at each write of ``architecture.json``, and to ``architecture_heatmap.png`` when
                the search completes.
        """
        self._blocks = blocks
        self._decode_fn = decode_fn
        self._period = period
        self._checkpoint_period = checkpoint_period
        self._output_dir = output_dir
        self._heatmap = heatmap
        self._finished = False  # whether the last step completed
        self.last_architecture = None  # the architecture last written

    @property
    def finished(self):
        """Whether the search's last step completed."""
        return self._finished

    @property
    def draws_heatmap(self):
        """Whether it draws the heatmap (``heatmap``)."""
        return self._heatmap

    @property
    def architecture_path(self):
        return os.path.join(self._output_dir, "architecture.json")

    @property
    def heatmap_path(self):
        return os.path.join(self._output_dir, "architecture_heatmap.png")

    def log_scalars(self):
        """Put each block's I^g and mean group entropy into the trainer's EventStorage."""
        storage = self.trainer.storage
        for name, alpha, candidates in self._blocks:
            intensities, entropy = block_statistics(alpha)
            storage.put_scalar(f"arch/{name}/entropy", entropy, smoothing_hint=False)
            for (dh, dw), value in zip(candidates, intensities):
                storage.put_scalar(f"arch/{name}/I_{dh}x{dw}", value, smoothing_hint=False)

    @property
    def logits(self):
        """``{block_name: alpha}`` of the searched blocks (the heatmap's shade)."""
        return {name: alpha for name, alpha, _ in self._blocks}

    def write_architecture(self, iteration, *, finished=False):
        """Decode the logits (``decode_fn(iteration)``), write ``architecture.json``, put its
        heatmap into the EventStorage (``arch/heatmap``) and return it.

        Args:
            iteration (int): iterations done, stored in the file and the heatmap's title.
            finished (bool): whether the search completed (the heatmap's title says so).
        """
        arch = self._decode_fn(iteration)
        arch.meta["final"] = bool(finished)  # true only once the search completed
        save_architecture(arch, self.architecture_path)
        self.last_architecture = arch
        if self._heatmap:
            image = architecture_heatmap_image(
                arch, logits=self.logits, iteration=iteration, finished=finished
            )
            self.trainer.storage.put_image("arch/heatmap", image)
        return arch

    def after_step(self):
        done = self.trainer.iter + 1
        is_last = done >= self.trainer.max_iter
        if (self._period > 0 and done % self._period == 0) or is_last:
            self.log_scalars()
        if self._checkpoint_period > 0 and done % self._checkpoint_period == 0 and not is_last:
            self.write_architecture(done)
        self._finished = is_last  # after_step runs only for a step that completed

    def after_train(self):
        if not self._finished:
            return  # stopped early (an exception, even in the last step): the last file stays
        arch = self.write_architecture(self.trainer.max_iter, finished=True)
        logger.info(f"Wrote the searched architecture to {self.architecture_path}")
        if self._heatmap:
            save_architecture_heatmap(
                arch,
                self.heatmap_path,
                logits=self.logits,
                iteration=self.trainer.max_iter,
                finished=True,
            )
            logger.info(f"Wrote the architecture heatmap to {self.heatmap_path}")
