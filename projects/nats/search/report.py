"""What a search tells its user in the log: its schedule at the start, what it decided at the end.

:func:`schedule_text` turns the resolved schedule into iterations (epochs -> iterations, the
weight-only warm-up, the first architecture step, how many there are, the checkpoint period);
:class:`SearchReport` logs, when the search completes, per stage the decoded network's share of
channels per dilation, the groups' mean entropy against ln K and the share of stable groups
(from :class:`~.decision.SearchDecisionTracker`), and where the files are. Both go to
Detectron2's logger, so they appear in the terminal and in ``OUTPUT_DIR/log.txt``.
"""

import logging

from detectron2.engine import HookBase

__all__ = ["SearchReport", "decision_text", "schedule_text"]

logger = logging.getLogger("detectron2")

# A stage whose mean group entropy at the end is at least this share of ln K is near uniform.
UNDECIDED_ENTROPY = 0.95


def _span(first, last):
    return f"iteration {first}" if first == last else f"iterations {first}-{last}"


def schedule_text(cfg, schedule, *, num_weight_images, num_arch_images):
    """The search's schedule in iterations, a line per item.

    Args:
        cfg (CfgNode): the search config (reads ``MODEL.NATS.SEARCH.{EPOCHS, WARMUP_EPOCHS,
            WARMUP_ITERS, ARCH.IMS_PER_BATCH}``, ``SOLVER.{IMS_PER_BATCH, CHECKPOINT_PERIOD}``).
        schedule (SearchSchedule): as :func:`~.schedule.resolve_search_schedule` resolved it.
        num_weight_images (int): images of the weight split.
        num_arch_images (int): images of the architecture split.

    Returns:
        str: iterations counted from 0, as Detectron2's log and checkpoint names count them.
    """
    s = cfg.MODEL.NATS.SEARCH
    n, start, per_epoch = schedule.max_iter, schedule.arch_start_iter, schedule.iters_per_epoch
    epoch = (
        f"{num_weight_images} weight-split images / SOLVER.IMS_PER_BATCH "
        f"{cfg.SOLVER.IMS_PER_BATCH} = {per_epoch:.1f} iterations per epoch"
    )
    if s.EPOCHS > 0:
        length = f"MODEL.NATS.SEARCH.EPOCHS {s.EPOCHS:g} x {per_epoch:.1f} = {n} iterations"
        warmup = f"MODEL.NATS.SEARCH.WARMUP_EPOCHS {s.WARMUP_EPOCHS:g}"
    else:
        length = f"SOLVER.MAX_ITER {n} iterations = {n / per_epoch:.2f} epochs"
        warmup = f"MODEL.NATS.SEARCH.WARMUP_ITERS {s.WARMUP_ITERS}"
    lines = [
        f"Search schedule ({epoch}):",
        f"  length: {length} ({_span(0, n - 1)})",
        "  weight-only warm-up: "
        + (f"{_span(0, start - 1)} ({warmup})" if start > 0 else f"none ({warmup})"),
        f"  first architecture step: iteration {start}; {n - start} architecture steps (one per "
        f"iteration, MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH {s.ARCH.IMS_PER_BATCH} of "
        f"{num_arch_images} architecture-split images)",
    ]
    period = cfg.SOLVER.CHECKPOINT_PERIOD
    at = [i - 1 for i in range(period, n, period)] if period > 0 else []
    shown = ", ".join(str(i) for i in at[:3]) + (", ..." if len(at) > 3 else "")
    lines.append(
        f"  checkpoint period: SOLVER.CHECKPOINT_PERIOD {period}: checkpoint, architecture.json "
        "and the heatmap in TensorBoard (arch/heatmap) after "
        + (f"iterations {shown} and at the end" if at else "the last iteration only")
    )
    return "\n".join(lines)


def decision_text(*, arch, summary, files, iteration):
    """The end-of-search summary: per stage, channels per dilation, entropy, stable share.

    Args:
        arch (Architecture): the decoded architecture written at the end.
        summary (dict): :meth:`~.decision.SearchDecisionTracker.summary` (per stage
            ``ln_K``, ``entropy_first``, ``entropy_last``, ``stable_groups``, ``groups``).
        files (dict): name -> path of the files to point at.
        iteration (int): the iterations done.

    Returns:
        str
    """
    lines = [
        f"Search finished after {iteration} iterations. Per stage: the decoded network's "
        "channels per dilation (dh,dw); the groups' mean softmax entropy at the first "
        "architecture step -> the end, of ln K (uniform); the groups whose choice held over the "
        "last quarter of the architecture steps:"
    ]
    for stage, cands in arch.candidates.items():
        blocks = [b for name, b in arch.blocks.items() if name.split(".")[0] == stage]
        total = sum(b.out_channels for b in blocks)
        channels = {tuple(c): 0 for c in cands}
        for block in blocks:
            for g in block.genotypes:
                channels[tuple(g.dilation)] += g.channels
        shares = "  ".join(f"({d[0]},{d[1]}) {c / total:.0%}" for d, c in channels.items())
        row = summary.get(stage, {})
        text = f"  {stage}: {shares}"
        if row.get("entropy_last") is not None:
            ln_k, last = row["ln_K"], row["entropy_last"]
            first = "?" if row.get("entropy_first") is None else f"{row['entropy_first']:.3f}"
            ratio = last / ln_k if ln_k > 0 else 0.0
            flag = ", near uniform: undecided" if ratio >= UNDECIDED_ENTROPY else ""
            text += (
                f" | entropy {first} -> {last:.3f} of ln {len(cands)} = {ln_k:.3f} "
                f"({ratio:.2f} ln K{flag})"
            )
        if row.get("stable_groups") is not None:
            text += f" | stable {row['stable_share']:.0%} ({row['stable_groups']}/{row['groups']})"
        lines.append(text)
    lines.append("Files: " + ", ".join(f"{k}: {v}" for k, v in files.items()))
    return "\n".join(lines)


class SearchReport(HookBase):
    """Logs :func:`decision_text` when the search completes (register on rank 0, after the
    :class:`~.hooks.ArchitectureLogger` and the :class:`~.decision.SearchDecisionTracker`)."""

    def __init__(self, *, architecture_logger, tracker, decision_path):
        """
        Args:
            architecture_logger (ArchitectureLogger): writes the final architecture and heatmap.
            tracker (SearchDecisionTracker): the per-stage entropy and stability.
            decision_path (str): where the tracker writes ``search_decision.json``.
        """
        self._arch_logger = architecture_logger
        self._tracker = tracker
        self._decision_path = decision_path

    def after_train(self):
        arch = self._arch_logger.last_architecture
        if not self._arch_logger.finished or arch is None:
            return  # stopped early: nothing was decided
        files = {
            "architecture.json": self._arch_logger.architecture_path,
            "search_decision.json": self._decision_path,
        }
        if self._arch_logger.draws_heatmap:
            files["heatmap"] = f"{self._arch_logger.heatmap_path} (TensorBoard: arch/heatmap)"
        text = decision_text(
            arch=arch,
            summary=self._tracker.summary(),
            files=files,
            iteration=self.trainer.max_iter,
        )
        logger.info(text)
