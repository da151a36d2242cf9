"""Effective receptive fields (paper 4.4): measuring them (``measure.py``), their pictures
(``figure.py``), and a hook that follows them during training (``hook.py``); the command-line
tool is ``visualize_erf.py`` at the repository root."""

from .figure import erf_image, save_erf_figure
from .hook import ERFHook, build_erf_hook
from .measure import available_features, compute_erf, erf_maps, erf_radius, linear_relus

__all__ = [
    "ERFHook",
    "available_features",
    "build_erf_hook",
    "compute_erf",
    "erf_image",
    "erf_maps",
    "erf_radius",
    "linear_relus",
    "save_erf_figure",
]
