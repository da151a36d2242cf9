"""``SearchTrainer``: Detectron2's ``DefaultTrainer`` workflow for the architecture search.

``DefaultTrainer.__init__`` builds one loader, one optimizer and one scheduler; this subclass
overrides it (same order: model -> optimizers -> loaders -> DDP -> step trainer -> schedulers ->
checkpointer -> hooks) to build two of each. The checkpoint holds the model (logits included),
both optimizers, both schedulers (as hook states), the data seed and the iteration; after a
resume both loaders restart at the batches of the resumed iteration.
"""

import logging
import os
import weakref

from detectron2.data import DatasetMapper
from detectron2.engine import DefaultTrainer, TrainerBase, hooks
from detectron2.engine.defaults import create_ddp_model
from detectron2.utils import comm
from detectron2.utils.events import CommonMetricPrinter
from detectron2.utils.logger import setup_logger

from ..architecture import decode_architecture_from_cfg
from ..architecture.retrain_config import network_record
from ..checkpoint import NATSCheckpointer
from ..compat.engine import InnerTrainerState
from ..config import check_search_config
from ..erf import build_erf_hook
from ..evaluation import build_coco_evaluator
from ..modeling import mixed_ops
from .decision import SearchDecisionTracker
from .eta import SearchMetricPrinter
from .fused_weight_update import fused_weight_update_params
from .hooks import ArchitectureLogger, ArchLRScheduler
from .loader import ResumableLoader, SeededBatchStream
from .optim import build_search_optimizers, detach_arch_parameters
from .report import SearchReport, schedule_text
from .sampling import SamplingSchedule
from .schedule import build_arch_lr_scheduler, build_weight_lr_scheduler, resolve_search_schedule
from .splits import load_search_splits
from .step import AMPSearchStepTrainer, SearchStepTrainer

__all__ = ["SearchTrainer", "create_search_ddp_model"]

logger = logging.getLogger(__name__)

# Per image, an architecture step (a forward and a backward without weight gradients) over a
# weight step, which the ETA assumes until the first architecture steps are timed.
ARCH_STEP_COST = 0.75


def create_search_ddp_model(model, *, find_unused_parameters=False):
    """DDP when there are several processes; no ``device_ids`` for a CPU model (gloo).

    Args:
        model (nn.Module): the supernet detector on its device, its logits detached
            (:func:`~.optim.detach_arch_parameters`) so that DDP does not reduce them.
        find_unused_parameters (bool): DDP's option: needed when a step may leave weights
            without gradients (the "sample" mode).

    Returns:
        nn.Module: ``model`` itself in one process, else a ``DistributedDataParallel`` around it
        (``broadcast_buffers=False``).
    """
    on_cpu = next(model.parameters()).device.type == "cpu"
    kwargs = {"device_ids": None} if on_cpu else {}
    return create_ddp_model(
        model, broadcast_buffers=False, find_unused_parameters=find_unused_parameters, **kwargs
    )


class SearchTrainer(InnerTrainerState, DefaultTrainer):
    """Alternating weight/architecture optimization on two splits, with Detectron2's hooks."""

    def __init__(self, cfg):
        """Build the whole search: splits, schedule, supernet, optimizers, loaders, hooks.

        Args:
            cfg (CfgNode): a search config: Detectron2's ``get_cfg()`` with
                :func:`~projects.nats.add_nats_config`'s keys, ``MODEL.BACKBONE.NAME`` one of
                the supernet backbones, registered ``DATASETS.TRAIN`` (and optionally
                ``MODEL.NATS.SEARCH.ARCH.DATASETS``), and the length in
                ``MODEL.NATS.SEARCH.EPOCHS`` (``SOLVER.MAX_ITER`` 0) or ``SOLVER.MAX_ITER``
                (EPOCHS 0). It is checked (:func:`~projects.nats.config.check_search_config`)
                and scaled to the world size (:meth:`auto_scale_workers`) but not modified:
                ``self.cfg`` is a copy with ``SOLVER.MAX_ITER`` set to the resolved length.
                ``SEED`` < 0: a seed drawn once and shared by all processes.

        Raises:
            ValueError: from the config, split and schedule checks, naming the key.
            FileNotFoundError: if a local ``MODEL.WEIGHTS`` does not exist (and no
                ``last_checkpoint`` in ``OUTPUT_DIR`` replaces it).
        """
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        check_search_config(cfg)
        cfg = self.auto_scale_workers(cfg, comm.get_world_size())
        weight_dicts, arch_dicts = load_search_splits(cfg)
        self.schedule = resolve_search_schedule(cfg, len(weight_dicts))
        cfg = cfg.clone()
        cfg.defrost()
        cfg.SOLVER.MAX_ITER = self.schedule.max_iter
        cfg.freeze()
        logging.getLogger("detectron2").info(  # as Detectron2's own log lines: log.txt, terminal
            schedule_text(
                cfg,
                self.schedule,
                num_weight_images=len(weight_dicts),
                num_arch_images=len(arch_dicts),
            )
        )

        model = self.build_model(cfg)
        arch = detach_arch_parameters(model)
        optimizer, arch_optimizer = build_search_optimizers(cfg, model, arch)
        seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
        data_loader = self.build_search_loader(cfg, weight_dicts, "weight", seed)
        arch_loader = self.build_search_loader(cfg, arch_dicts, "arch", seed)

        fused = fused_weight_update_params(cfg, model, optimizer)
        sampling = SamplingSchedule.from_config(cfg, self.schedule.max_iter)
        # a sampled search leaves the replicas that no group drew without gradients
        model = create_search_ddp_model(model, find_unused_parameters=sampling is not None)
        step_cls = AMPSearchStepTrainer if cfg.SOLVER.AMP.ENABLED else SearchStepTrainer
        self._trainer = step_cls(
            model=model,
            data_loader=data_loader,
            optimizer=optimizer,
            arch_data_loader=arch_loader,
            arch_optimizer=arch_optimizer,
            arch_params=arch,
            arch_start_iter=self.schedule.arch_start_iter,
            seed=seed,
            fused_weight_update_params=fused,  # [] with AMP: fused_weight_update_params checks
            sampling=sampling,
        )
        self.arch_params = arch
        self.scheduler = build_weight_lr_scheduler(cfg, optimizer, self.schedule.max_iter)
        self.arch_scheduler = build_arch_lr_scheduler(arch_optimizer, self.schedule.max_iter)
        self.checkpointer = NATSCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = self.schedule.max_iter
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @property
    def optimizer(self):
        """The weight optimizer (SGD over the weights)."""
        return self._trainer.optimizer

    @property
    def arch_optimizer(self):
        """The architecture optimizer (Adam over the logits)."""
        return self._trainer.arch_optimizer

    @classmethod
    def build_search_loader(cls, cfg, dataset_dicts, split, seed):
        """A resumable loader of one split ("weight": SOLVER.IMS_PER_BATCH images per step,
        "arch": MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH).

        Samples are mapped by Detectron2's ``DatasetMapper(cfg, is_train=True)``.

        Args:
            cfg (CfgNode): the search config; reads the split's ``IMS_PER_BATCH`` (over all
                processes), ``DATALOADER.NUM_WORKERS`` and what ``DatasetMapper`` reads.
            dataset_dicts (list[dict]): the split's dataset dicts.
            split (str): "weight" or "arch"; also the stream's name in its seeds.
            seed (int): the data seed.

        Returns:
            ResumableLoader: batches of ``IMS_PER_BATCH / world size`` images for this process.

        Raises:
            ValueError: if the split's IMS_PER_BATCH is not a positive multiple of the number
                of processes.
        """
        total = (
            cfg.SOLVER.IMS_PER_BATCH
            if split == "weight"
            else cfg.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH
        )
        key = (
            "SOLVER.IMS_PER_BATCH" if split == "weight" else "MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH"
        )
        world = comm.get_world_size()
        if total <= 0 or total % world:
            raise ValueError(f"{key}={total} must be a positive multiple of the {world} processes")
        stream = SeededBatchStream(
            dataset=dataset_dicts,
            mapper=DatasetMapper(cfg, True),
            batch_size=total // world,
            seed=seed,
            name=split,
        )
        return ResumableLoader(stream, num_workers=cfg.DATALOADER.NUM_WORKERS)

    def load_state_dict(self, state_dict):
        """Restore the iteration, the hooks' states (schedulers) and the step trainer's (both
        optimizers, the data seed), saved by :class:`InnerTrainerState` on either Detectron2.

        Args:
            state_dict (dict): the trainer state of a checkpoint written by ``SearchTrainer``.

        Raises:
            KeyError: if it has no ``"_trainer"`` state (not written by ``SearchTrainer``).
        """
        if "_trainer" not in state_dict:
            raise KeyError(
                "the checkpoint has no '_trainer' state (optimizers, data seed): it was not "
                "written by SearchTrainer, so a search cannot resume from it"
            )
        super().load_state_dict(state_dict)

    def resume_or_load(self, resume=True):
        """Load as ``DefaultTrainer`` does, then restart both loaders at the resumed iteration.

        Args:
            resume (bool): True: resume from ``OUTPUT_DIR``'s ``last_checkpoint`` if there is one
                (model, optimizers, schedulers, iteration, data seed), else load
                ``MODEL.WEIGHTS``; False: load ``MODEL.WEIGHTS`` and start at iteration 0.
        """
        super().resume_or_load(resume=resume)
        self._trainer.restart_data(self.start_iter)

    def build_hooks(self):
        cfg = self.cfg
        ret = [
            hooks.IterationTimer(),
            hooks.LRScheduler(self.optimizer, self.scheduler),
            ArchLRScheduler(self.arch_optimizer, self.arch_scheduler),
        ]
        if comm.is_main_process():
            blocks = self.searched_blocks()
            decision_path = os.path.join(cfg.OUTPUT_DIR, "search_decision.json")
            tracker = SearchDecisionTracker(
                blocks=blocks,
                arch_start_iter=self._trainer.arch_start_iter,
                max_iter=self.max_iter,
                output_path=decision_path,
            )
            arch_logger = ArchitectureLogger(
                blocks=blocks,
                decode_fn=self.decode_architecture,
                period=cfg.MODEL.NATS.SEARCH.LOG_PERIOD,
                checkpoint_period=cfg.SOLVER.CHECKPOINT_PERIOD,
                output_dir=cfg.OUTPUT_DIR,
            )
            # The tracker before the checkpointer, so that a checkpoint holds its state of its
            # step; the report after both, so that it logs the final files.
            ret += [
                tracker,
                hooks.PeriodicCheckpointer(self.checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD),
                arch_logger,
                SearchReport(
                    architecture_logger=arch_logger, tracker=tracker, decision_path=decision_path
                ),
            ]

        def test_and_save_results():
            self._last_eval_results = self.test(self.cfg, self.model)
            return self._last_eval_results

        if cfg.TEST.EVAL_PERIOD > 0:  # v0.6's EvalHook would also evaluate at the end with 0
            ret.append(hooks.EvalHook(cfg.TEST.EVAL_PERIOD, test_and_save_results))
        if comm.is_main_process():
            ret.append(build_erf_hook(cfg, self.model))
            ret.append(hooks.PeriodicWriter(self.build_writers(), period=20))
        return [h for h in ret if h is not None]

    def build_writers(self):
        """Detectron2's writers (``default_writers``), the terminal printer's ETA counting the
        architecture steps (:class:`~.eta.SearchMetricPrinter`; until they are timed, an
        iteration with one costs 1 + ``ARCH_STEP_COST`` x ARCH.IMS_PER_BATCH / IMS_PER_BATCH
        weight-only ones)."""
        writers = super().build_writers()
        ratio = self.cfg.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH / self.cfg.SOLVER.IMS_PER_BATCH
        printer = SearchMetricPrinter(
            self.max_iter,
            arch_start_iter=self._trainer.arch_start_iter,
            arch_cost=1 + ARCH_STEP_COST * ratio,
        )
        return [printer if isinstance(w, CommonMetricPrinter) else w for w in writers]

    def searched_blocks(self):
        """``[(block_name, alpha, candidates)]`` of the supernet's mixed ops, in module order."""
        ops = mixed_ops(self._trainer._inner_model)
        return [(name, op.alpha, [tuple(c) for c in op.candidates]) for name, op in ops]

    def decode_architecture(self, iteration):
        """The architecture the logits decode to now (eq. 4-6, with ``MODEL.NATS.DECODE``'s
        alignment and genotype cap), with search metadata.

        Args:
            iteration (int): the iteration stored in the file's ``meta`` (with ``max_iter`` and
                ``MODEL.WEIGHTS``).

        Returns:
            Architecture
        """
        meta = {
            "iteration": iteration,
            "max_iter": self.max_iter,
            "weights": self.cfg.MODEL.WEIGHTS,
            "search_config": os.path.join(self.cfg.OUTPUT_DIR, "config.yaml"),
            "network": network_record(self.cfg),  # tools/make_retrain_config.py reads it
        }
        return decode_architecture_from_cfg(self._trainer._inner_model, self.cfg, meta=meta)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        """:func:`~projects.nats.build_coco_evaluator` (same arguments)."""
        return build_coco_evaluator(cfg, dataset_name, output_folder)

    @staticmethod
    def auto_scale_workers(cfg, num_workers):
        """``DefaultTrainer.auto_scale_workers`` plus the search keys that scale with it.

        When ``SOLVER.REFERENCE_WORLD_SIZE`` is > 0 and not ``num_workers``,
        ``MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH`` scales as ``SOLVER.IMS_PER_BATCH`` does and
        ``MODEL.NATS.SEARCH.BASE_LR_END`` as ``SOLVER.BASE_LR``; the other NATS keys stay.

        Args:
            cfg (CfgNode): the search config (not modified).
            num_workers (int): the number of processes that run the search.

        Returns:
            CfgNode: a new config, or ``cfg`` itself when nothing scales.
        """
        old_ims, old_lr = cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.BASE_LR
        new = DefaultTrainer.auto_scale_workers(cfg, num_workers)
        if new is cfg:
            return cfg
        scale = new.SOLVER.IMS_PER_BATCH / old_ims
        frozen = new.is_frozen()
        new.defrost()
        new.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH = int(
            round(cfg.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH * scale)
        )
        new.MODEL.NATS.SEARCH.BASE_LR_END = (
            cfg.MODEL.NATS.SEARCH.BASE_LR_END * new.SOLVER.BASE_LR / old_lr
        )
        if frozen:
            new.freeze()
        return new
