"""The ETA of a search, which counts its architecture steps.

Detectron2's ``CommonMetricPrinter`` estimates the remaining time as the median iteration time
times the iterations left. A search's iterations are of two kinds: weight-only ones (the warm-up)
and ones with an architecture step as well, which take longer, so that ETA jumps when the
architecture steps begin. :class:`SearchMetricPrinter` times each kind apart (the iteration
times ``IterationTimer`` puts into the EventStorage, split at the first architecture step) and
weights each by how many of its kind remain.
"""

import statistics

from ..compat.events import ETAMetricPrinter

__all__ = ["SearchMetricPrinter", "search_eta_seconds"]


def search_eta_seconds(*, iteration, max_iter, arch_start_iter, times, arch_cost, window=1000):
    """Seconds left after ``iteration``: weight-only and architecture iterations, each kind left
    times its median measured time.

    Args:
        iteration (int): the last iteration done (0-based, as ``EventStorage.iter``).
        max_iter (int): the search's iterations.
        arch_start_iter (int): the first iteration with an architecture step.
        times (list[tuple[float, int]]): measured (seconds, iteration) pairs, as
            ``storage.history("time").values()`` gives them.
        arch_cost (float): the assumed time of an iteration with an architecture step over a
            weight-only one, used for a kind not measured yet.
        window (int): how many of the latest times of a kind its median takes (Detectron2's
            printer takes 1000).

    Returns:
        float or None: None when nothing is measured yet.
    """
    weight = [t for t, it in times if it < arch_start_iter][-window:]
    arch = [t for t, it in times if it >= arch_start_iter][-window:]
    if not weight and not arch:
        return None
    t_weight = statistics.median(weight) if weight else statistics.median(arch) / arch_cost
    t_arch = statistics.median(arch) if arch else statistics.median(weight) * arch_cost
    first = iteration + 1  # the next iteration
    left_weight = max(0, min(arch_start_iter, max_iter) - first)
    left_arch = max(0, max_iter - max(first, arch_start_iter))
    return left_weight * t_weight + left_arch * t_arch


class SearchMetricPrinter(ETAMetricPrinter):
    """Detectron2's terminal printer (``CommonMetricPrinter``) with the ETA of
    :func:`search_eta_seconds`."""

    def __init__(self, max_iter, *, arch_start_iter, arch_cost, window_size=20):
        """
        Args:
            max_iter (int): the search's iterations.
            arch_start_iter (int): the first iteration with an architecture step.
            arch_cost (float): the assumed time of an iteration with an architecture step over
                a weight-only one, until the first ones are timed.
            window_size (int): as ``CommonMetricPrinter``'s (the losses' median window).
        """
        super().__init__(max_iter, window_size=window_size)
        self._search_max_iter = max_iter
        self._arch_start_iter = arch_start_iter
        self._arch_cost = arch_cost

    def eta_seconds(self, storage):
        try:
            times = storage.history("time").values()
        except KeyError:  # not timed yet: Detectron2's own estimate
            return None
        return search_eta_seconds(
            iteration=storage.iter,
            max_iter=self._search_max_iter,
            arch_start_iter=self._arch_start_iter,
            times=times,
            arch_cost=self._arch_cost,
        )
