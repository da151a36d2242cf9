"""A printed ETA of one's own in Detectron2's ``CommonMetricPrinter``.

Detectron2 has no public way to change the ETA its terminal printer shows: v0.6 and main both
compute it in the private ``CommonMetricPrinter._get_eta(storage)`` (median iteration time x
iterations left, also put into the EventStorage as ``eta_seconds``), which is overridden here and
nowhere else. A subclass gives the estimate in the public :meth:`ETAMetricPrinter.eta_seconds`.
"""

import datetime

from detectron2.utils.events import CommonMetricPrinter

__all__ = ["ETAMetricPrinter"]


class ETAMetricPrinter(CommonMetricPrinter):
    """``CommonMetricPrinter`` (same arguments) whose ETA is :meth:`eta_seconds`."""

    def eta_seconds(self, storage):
        """Seconds left after ``storage.iter``, or None for Detectron2's own estimate.

        Args:
            storage (EventStorage): the trainer's storage.
        """
        return None

    def _get_eta(self, storage):
        eta = self.eta_seconds(storage)
        if eta is None:
            return super()._get_eta(storage)
        storage.put_scalar("eta_seconds", eta, smoothing_hint=False)
        return str(datetime.timedelta(seconds=int(eta)))
