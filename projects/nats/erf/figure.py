"""Pictures of ERF maps: panels per model and per feature map, and the TensorBoard image.

Each panel shows a map normalised to its maximum (one shared colour bar), its 50% and 90% radii
(:func:`~.measure.erf_radius`) as circles around the centre and in its title. A map that reaches
the input's border (:func:`erf_reaches_border`) is cut off by the input: its radii are lower
bounds, which the panel says (red frame, "≥" radii) and a warning logs; measure it on a larger
``--size`` / ``MODEL.NATS.ERF.INPUT_SIZE`` for the true radius. Drawn without pyplot (no global
figure state).
"""

import logging
import textwrap

import numpy as np

from ..atomic import atomic_open
from .measure import erf_radius

__all__ = ["BORDER_LEVEL", "erf_image", "erf_reaches_border", "save_erf_figure"]

logger = logging.getLogger("nats.erf.figure")  # under visualize_erf.py's "nats" logger

# A map reaches the border when its mean on the outermost ring of pixels is at least this share
# of its maximum: the intensity the input cut off is then not negligible.
BORDER_LEVEL = 0.01
_CIRCLES = {0.5: ("#35d0ff", "--"), 0.9: ("#ffffff", "-")}  # mass -> colour, line style
_OTHER_CIRCLE = ("#9aff9a", ":")
_PANEL_INCHES = 1.6  # width of one map's panel; 100 dpi
_LABEL_CHARS = 20  # a row's label wraps after this many characters (a panel's height in bold 9 pt)


def erf_image(erf):
    """An ERF map as an RGB image [3, H, W] in [0, 1] (inferno colours, normalised to its
    maximum), the form ``EventStorage.put_image`` takes."""
    import matplotlib

    rgba = matplotlib.colormaps["inferno"](erf / max(float(erf.max()), 1e-12))
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1), dtype=np.float32)


def erf_reaches_border(erf, *, level=BORDER_LEVEL):
    """Whether an ERF map reaches the input's border (so the input cut it off).

    Args:
        erf (np.ndarray): an ERF map (H, W) of non-negative values.
        level (float): the share of the map's maximum that the mean over its outermost ring
            of pixels must reach.

    Returns:
        bool: False for an all-zero map.
    """
    erf = np.asarray(erf, dtype=np.float64)
    peak = float(erf.max())
    if peak <= 0:
        return False
    ring = np.concatenate([erf[0], erf[-1], erf[1:-1, 0], erf[1:-1, -1]])
    return float(ring.mean()) >= level * peak


def save_erf_figure(erfs, path, *, masses=(0.5, 0.9)):
    """Panels of ERF maps with their radius circles and a colour bar, written atomically; logs
    a warning for each map that reaches the input's border.

    Args:
        erfs (dict): label -> ERF map (H, W), one panel each in a row; or label -> {feature ->
            map}, a row per label and a column per feature (the features of the first label).
        path (str): the PNG file to write (160 px per panel).
        masses (tuple[float]): the shares of the intensity whose radii (:func:`erf_radius`) are
            drawn and given in the titles, each in (0, 1].

    Returns:
        list[tuple[str, str]]: the (label, feature) of the maps that reach the border.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    rows = {k: (v if isinstance(v, dict) else {"": v}) for k, v in erfs.items()}
    features = list(next(iter(rows.values())))
    width = _PANEL_INCHES * len(features) + 1.3
    fig = Figure(figsize=(width, 2.05 * len(rows) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), len(features), squeeze=False)
    cut = []
    for axes_row, (label, maps) in zip(axes, rows.items()):
        for ax, feature in zip(axes_row, features):
            erf = np.asarray(maps[feature])
            h, w = erf.shape
            ax.imshow(erf / max(float(erf.max()), 1e-12), cmap="inferno", vmin=0, vmax=1)
            border = erf_reaches_border(erf)
            sign = "\u2265" if border else ""
            radii = []
            for mass in masses:
                radius = erf_radius(erf, mass)
                colour, style = _CIRCLES.get(mass, _OTHER_CIRCLE)
                centre = ((w - 1) / 2, (h - 1) / 2)
                ax.add_patch(
                    Circle(centre, radius, fill=False, color=colour, linestyle=style, lw=0.9)
                )
                radii.append(f"{int(mass * 100)}%: {sign}{radius:.0f}")
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{feature}\n{'  '.join(radii)} px".strip(), fontsize=8, pad=3)
            if ax is axes_row[0]:
                # wrapped to the panel's height, so that a long label is never cut off
                ax.set_ylabel(textwrap.fill(label, _LABEL_CHARS), fontsize=9, fontweight="bold")
            if border:
                cut.append((label, feature))
                for spine in ax.spines.values():
                    spine.set(color="red", linewidth=2)
                ax.text(
                    0.5,
                    0.03,
                    "reaches the border",
                    color="red",
                    fontsize=7,
                    ha="center",
                    va="bottom",
                    transform=ax.transAxes,
                    bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "linewidth": 0},
                )
    bar = fig.colorbar(
        ScalarMappable(Normalize(0, 1), cmap="inferno"), ax=axes, shrink=0.9, aspect=25, pad=0.01
    )
    bar.set_label("intensity / maximum", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    handles = []
    for mass in masses:
        colour, style = _CIRCLES.get(mass, _OTHER_CIRCLE)
        handles.append(Line2D([], [], color=colour, linestyle=style, label=f"{mass:.0%} radius"))
    legend = fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=len(handles) + 1,
        fontsize=8,
        facecolor="#404040",
        labelcolor="white",
        framealpha=1,
        title=textwrap.fill(  # wrapped to the figure's width (8 pt: about 14 characters an inch)
            "radii (px) holding that share of the intensity; red frame and \u2265: the map "
            "reaches the input's border, so they are lower bounds",
            max(20, int(width * 14)),
        ),
    )
    legend.get_title().set(fontsize=8, color="white")
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100, pil_kwargs={"optimize": True})
    for label, feature in cut:
        logger.warning(
            f"ERF of {label} {feature} reaches the input's border: the input cut it off, so its "
            "radii are lower bounds; measure on a larger input (visualize_erf.py --size, "
            "MODEL.NATS.ERF.INPUT_SIZE) for the true ones"
        )
    return cut
