"""A picture of a searched architecture: per stage, which dilation each channel group chose, and
how sure the search was of it.

One panel per stage, a row per block and a column per channel group. A cell's hue is the (dh, dw)
its group chose, the same colour for the same dilation in every stage and every picture
(:func:`dilation_colour`); its shade is the group's winning probability (the largest entry of
the softmax of its logits), from pale at 1/K (uniform over the K candidates: nothing decided) to
the full colour at 1. The title gives the iteration and whether the search finished. Drawn
without pyplot (no global figure state), so a search can draw it at every checkpoint.
"""

import numpy as np

from ..atomic import atomic_open

__all__ = [
    "architecture_choices",
    "architecture_heatmap_image",
    "dilation_colour",
    "heatmap_cells",
    "save_architecture_heatmap",
    "winning_probabilities",
]

# Fixed hues of the paper's candidates (setting C: res3/res4 the first five, res5 all nine).
_FIXED_COLOURS = {
    (1, 1): "#1f77b4",  # blue
    (2, 2): "#ff7f0e",  # orange
    (3, 3): "#2ca02c",  # green
    (1, 3): "#d62728",  # red
    (3, 1): "#9467bd",  # purple
    (4, 4): "#8c564b",  # brown
    (5, 5): "#e377c2",  # pink
    (1, 5): "#bcbd22",  # olive
    (5, 1): "#17becf",  # cyan
}
_NO_GROUP = (0.25, 0.25, 0.25)  # a block with fewer groups than its stage's widest
_PALEST = 0.12  # the share of the hue in a cell whose group is uniform over its candidates


def dilation_colour(dilation):
    """The RGB colour (in [0, 1]) of a dilation (dh, dw) in every heatmap.

    The paper's candidates have fixed colours; any other pair gets one derived from (dh, dw)
    alone, so it too is the same in every stage and picture.
    """
    from matplotlib.colors import hsv_to_rgb, to_rgb

    dh, dw = (int(v) for v in dilation)
    if (dh, dw) in _FIXED_COLOURS:
        return to_rgb(_FIXED_COLOURS[(dh, dw)])
    hue = ((dh * 0.618034 + dw * 0.381966) % 1.0 + 0.05) % 1.0  # spread, deterministic
    return tuple(float(v) for v in hsv_to_rgb((hue, 0.55 + 0.1 * (dh % 3), 0.75)))


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


def winning_probabilities(arch, *, logits):
    """Per block, each group's winning probability: the largest entry of its logits' softmax.

    Args:
        arch (Architecture): the architecture the logits decoded to.
        logits (dict): block name -> its logits [num_groups, K] (Tensor or array), K the number
            of its stage's candidates; every block of ``arch`` must be there.

    Returns:
        dict[str, np.ndarray]: block name -> float64 [num_groups], each in [1/K, 1].

    Raises:
        ValueError: naming the block, if one is missing or its logits have the wrong shape.
    """
    out = {}
    for name, block in arch.blocks.items():
        if name not in logits:
            raise ValueError(f"no logits for block {name}; given: {sorted(logits)}")
        alpha = np.asarray(_to_numpy(logits[name]), dtype=np.float64)
        shape = (block.num_groups, len(arch.candidates[name.split(".")[0]]))
        if alpha.shape != shape:
            raise ValueError(f"the logits of block {name} have shape {alpha.shape}, not {shape}")
        e = np.exp(alpha - alpha.max(axis=1, keepdims=True))
        out[name] = (e / e.sum(axis=1, keepdims=True)).max(axis=1)
    return out


def _to_numpy(value):
    return value.detach().float().cpu().numpy() if hasattr(value, "detach") else value


def _progress(arch, iteration, finished):
    """The title's "iteration i of n, finished/not finished", from the arguments or arch.meta."""
    meta = arch.meta or {}
    iteration = meta.get("iteration") if iteration is None else iteration
    max_iter = meta.get("max_iter")
    if finished is None and isinstance(meta.get("final"), bool):
        finished = meta["final"]
    if finished is None and iteration is not None and max_iter:
        finished = iteration >= max_iter
    text = "iteration ?" if iteration is None else f"iteration {iteration}"
    text += f" of {max_iter}" if max_iter else ""
    status = {True: "finished", False: "not finished", None: "finished: unknown"}[finished]
    return f"{text}, {status}"


def heatmap_cells(arch, *, logits=None):
    """The colour of each cell of the heatmap: the hue of its group's (dh, dw)
    (:func:`dilation_colour`), mixed with white by its winning probability.

    Args:
        arch (Architecture): the architecture to draw.
        logits (dict or None): as :func:`save_architecture_heatmap`'s; None: full colours.

    Returns:
        dict[str, np.ndarray]: stage -> RGB in [0, 1], [blocks, groups, 3], the rows in the order
        of :func:`architecture_choices`; a missing group (a block with fewer groups than its
        stage's widest) dark grey.
    """
    probs = winning_probabilities(arch, logits=logits) if logits is not None else None
    out = {}
    for stage, (names, matrix) in architecture_choices(arch).items():
        cands = [tuple(c) for c in arch.candidates[stage]]
        k = len(cands)
        image = np.empty(matrix.shape + (3,))
        for row, name in enumerate(names):
            for group, index in enumerate(matrix[row]):
                if index < 0:
                    image[row, group] = _NO_GROUP
                    continue
                hue = np.asarray(dilation_colour(cands[index]))
                share = 1.0
                if probs is not None and k > 1:
                    decided = (probs[name][group] - 1 / k) / (1 - 1 / k)
                    share = _PALEST + (1 - _PALEST) * float(np.clip(decided, 0, 1))
                image[row, group] = 1 - share * (1 - hue)  # white -> hue
        out[stage] = image
    return out


def _figure(arch, *, logits, iteration, finished, title):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LinearSegmentedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    choices = architecture_choices(arch)
    if not choices:
        raise ValueError("the architecture has no searched blocks to draw")
    probs = winning_probabilities(arch, logits=logits) if logits is not None else None
    order = sorted(choices, key=lambda s: int(s[3:]) if s[3:].isdigit() else 0)
    heights = [len(choices[s][0]) + 1.8 for s in order]
    fig = Figure(figsize=(11, 0.38 * sum(heights) + 1.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(order), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    shown = []  # dilations drawn, in order of first appearance
    cells = heatmap_cells(arch, logits=logits)
    for ax, stage in zip(axes[:, 0], order):
        names, matrix = choices[stage]
        cands = [tuple(c) for c in arch.candidates[stage]]
        k = len(cands)
        image = cells[stage]
        ax.imshow(image, aspect="auto", interpolation="nearest")
        ax.set_xticks(np.arange(-0.5, matrix.shape[1]), minor=True)
        ax.set_yticks(np.arange(-0.5, matrix.shape[0]), minor=True)
        ax.grid(which="minor", color="#b0b0b0", linewidth=0.5)
        ax.tick_params(which="minor", length=0)
        step = max(1, matrix.shape[1] // 16)
        ax.set_xticks(range(0, matrix.shape[1], step))
        ax.set_yticks(range(len(names)), labels=names)
        ax.set_xlabel("channel group")
        label = f"{stage}: K={k} candidates"
        if probs is not None:
            mean = float(np.mean(np.concatenate([probs[n] for n in names])))
            label += f", mean winning probability {mean:.2f} (uniform: {1 / k:.2f})"
        ax.set_title(label, loc="left", fontsize="medium")
        shown += [cands[i] for i in np.unique(matrix[matrix >= 0]) if cands[i] not in shown]
    legend_order = [d for d in _FIXED_COLOURS if d in shown] + sorted(
        d for d in shown if d not in _FIXED_COLOURS
    )
    handles = [Patch(color=dilation_colour(d), label=f"({d[0]},{d[1]})") for d in legend_order]
    if (np.concatenate([m.ravel() for _, m in choices.values()]) < 0).any():
        handles.append(Patch(color=_NO_GROUP, label="no group"))
    fig.legend(handles=handles, title="(dh, dw)", loc="outside right upper", fontsize="small")
    if probs is not None:
        ramp = LinearSegmentedColormap.from_list("shade", [(1, 1, 1), (0.35, 0.35, 0.35)])
        bar = fig.colorbar(
            ScalarMappable(cmap=ramp), ax=axes[:, 0], location="bottom", shrink=0.5, aspect=40
        )
        bar.set_ticks([0, 1], labels=["1/K (undecided)", "1 (decided)"])
        bar.set_label("shade: the group's winning probability (softmax of its logits)")
    else:
        title += " (logits not given: shade not drawn)"
    fig.suptitle(f"{title}\n{_progress(arch, iteration, finished)}")
    return fig


def architecture_heatmap_image(
    arch, *, logits=None, iteration=None, finished=None, title="NATS search: chosen dilations"
):
    """The heatmap as an RGB image [3, H, W] (uint8), the form ``EventStorage.put_image`` takes
    (Detectron2's ``TensorboardXWriter`` then writes it to TensorBoard).

    Args: as :func:`save_architecture_heatmap` (without ``path``).

    Returns:
        np.ndarray: uint8 [3, H, W].
    """
    fig = _figure(arch, logits=logits, iteration=iteration, finished=finished, title=title)
    fig.canvas.draw()
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3].transpose(2, 0, 1))


def save_architecture_heatmap(
    arch,
    path,
    *,
    logits=None,
    iteration=None,
    finished=None,
    title="NATS search: chosen dilations",
):
    """Write the heatmap of ``arch`` as a PNG at ``path``, atomically; returns ``path``.

    Args:
        arch (Architecture): the architecture to draw.
        path (str): the PNG file to write.
        logits (dict or None): block name -> its logits [num_groups, K], which shade each cell
            by its group's winning probability (:func:`winning_probabilities`); None: every
            cell in full colour, and the title says the shade is not drawn.
        iteration (int or None): the iteration in the title; None: ``arch.meta["iteration"]``.
        finished (bool or None): whether the search finished, in the title; None:
            ``arch.meta["final"]`` if recorded, else whether the iteration reached
            ``arch.meta["max_iter"]``, else "unknown".
        title (str): the first line of the figure's title.

    Returns:
        str: ``path``.

    Raises:
        ValueError: if ``arch`` has no blocks, or ``logits`` lacks a block or has a wrong shape.
    """
    fig = _figure(arch, logits=logits, iteration=iteration, finished=finished, title=title)
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return path
