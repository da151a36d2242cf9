"""Effective receptive fields (paper 4.4): gradient of the centre neuron w.r.t. a constant input.

Following Luo et al. (2016) as the paper does: the input is all ones, only the centre neuron of the
last conv layer's output map propagates backward, and ReLUs are dropped so that only the
intensity of the connections shows. A forward hook on the chosen module captures its output map,
so any backbone (stock, supernet or decoded) works without knowing its output names.
"""

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from .atomic import atomic_open

__all__ = ["linear_relus", "compute_erf", "erf_radius", "save_erf_figure"]


@contextlib.contextmanager
def linear_relus():
    """Replace ``F.relu``/``F.relu_`` by identities for the duration (Detectron2's ResNet blocks
    call the functional ReLUs, so there are no ReLU modules to hook)."""
    saved = F.relu, F.relu_
    F.relu = lambda x, inplace=False: x
    F.relu_ = lambda x: x
    try:
        yield
    finally:
        F.relu, F.relu_ = saved


def compute_erf(model, module, image_size, *, drop_relus=True, device="cpu"):
    """ERF map [H, W] of the centre neuron of ``module``'s output when ``model`` sees ones.

    ``model`` is called on a [1, 3, H, W] tensor; ``module`` (inside it) is hooked for its output
    (a tensor [1, C, h, w]); the map is |d sum_c out[0, c, h//2, w//2] / d input| summed over the
    input channels. ``model`` runs in eval mode and gets its training mode back afterwards.

    Args:
        model (nn.Module): a module called on one image tensor [1, 3, H, W] (e.g. a backbone).
        module (nn.Module): the module of ``model`` whose output map holds the centre neuron
            (e.g. the last conv of a stage); its output must be a tensor [N, C, h, w].
        image_size (tuple[int, int]): (H, W) of the all-ones input, in pixels.
        drop_relus (bool): replace ``F.relu``/``F.relu_`` by identities during the forward
            (:func:`linear_relus`), as Luo et al. do.
        device (str or torch.device): where the input is created; ``model`` must be there.

    Returns:
        np.ndarray: the ERF map, shape (H, W), non-negative.

    Raises:
        ValueError: if ``module`` gave no 4-D tensor output during the forward.
    """
    captured = []
    handle = module.register_forward_hook(lambda m, i, out: captured.append(out))
    was_training = model.training
    model.eval()
    x = torch.ones(1, 3, *image_size, device=device, requires_grad=True)
    try:
        with linear_relus() if drop_relus else contextlib.nullcontext():
            model(x)
        if not captured or not torch.is_tensor(captured[-1]) or captured[-1].dim() != 4:
            raise ValueError(f"the hooked module {type(module).__name__} gave no [N, C, H, W] map")
        out = captured[-1]
        h, w = out.shape[-2:]
        (grad,) = torch.autograd.grad(out[0, :, h // 2, w // 2].sum(), x)
    finally:
        handle.remove()
        model.train(was_training)
    return grad[0].abs().sum(0).cpu().numpy()


def erf_radius(erf, mass=0.9):
    """Radius (pixels) around the map's centre that holds ``mass`` of the ERF's total intensity.

    Args:
        erf (np.ndarray): an ERF map (H, W) of non-negative values, as from :func:`compute_erf`.
        mass (float): the share of the total intensity to enclose, in (0, 1].

    Returns:
        float: the distance from the centre ``((H - 1) / 2, (W - 1) / 2)`` at which the intensity
        of the pixels, summed in order of distance, first reaches ``mass`` of the total; 0.0 for
        an all-zero map.
    """
    h, w = erf.shape
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - (h - 1) / 2.0, xx - (w - 1) / 2.0).ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(erf.ravel()[order])
    if cum[-1] <= 0:
        return 0.0
    return float(r[order][np.searchsorted(cum, mass * cum[-1])])


def save_erf_figure(erfs, path, *, mass=0.9):
    """One panel per labelled ERF map, each normalised to its maximum; written atomically.

    Each panel's title gives its label and its radius (:func:`erf_radius`).

    Args:
        erfs (dict[str, np.ndarray]): label -> ERF map (H, W); one panel each, in dict order.
        path (str): the PNG file to write.
        mass (float): the share of the intensity whose radius the titles give, in (0, 1].
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(erfs), figsize=(4 * len(erfs), 4.2), squeeze=False)
    for ax, (label, erf) in zip(axes[0], erfs.items()):
        ax.imshow(erf / max(float(erf.max()), 1e-12), cmap="inferno", vmin=0, vmax=1)
        ax.set_title(f"{label}\n{int(mass * 100)}% radius: {erf_radius(erf, mass):.0f} px")
        ax.axis("off")
    fig.tight_layout()
    try:
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
