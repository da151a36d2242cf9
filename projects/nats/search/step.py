"""The search step (paper section 3.2): a weight step, then (after warm-up) an architecture step.

The weight step is Detectron2's ``SimpleTrainer``/``AMPTrainer`` step on the weight split (SGD,
weights only: the logits have ``requires_grad=False`` then). The architecture step runs the
unwrapped model on a batch of the architecture split with only the logits requiring gradients
(no weight gradient is computed), takes ``autograd.grad`` w.r.t. the logits, averages it over
ranks and steps Adam. Its forward and metrics sit in ``EventStorage.name_scope("arch")``, since
the RPN/ROI heads write scalars during forward. Every step reseeds the RNGs from
(seed, iteration, rank), so a resumed run repeats an uninterrupted one exactly.

Memory: the weight gradients are freed as soon as the weight optimizer has used them (Detectron2
keeps them until the next backward), so neither the architecture step nor the next forward runs
beside a stale copy of every weight's gradient, which setting C's dilated replicas make large
(``benchmarks/README.md``). In one process, the mixed ops' weights are even updated inside the
backward (:mod:`.fused_weight_update`), so their gradients never all exist at once.
"""

import contextlib
import time

import torch
import torch.distributed as dist
from detectron2.engine import AMPTrainer, SimpleTrainer
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage
from torch.nn.parallel import DistributedDataParallel

from ..compat.engine import restart_data_iterator, write_metrics
from .fused_weight_update import attach_fused_weight_update
from .loader import derive_seed, seed_rngs

__all__ = ["SearchStepTrainer", "AMPSearchStepTrainer"]

# A search stops with a FloatingPointError (before any hook writes a checkpoint or architecture)
# when its weight loss exceeds DIVERGENCE_FACTOR x its mean over the first REFERENCE_ITERS
# iterations, or a logit exceeds LOGIT_BOUND in magnitude (softmax saturates far below: a sane
# search's logits stay within a few tens); non-finite losses stop it as Detectron2 stops them.
DIVERGENCE_FACTOR = 1e3
REFERENCE_ITERS = 20
LOGIT_BOUND = 1e4


@contextlib.contextmanager
def _naming_the_step(step, iteration):
    """Prefix a FloatingPointError with the step and the iteration it happened in."""
    try:
        yield
    except FloatingPointError as e:
        raise FloatingPointError(f"{step} step at iteration {iteration}: {e}") from None


class _SearchStepMixin:
    def __init__(
        self,
        *,
        model,
        data_loader,
        optimizer,
        arch_data_loader,
        arch_optimizer,
        arch_params,
        arch_start_iter,
        seed,
        fused_weight_update_params=(),
        sampling=None,
        **trainer_kwargs,
    ):
        """
        Args:
            model (nn.Module): the supernet detector in training mode (returns a loss dict),
                wrapped in DDP when there are several processes.
            data_loader (ResumableLoader): batches of the weight split.
            optimizer (torch.optim.Optimizer): the weight optimizer (logits excluded).
            arch_data_loader (ResumableLoader): batches of the architecture split; its batch
                ``k`` is used at iteration ``arch_start_iter + k``.
            arch_optimizer (torch.optim.Optimizer): the logits' optimizer (Adam).
            arch_params (list[tuple[str, nn.Parameter]]): ``[(block_name, alpha)]`` from
                :func:`~.optim.detach_arch_parameters` (``requires_grad`` off).
            arch_start_iter (int): the first iteration with an architecture step.
            seed (int): the seed of both loaders' streams and of the steps' RNGs; saved in the
                trainer's state, and restored from it on resume.
            fused_weight_update_params: weights that SGD updates inside the backward
                (:mod:`.fused_weight_update`); empty: ``optimizer.step()`` updates every weight.
            sampling (SamplingSchedule or None): the "sample" mode's temperature schedule, whose
                draws are set before each step's forward; None in "mix" mode.
            trainer_kwargs: further keywords of the Detectron2 trainer (``AMPTrainer``'s
                ``grad_scaler``).
        """
        super().__init__(model, data_loader, optimizer, **trainer_kwargs)
        self.arch_data_loader = arch_data_loader
        self.arch_optimizer = arch_optimizer
        self.arch_params = [alpha for _, alpha in arch_params]
        self.arch_param_names = [name for name, _ in arch_params]
        self._reference_losses = []  # the weight losses that divergence is measured against
        self.arch_start_iter = arch_start_iter
        self.seed = seed
        self.sampling = sampling
        inner = self.model.module if isinstance(self.model, DistributedDataParallel) else self.model
        self._inner_model = inner
        ids = {id(p) for p in self.arch_params}
        # Weights that train (frozen ones stay frozen); switched off during architecture steps.
        self._weights = [p for p in inner.parameters() if p.requires_grad and id(p) not in ids]
        self.fused_weight_update_params = list(fused_weight_update_params)
        attach_fused_weight_update(self.optimizer, self.fused_weight_update_params)
        self.restart_data(0)

    def restart_data(self, start_iter):
        """Start both loaders at the batches of iteration ``start_iter`` (after a resume)."""
        for loader in (self.data_loader, self.arch_data_loader):
            loader.stream.seed = self.seed
        self.data_loader.set_start_iter(start_iter)
        self.arch_data_loader.set_start_iter(max(0, start_iter - self.arch_start_iter))
        restart_data_iterator(self)
        self._arch_data_loader_iter = iter(self.arch_data_loader)

    def is_arch_iter(self, iteration):
        """Architecture steps depend on the iteration only, so all ranks agree."""
        return iteration >= self.arch_start_iter

    def run_step(self):
        seed_rngs(derive_seed(self.seed, "weight-step", self.iter, comm.get_rank()))
        self._set_draws("weight")
        with _naming_the_step("weight", self.iter):
            super().run_step()
            self._check_weight_loss()
        self.optimizer.zero_grad(set_to_none=True)  # used: free them before the next forward
        if self.is_arch_iter(self.iter):
            self.run_arch_step()

    def _set_draws(self, step):
        if self.sampling is not None:
            self.sampling.apply(
                self._inner_model, run_seed=self.seed, step=step, iteration=self.iter
            )
            if step == "weight":
                get_event_storage().put_scalar("search/tau", self.sampling.tau(self.iter))

    def _check_weight_loss(self):
        """Stop a diverging search: a weight loss over ``DIVERGENCE_FACTOR`` x its mean over the
        first ``REFERENCE_ITERS`` iterations (rank 0, where Detectron2 gathers the losses and
        refuses non-finite ones)."""
        history = get_event_storage().histories().get("total_loss")
        if history is None or not comm.is_main_process():
            return
        loss = history.latest()
        if len(self._reference_losses) < REFERENCE_ITERS:
            self._reference_losses.append(loss)
        reference = sum(self._reference_losses) / len(self._reference_losses)
        if loss > DIVERGENCE_FACTOR * max(reference, 1e-3):
            raise FloatingPointError(
                f"total_loss {loss:.4g} is over {DIVERGENCE_FACTOR:g} x its mean over the first "
                f"iterations ({reference:.4g}): the search diverged (SOLVER.BASE_LR too high?)"
            )

    def _check_logits(self):
        """Stop before a non-finite or runaway logit reaches a checkpoint or a decoding."""
        for name, alpha in zip(self.arch_param_names, self.arch_params):
            if not torch.isfinite(alpha).all() or alpha.abs().max() > LOGIT_BOUND:
                raise FloatingPointError(
                    f"the logits of {name} are not finite or exceed {LOGIT_BOUND:g} in magnitude "
                    f"(max |alpha| {alpha.abs().max().item():.4g}): the architecture search "
                    "diverged (MODEL.NATS.SEARCH.ARCH.BASE_LR too high?)"
                )

    @contextlib.contextmanager
    def _logits_only(self):
        for p in self._weights:
            p.requires_grad_(False)
        for p in self.arch_params:
            p.requires_grad_(True)
        try:
            yield
        finally:
            for p in self.arch_params:
                p.requires_grad_(False)
            for p in self._weights:
                p.requires_grad_(True)

    def _autocast(self):
        return contextlib.nullcontext()

    def run_arch_step(self):
        """One Adam step of the logits on a batch of the architecture split."""
        start = time.perf_counter()
        data = next(self._arch_data_loader_iter)
        data_time = time.perf_counter() - start
        seed_rngs(derive_seed(self.seed, "arch-step", self.iter, comm.get_rank()))
        self._set_draws("arch")
        with get_event_storage().name_scope("arch"), self._logits_only():
            with self._autocast():
                loss_dict = self._inner_model(data)
                losses = sum(loss_dict.values())
            grads = torch.autograd.grad(self._scale_arch_loss(losses), self.arch_params)
            with _naming_the_step("architecture", self.iter):
                write_metrics(loss_dict, data_time, iteration=self.iter)
        if comm.get_world_size() > 1:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat /= comm.get_world_size()
            grads = torch.split(flat, [g.numel() for g in grads])
        for p, g in zip(self.arch_params, grads):
            p.grad = g.reshape(p.shape).clone()
        self._arch_optimizer_step()
        for p in self.arch_params:
            p.grad = None
        with _naming_the_step("architecture", self.iter):
            self._check_logits()

    def _scale_arch_loss(self, losses):
        return losses

    def _arch_optimizer_step(self):
        self.arch_optimizer.step()

    def state_dict(self):
        ret = super().state_dict()
        ret["arch_optimizer"] = self.arch_optimizer.state_dict()
        ret["search_seed"] = self.seed
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.arch_optimizer.load_state_dict(state_dict["arch_optimizer"])
        self.seed = state_dict.get("search_seed", self.seed)


class SearchStepTrainer(_SearchStepMixin, SimpleTrainer):
    """``SimpleTrainer`` whose step adds an architecture step on a second data loader.

    Each iteration: a weight step on ``data_loader``, then from ``arch_start_iter`` on an
    ``arch_optimizer`` step of the logits on a batch of ``arch_data_loader``. Takes keyword
    arguments only: ``model``, ``data_loader``, ``optimizer``, ``arch_data_loader``,
    ``arch_optimizer``, ``arch_params``, ``arch_start_iter``, ``seed`` and, optionally,
    ``fused_weight_update_params`` and ``sampling`` (described in
    ``_SearchStepMixin.__init__``).
    """


class AMPSearchStepTrainer(_SearchStepMixin, AMPTrainer):
    """The AMP variant: both steps under autocast, each with its own gradient scaler."""

    def __init__(self, **kwargs):
        """
        Args:
            kwargs: as :class:`SearchStepTrainer`; ``fused_weight_update_params`` must be empty.

        Raises:
            ValueError: if ``fused_weight_update_params`` is not empty.
        """
        # scaled gradients are not final when they accumulate
        if kwargs.get("fused_weight_update_params"):
            raise ValueError(
                "AMPSearchStepTrainer: fused_weight_update_params needs unscaled gradients"
            )
        super().__init__(grad_scaler=torch.amp.GradScaler("cuda"), **kwargs)
        self.arch_grad_scaler = torch.amp.GradScaler("cuda")

    def _autocast(self):
        return torch.autocast("cuda")

    def _scale_arch_loss(self, losses):
        return self.arch_grad_scaler.scale(losses)

    def _arch_optimizer_step(self):
        self.arch_grad_scaler.step(self.arch_optimizer)  # unscales, skips on inf/NaN
        self.arch_grad_scaler.update()

    def state_dict(self):
        ret = super().state_dict()
        ret["arch_grad_scaler"] = self.arch_grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.arch_grad_scaler.load_state_dict(state_dict["arch_grad_scaler"])
