"""``ERFHook``: the ERFs of the model being trained, every N iterations, in TensorBoard.

Registered by ``train_net.py`` and ``search_net.py`` when ``MODEL.NATS.ERF.PERIOD`` > 0, on rank 0
only. Each measurement puts, per feature map, the ERF image (``erf/<feature>``) and its 50% and 90%
radii in pixels (``erf/<feature>/radius50``, ``.../radius90``) into the ``EventStorage``, so
TensorBoard shows them beside the losses and metrics.json gets the radii. The measurement leaves
the model as it was and consumes no random numbers, so training computes exactly what it would
without the hook.
"""

import torch
from detectron2.engine import HookBase
from torch.nn.parallel import DistributedDataParallel

from .figure import erf_image
from .measure import available_features, erf_maps, erf_radius

__all__ = ["ERFHook", "build_erf_hook"]


class ERFHook(HookBase):
    """Measures the ERFs of configured feature maps of the trained model's backbone."""

    def __init__(self, *, model, period, features, image_size):
        """
        Args:
            model (nn.Module): the detector being trained (DDP-wrapped or not); its ``backbone``
                (stock, supernet or decoded) is measured.
            period (int): measure after every ``period``-th iteration (> 0).
            features (list[str]): ResNet stages and FPN levels to measure, e.g. ``["res5",
                "p5"]``; empty: every map of :func:`available_features`.
            image_size (tuple[int, int]): (H, W) of the all-ones input.

        Raises:
            ValueError: naming ``MODEL.NATS.ERF.FEATURES`` and the accepted names, for a feature
                the backbone does not output.
        """
        if isinstance(model, DistributedDataParallel):
            model = model.module
        self._backbone = model.backbone
        accepted = available_features(self._backbone)
        self._features = list(features) or accepted
        unknown = [f for f in self._features if f not in accepted]
        if unknown:
            raise ValueError(
                f"MODEL.NATS.ERF.FEATURES: {unknown} are not feature maps of this backbone "
                f"({type(self._backbone).__name__}); accepted: {accepted}, or [] for all"
            )
        self._period = period
        self._image_size = tuple(image_size)

    def measure(self):
        """Measure now and put images and radii into the trainer's ``EventStorage``; returns
        ``{feature: (radius50, radius90)}``."""
        with torch.enable_grad():
            maps = erf_maps(self._backbone, self._features, self._image_size)
        storage, radii = self.trainer.storage, {}
        for feature, erf in maps.items():
            radii[feature] = erf_radius(erf, 0.5), erf_radius(erf, 0.9)
            storage.put_image(f"erf/{feature}", erf_image(erf))
            for mass, value in zip((50, 90), radii[feature]):
                storage.put_scalar(f"erf/{feature}/radius{mass}", value, smoothing_hint=False)
        return radii

    def after_step(self):
        if (self.trainer.iter + 1) % self._period == 0:
            self.measure()


def build_erf_hook(cfg, model):
    """The :class:`ERFHook` that ``MODEL.NATS.ERF`` asks for, or None with ``PERIOD`` 0.

    Args:
        cfg (CfgNode): a config with the NATS keys (``add_nats_config``).
        model (nn.Module): the detector being trained.
    """
    erf = cfg.MODEL.NATS.ERF
    if erf.PERIOD <= 0:
        return None
    return ERFHook(model=model, period=erf.PERIOD, features=erf.FEATURES, image_size=erf.INPUT_SIZE)
