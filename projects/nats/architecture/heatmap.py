"""A picture of a searched architecture: per stage, which dilation each channel group chose.

One panel per stage, a row per block and a column per channel group, each cell colored by the
chosen candidate (dh, dw); easier to take in than ``architecture.json``.
"""

import numpy as np

from ..atomic import atomic_open

__all__ = ["architecture_choices", "save_architecture_heatmap"]


def architecture_choices(arch):
    """``{stage: (block_names, matrix)}``: candidate index per (block, group), -1 = no group.

    Args:
        arch (Architecture): a decoded architecture.

    Returns:
        dict[str, tuple[list[str], np.ndarray]]: per stage, its block names by block index and
        an int64 matrix [blocks, the stage's largest num_groups]; cell (b, g) is the index in
        ``arch.candidates[stage]`` that group g of block b chose, -1 where block b has fewer
        groups.
    """
    stages = {}
    for name in arch.blocks:
        stages.setdefault(name.split(".")[0], []).append(name)
    out = {}
    for stage, names in stages.items():
        names = sorted(names, key=lambda n: int(n.split(".")[1]) if n.split(".")[1:] else 0)
        cands = [tuple(c) for c in arch.candidates[stage]]
        width = max(arch.blocks[n].num_groups for n in names)
        matrix = np.full((len(names), width), -1, dtype=np.int64)
        for row, n in enumerate(names):
            for group, dilation in arch.blocks[n].group_choices().items():
                matrix[row, group] = cands.index(dilation)
        out[stage] = (names, matrix)
    return out


def save_architecture_heatmap(arch, path, *, title="NATS architecture"):
    """Write the heatmap of ``arch`` (an :class:`~projects.nats.architecture.Architecture`) as a
    PNG at ``path``, atomically; returns ``path``.

    One panel per stage, a row per block and a column per channel group, each cell colored by
    the chosen (dh, dw), with a legend per stage.

    Args:
        arch (Architecture): the architecture to draw.
        path (str): the PNG file to write.
        title (str): the figure's title.

    Returns:
        str: ``path``.

    Raises:
        ValueError: if ``arch`` has no blocks.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    choices = architecture_choices(arch)
    if not choices:
        raise ValueError("the architecture has no searched blocks to draw")
    order = sorted(choices, key=lambda s: int(s[3:]) if s[3:].isdigit() else 0)
    num_cands = max(len(arch.candidates[s]) for s in order)
    palette = matplotlib.colormaps["tab10" if num_cands <= 10 else "tab20"]
    cmap = ListedColormap(["#ffffff"] + [palette(i) for i in range(num_cands)])
    norm = BoundaryNorm(np.arange(-1.5, num_cands), cmap.N)
    heights = [len(choices[s][0]) + 1.5 for s in order]
    fig, axes = plt.subplots(
        len(order),
        1,
        figsize=(10, 0.4 * sum(heights) + 1.5),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for ax, stage in zip(axes[:, 0], order):
        names, matrix = choices[stage]
        ax.imshow(matrix, cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(len(names)), labels=names)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("channel group")
        ax.set_title(stage, loc="left")
        ax.legend(
            handles=[
                Patch(color=cmap(norm(i)), label=f"({c[0]},{c[1]})")
                for i, c in enumerate(arch.candidates[stage])
            ],
            title="(dh, dw)",
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
        )
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)
    return path
