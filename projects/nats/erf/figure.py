"""Pictures of ERF maps: panels per model and per feature map, and the TensorBoard image."""

import numpy as np

from ..atomic import atomic_open
from .measure import erf_radius

__all__ = ["save_erf_figure", "erf_image"]


def erf_image(erf):
    """An ERF map as an RGB image [3, H, W] in [0, 1] (inferno colours, normalised to its
    maximum), the form ``EventStorage.put_image`` takes."""
    import matplotlib

    rgba = matplotlib.colormaps["inferno"](erf / max(float(erf.max()), 1e-12))
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1), dtype=np.float32)


def save_erf_figure(erfs, path, *, mass=0.9):
    """Panels of ERF maps, each normalised to its maximum and titled with its radius; written
    atomically.

    Args:
        erfs (dict): label -> ERF map (H, W), one panel each in a row; or label -> {feature ->
            map}, a row per label and a column per feature (the features of the first label).
        path (str): the PNG file to write.
        mass (float): the share of the intensity whose radius (:func:`erf_radius`) the titles
            give, in (0, 1].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {k: (v if isinstance(v, dict) else {"": v}) for k, v in erfs.items()}
    features = list(next(iter(rows.values())))
    fig, axes = plt.subplots(
        len(rows),
        len(features),
        figsize=(3.6 * len(features), 3.9 * len(rows)),
        squeeze=False,
    )
    for axes_row, (label, maps) in zip(axes, rows.items()):
        for ax, feature in zip(axes_row, features):
            erf = maps[feature]
            ax.imshow(erf / max(float(erf.max()), 1e-12), cmap="inferno", vmin=0, vmax=1)
            name = f"{label} {feature}".strip()
            ax.set_title(f"{name}\n{int(mass * 100)}% radius: {erf_radius(erf, mass):.0f} px")
            ax.axis("off")
    fig.tight_layout()
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
