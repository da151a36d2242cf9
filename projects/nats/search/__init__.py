"""Architecture search (paper 3.2): ``SearchTrainer`` alternates SGD steps of the weights on one
split with Adam steps of the architecture logits on another, and writes ``architecture.json``.

Inside: the step (``step.py``), the two optimizers (``optim.py``) and their LR schedules
(``schedule.py``), the splits (``splits.py``) and their resumable loaders (``loader.py``), the
architecture log and file (``hooks.py``) and the in-backward weight update
(``fused_weight_update.py``).
"""

from .trainer import SearchTrainer

__all__ = ["SearchTrainer"]
