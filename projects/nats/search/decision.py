"""Whether a search decided: per searched stage, the groups' softmax entropy and the stability
of their argmax.

A search that does not move ends with every group's softmax near uniform (entropy ln K for K
candidates), and its ``architecture.json`` is then the argmax of near-equal logits: noise. This
hook reports, per stage, the mean group entropy after the first architecture step and at the
end (with ln K beside them), and the share of groups whose argmax did not change over the last
quarter of the architecture steps. It puts them into the EventStorage
(``arch_stage/<stage>/{entropy_first,entropy_last,stable_share}``) and writes
``search_decision.json`` when the search completes. Its state is checkpointed, so a resumed search
reports what an uninterrupted one does.
"""

import json
import math
from collections import defaultdict

import torch
from detectron2.engine import HookBase

from ..atomic import atomic_open
from .hooks import block_statistics

__all__ = ["SearchDecisionTracker"]


class SearchDecisionTracker(HookBase):
    """Per-stage entropy and argmax stability of the logits (register on rank 0)."""

    def __init__(self, *, blocks, arch_start_iter, max_iter, output_path):
        """
        Args:
            blocks (list): ``[(block_name, alpha, candidates)]`` of the supernet's mixed ops.
            arch_start_iter (int): the first iteration with an architecture step.
            max_iter (int): the search's length.
            output_path (str): where ``search_decision.json`` is written at the end.
        """
        self._blocks = blocks
        self._first_iter = arch_start_iter
        num_arch_steps = max_iter - arch_start_iter
        self._stable_from = max_iter - max(1, num_arch_steps // 4)  # the last quarter's start
        self._max_iter = max_iter
        self._output_path = output_path
        self._entropy_first = None  # {stage: mean group entropy after the first arch step}
        self._snapshot = None  # {block: argmax per group at the last quarter's start}
        self._changed = None  # {block: bool per group: changed since the snapshot}

    def _entropies(self):
        """Per stage, the mean softmax entropy over all its groups (of all its blocks)."""
        sums, counts = defaultdict(float), defaultdict(int)
        for name, alpha, _ in self._blocks:
            stage = name.split(".")[0]
            sums[stage] += block_statistics(alpha)[1] * alpha.shape[0]
            counts[stage] += alpha.shape[0]
        return {s: sums[s] / counts[s] for s in sums}

    def after_step(self):
        it = self.trainer.iter
        if it == self._first_iter:
            self._entropy_first = self._entropies()
        if it >= self._stable_from:
            argmax = {name: alpha.detach().argmax(dim=1).cpu() for name, alpha, _ in self._blocks}
            if self._snapshot is None:
                self._snapshot = argmax
                self._changed = {
                    n: torch.zeros_like(a, dtype=torch.bool) for n, a in argmax.items()
                }
            else:
                for n, a in argmax.items():
                    self._changed[n] |= a != self._snapshot[n]
        if it + 1 == self._max_iter:
            self._report()

    def summary(self):
        """Per stage: ``num_candidates``, ``ln_K``, ``entropy_first``, ``entropy_last``,
        ``groups``, ``stable_groups`` and ``stable_share`` (None where not measured yet)."""
        last = self._entropies()
        out = {}
        for name, alpha, candidates in self._blocks:
            stage = name.split(".")[0]
            row = out.setdefault(
                stage,
                {
                    "num_candidates": len(candidates),
                    "ln_K": math.log(len(candidates)),
                    "entropy_first": (self._entropy_first or {}).get(stage),
                    "entropy_last": last[stage],
                    "groups": 0,
                    "stable_groups": None if self._changed is None else 0,
                },
            )
            row["groups"] += alpha.shape[0]
            if self._changed is not None:
                row["stable_groups"] += int((~self._changed[name]).sum())
        for row in out.values():
            stable = row["stable_groups"]
            row["stable_share"] = None if stable is None else stable / row["groups"]
        return out

    def _report(self):
        summary = self.summary()
        storage = self.trainer.storage
        for stage, row in summary.items():
            for key in ("entropy_first", "entropy_last", "stable_share"):
                if row[key] is not None:
                    storage.put_scalar(f"arch_stage/{stage}/{key}", row[key], smoothing_hint=False)
        with atomic_open(self._output_path, "w") as f:
            json.dump(summary, f, indent=2)

    def state_dict(self):
        return {
            "entropy_first": self._entropy_first,
            "snapshot": self._snapshot,
            "changed": self._changed,
        }

    def load_state_dict(self, state):
        self._entropy_first = state["entropy_first"]
        self._snapshot = state["snapshot"]
        self._changed = state["changed"]
