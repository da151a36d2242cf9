"""Architecture search (paper 3.2): the search trainer, its data loaders, schedules and hooks."""

from .heatmap import save_architecture_heatmap
from .hooks import ArchitectureLogger, ArchLRScheduler, block_statistics
from .loader import ResumableLoader, SeededBatchStream, derive_seed
from .schedule import (
    SearchSchedule,
    build_arch_lr_scheduler,
    build_weight_lr_scheduler,
    resolve_search_schedule,
)
from .splits import load_search_splits, split_by_image_id
from .step import AMPSearchStepTrainer, SearchStepTrainer
from .trainer import SearchTrainer, check_search_config, create_search_ddp_model

__all__ = [
    "AMPSearchStepTrainer",
    "ArchLRScheduler",
    "ArchitectureLogger",
    "ResumableLoader",
    "SearchSchedule",
    "SearchStepTrainer",
    "SearchTrainer",
    "SeededBatchStream",
    "block_statistics",
    "build_arch_lr_scheduler",
    "build_weight_lr_scheduler",
    "check_search_config",
    "create_search_ddp_model",
    "derive_seed",
    "load_search_splits",
    "resolve_search_schedule",
    "save_architecture_heatmap",
    "split_by_image_id",
]
