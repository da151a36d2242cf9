"""Effective receptive fields (paper 4.4): gradient of the centre neuron w.r.t. a constant input.

Following Luo et al. (2016) as the paper does: the input is all ones, only the centre neuron of a
feature map propagates backward, and ReLUs are dropped so that only the intensity of the
connections shows. :func:`erf_maps` measures every ResNet stage and FPN level of a Detectron2
backbone in one forward pass; :func:`compute_erf` any module's output map inside any model.
Both leave the model as they found it: training mode, parameters' gradients, RNG state, no hook
left registered and the ReLUs back, also when the measurement raises.
"""

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["linear_relus", "available_features", "erf_maps", "compute_erf", "erf_radius"]

# Every way a model applies ReLU: Detectron2's functional F.relu_/F.relu, nn.ReLU (F.relu),
# torch.relu and the tensor methods.
_RELUS = (F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_)


class _LinearReLUs(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RELUS:
            return args[0]
        return func(*args, **(kwargs or {}))


def linear_relus():
    """A context in which every ReLU is the identity, in this thread only (a torch function
    mode: nothing global is patched, other threads compute as usual)."""
    return _LinearReLUs()


@contextlib.contextmanager
def _measuring(model, modules=()):
    """Eval mode, RNG state kept, forward hooks on ``modules`` removed, all restored after."""
    handles, captured = [], {}
    for key, module in modules:
        hook = (lambda k: lambda m, i, out: captured.__setitem__(k, out))(key)
        handles.append(module.register_forward_hook(hook))
    was_training = {m: m.training for m in model.modules()}
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            model.eval()
            yield captured
    finally:
        for handle in handles:
            handle.remove()
        for m, mode in was_training.items():
            m.train(mode)


def available_features(backbone):
    """Names of the maps :func:`erf_maps` can measure: the backbone's outputs (e.g. FPN levels
    ``p2``-``p6``) and, for an FPN, its bottom-up ResNet's stages (``res2``-``res5``)."""
    names = list(backbone.output_shape())
    bottom_up = getattr(backbone, "bottom_up", None)
    if bottom_up is not None:
        names = [n for n in bottom_up.output_shape() if n not in names] + names
    return names


def _centre_grad(out, x, retain):
    h, w = out.shape[-2:]
    (grad,) = torch.autograd.grad(out[0, :, h // 2, w // 2].sum(), x, retain_graph=retain)
    return grad[0].abs().sum(0).cpu().numpy()


def erf_maps(backbone, features, image_size, *, drop_relus=True):
    """ERF maps of several feature maps of a Detectron2 backbone, from one forward pass.

    Args:
        backbone (Backbone): e.g. ``model.backbone`` of a detector (stock, supernet or decoded;
            unwrapped from DDP).
        features (list[str]): names among :func:`available_features`.
        image_size (tuple[int, int]): (H, W) of the all-ones input, in pixels.
        drop_relus (bool): ReLUs as identities during the measurement (:func:`linear_relus`).

    Returns:
        dict[str, np.ndarray]: feature name -> ERF map (H, W), non-negative.

    Raises:
        ValueError: naming a feature the backbone does not output, and the accepted names.
    """
    accepted = available_features(backbone)
    unknown = [f for f in features if f not in accepted]
    if unknown or not features:
        raise ValueError(
            f"ERF features {unknown or list(features)} are not maps of this backbone; accepted: "
            f"{accepted}"
        )
    bottom_up = getattr(backbone, "bottom_up", None)
    modules = [("bottom_up", bottom_up)] if bottom_up is not None else []
    device = next(backbone.parameters()).device
    with _measuring(backbone, modules) as captured:
        x = torch.ones(1, 3, *image_size, device=device, requires_grad=True)
        with linear_relus() if drop_relus else contextlib.nullcontext():
            out = backbone(x)
        outputs = {**captured.get("bottom_up", {}), **out}
        return {
            f: _centre_grad(outputs[f], x, retain=i < len(features) - 1)
            for i, f in enumerate(features)
        }


def compute_erf(model, module, image_size, *, drop_relus=True, device="cpu"):
    """ERF map [H, W] of the centre neuron of ``module``'s output when ``model`` sees ones.

    ``model`` is called on a [1, 3, H, W] tensor; ``module`` (inside it) is hooked for its output
    (a tensor [1, C, h, w]); the map is |d sum_c out[0, c, h//2, w//2] / d input| summed over the
    input channels.

    Args:
        model (nn.Module): a module called on one image tensor [1, 3, H, W] (e.g. a backbone).
        module (nn.Module): the module of ``model`` whose output map holds the centre neuron
            (e.g. the last conv of a stage); its output must be a tensor [N, C, h, w].
        image_size (tuple[int, int]): (H, W) of the all-ones input, in pixels.
        drop_relus (bool): ReLUs as identities during the forward (:func:`linear_relus`), as Luo
            et al. do.
        device (str or torch.device): where the input is created; ``model`` must be there.

    Returns:
        np.ndarray: the ERF map, shape (H, W), non-negative.

    Raises:
        ValueError: if ``module`` gave no 4-D tensor output during the forward.
    """
    with _measuring(model, [("out", module)]) as captured:
        x = torch.ones(1, 3, *image_size, device=device, requires_grad=True)
        with linear_relus() if drop_relus else contextlib.nullcontext():
            model(x)
        out = captured.get("out")
        if not torch.is_tensor(out) or out.dim() != 4:
            raise ValueError(f"the hooked module {type(module).__name__} gave no [N, C, H, W] map")
        return _centre_grad(out, x, retain=False)


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
