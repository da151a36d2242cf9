"""``MixedDilationConv``: the supernet's searched 3x3 conv (paper eq. 2-3), one dilated replica
per candidate mixed per channel group by softmax(alpha), then the block's norm.

State-dict layout (relative to the block's ``conv2.``)::

    weight              the anchor replica: candidate (1, 1) (else the first candidate); the
                        stock ``Conv2d`` key, so a stock ResNet checkpoint fills it
    replicas.<dh>x<dw>  the other candidates' own weights, e.g. ``replicas.2x2``, ``replicas.1x3``
    alpha               logits [num_groups, num_candidates], columns in ``candidates`` order
    norm.*              the stock norm after the mix (``norm.weight``, ``norm.running_mean`` ...)

When a checkpoint fills ``weight`` but has none of the ``replicas.*`` (a stock checkpoint), every
replica is filled with a copy of the loaded ``weight`` (and absent logits keep their values), so
no missing-key warning is raised for them.

Speed: group i's output is sum_g softmax(alpha_i)_g * conv(x, W_g), with the mixing weights
expanded once per forward to one scale per output channel and accumulated in place. A
per-output-channel scale can multiply either the replica's output or its weight
(``conv(x, W_g * w_g[:, None, None, None])``); the op scales whichever tensor is smaller
(``scale_mode="auto"``). Folded into the weights, autograd keeps no per-candidate activation
(only ``x``, shared by all replicas) and the logits' gradient comes from the weight gradient
that the conv backward computes anyway; on the activations, a candidate's output is kept only
when the logits need a gradient.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..search_space import replica_key, split_block_path

__all__ = ["MixedDilationConv", "mixed_ops"]


def mixed_ops(model):
    """``[(block_name, MixedDilationConv)]`` of ``model`` in module order.

    Args:
        model: a supernet backbone, or any module holding one (DDP, FPN's ``bottom_up``, a
            detector); block names are as in the ResNet, e.g. ``"res4.3"``.

    Returns:
        list[tuple[str, MixedDilationConv]]: empty when ``model`` is not a supernet.

    Raises:
        ValueError: if ``model`` holds several supernet backbones (block names repeat).
    """
    out = []
    for name, module in model.named_modules():
        if isinstance(module, MixedDilationConv):
            found = split_block_path(name)
            out.append((found[1] if found else name, module))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"the model holds several supernet backbones: mixed ops {names}")
    return out


class MixedDilationConv(nn.Module):
    """Per-channel-group softmax mixture of dilated 3x3 convs followed by one norm."""

    # where the mixing weights are applied: "weights" (folded into each replica's weight),
    # "activations" (each replica's output) or "auto" (whichever tensor is smaller)
    scale_mode = "auto"
    # set before each training forward in "sample" mode (search/sampling.py): the seed of the
    # draw (derived from the run's seed, the step, the iteration and the rank) and the temperature
    sample_seed = None
    tau = 1.0

    def __init__(
        self,
        in_channels,
        out_channels,
        *,
        candidates,
        num_groups,
        stride=1,
        groups=1,
        kernel_size=3,
        norm=None,
        mode="mix",
        shared_weights=False,
    ):
        """
        Args:
            in_channels, out_channels: of the stock conv this op replaces.
            candidates: (dh, dw) dilations, in the order of the logits' columns.
            num_groups: channel groups N with their own logits (``out_channels % N == 0``).
            stride, groups, kernel_size: of the stock conv this op replaces.
            norm: the module applied after the mix (the stock ``conv2.norm``), or None.
            mode (str): "mix" (the paper: every candidate, mixed by softmax(alpha)) or "sample"
                (in training, each group runs the one candidate it draws from softmax(alpha /
                tau), with straight-through gradients to alpha; see :meth:`forward`).
            shared_weights (bool): one weight for every dilation (no ``replicas``): exactly the
                stock conv's parameters.
        """
        super().__init__()
        if mode not in ("mix", "sample"):
            raise ValueError(f"mode must be 'mix' or 'sample', got {mode!r}")
        candidates = [(int(d[0]), int(d[1])) for d in candidates]
        if not candidates or len(set(candidates)) != len(candidates):
            raise ValueError(f"candidates must be distinct (dh, dw) pairs, got {candidates}")
        if num_groups < 1 or out_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide out_channels={out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.candidates = candidates
        self.num_groups = num_groups
        self.kernel_size = (kernel_size, kernel_size)
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        self.groups = groups
        self.anchor = candidates.index((1, 1)) if (1, 1) in candidates else 0
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        self.mode, self.shared_weights = mode, bool(shared_weights)
        self.weight = nn.Parameter(torch.empty(shape))
        self.replicas = nn.ParameterDict(
            {
                replica_key(d): nn.Parameter(torch.empty(shape))
                for i, d in enumerate(candidates)
                if i != self.anchor and not self.shared_weights
            }
        )
        self.alpha = nn.Parameter(torch.zeros(num_groups, len(candidates)))
        self.norm = norm
        for w in self.candidate_weights():
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")

    @classmethod
    def from_conv(cls, conv, *, candidates, num_groups, mode="mix", shared_weights=False):
        """Build from a stock 3x3 ``Conv2d``: same shapes/stride/groups, takes over its norm, and
        every replica starts as a copy of its weight.

        The logits start at zero (a uniform mix); the conv's norm module (its ``norm``
        attribute, if any) is shared, not copied.

        Args:
            conv (nn.Conv2d): a square, bias-free conv, e.g. a Detectron2 bottleneck's ``conv2``.
            candidates: (dh, dw) dilations, in the order of the logits' columns.
            num_groups (int): channel groups N with their own logits (``out_channels % N == 0``).
            mode (str), shared_weights (bool): as in ``__init__``.

        Returns:
            MixedDilationConv

        Raises:
            ValueError: if ``conv``'s kernel is not square or it has a bias, or for bad
                ``candidates``/``num_groups`` (as ``__init__``).
        """
        if conv.kernel_size[0] != conv.kernel_size[1] or conv.bias is not None:
            raise ValueError(f"expected a square bias-free conv, got {conv}")
        op = cls(
            conv.in_channels,
            conv.out_channels,
            candidates=candidates,
            num_groups=num_groups,
            stride=conv.stride,
            groups=conv.groups,
            kernel_size=conv.kernel_size[0],
            norm=getattr(conv, "norm", None),
            mode=mode,
            shared_weights=shared_weights,
        )
        with torch.no_grad():
            for w in op.candidate_weights():
                w.copy_(conv.weight)
        return op

    def candidate_weights(self):
        """The replicas' weights in ``candidates`` order (the anchor, and with shared weights
        every candidate, is ``self.weight``)."""
        return [
            (
                self.weight
                if i == self.anchor or self.shared_weights
                else self.replicas[replica_key(d)]
            )
            for i, d in enumerate(self.candidates)
        ]

    def draw(self):
        """One candidate per channel group from softmax(alpha / tau), by Gumbel-max on a CPU
        generator seeded with ``sample_seed``: the same seed gives the same draw on any device.

        Returns:
            Tensor: [num_groups] candidate indices (int64, on alpha's device).

        Raises:
            RuntimeError: if ``sample_seed`` was not set for this forward.
        """
        if self.sample_seed is None:
            raise RuntimeError("sampled MixedDilationConv: sample_seed is not set (set_sampling)")
        gen = torch.Generator().manual_seed(self.sample_seed)
        uniform = torch.rand(self.alpha.shape, generator=gen, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
        scores = self.alpha.detach().double().cpu() / self.tau + gumbel
        return scores.argmax(dim=1).to(self.alpha.device)

    def _forward_sampled(self, x):
        """Each channel group's drawn candidate only, computed for that group's channels; the
        straight-through estimator (hard one-hot forward, softmax backward) scales them by
        ``1 + p - p.detach()`` (exactly 1), so every logit of a group gets a gradient.

        The output channels are gathered by drawn candidate (groups in order within each), so
        one gather of the shared weight (or one per replica) and one split feed every conv, and
        their gradient is one dense tensor per weight; the scale is applied to the smaller of the
        weights and the output, as in "mix"."""
        drawn = self.draw()
        per_group = self.out_channels // self.num_groups
        order = torch.argsort(drawn, stable=True)  # groups sorted by candidate
        channels = (
            order[:, None] * per_group + torch.arange(per_group, device=order.device)
        ).flatten()
        counts = torch.bincount(drawn, minlength=len(self.candidates)).tolist()
        soft = F.softmax(self.alpha / self.tau, dim=1).gather(1, drawn[:, None]).squeeze(1)
        scale = (1.0 + soft - soft.detach())[order].repeat_interleave(per_group).to(x.dtype)
        fold = self._fold_into_weights(x)
        sizes = [n * per_group for n in counts]
        if self.shared_weights:
            w = self.weight.index_select(0, channels)
            pieces = list((w * scale[:, None, None, None] if fold else w).split(sizes))
        else:
            pieces, weights = [], self.candidate_weights()
            for i, rows in enumerate(channels.split(sizes)):
                pieces.append(weights[i].index_select(0, rows) if counts[i] else None)
            if fold:
                pieces = [
                    None if w is None else w * s[:, None, None, None]
                    for w, s in zip(pieces, scale.split(sizes))
                ]
        outs = []
        in_per_conv_group = self.in_channels // self.groups
        out_per_conv_group = self.out_channels // self.groups
        for i, (w, rows) in enumerate(zip(pieces, channels.split(sizes))):
            if not counts[i]:
                continue
            inp, groups = x, self.groups
            if self.groups > 1:  # the conv groups the chosen channels lie in (groups align)
                conv_groups = torch.unique(rows // out_per_conv_group)
                inputs = conv_groups[:, None] * in_per_conv_group + torch.arange(
                    in_per_conv_group, device=rows.device
                )
                inp, groups = x.index_select(1, inputs.flatten()), len(conv_groups)
            d = self.candidates[i]
            outs.append(F.conv2d(inp, w, None, self.stride, d, d, groups))
        out = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        if not fold:
            out = out * scale[None, :, None, None]
        if len(outs) > 1:  # back to channel order
            out = out.index_select(1, torch.argsort(channels))
        return out

    def mixing_weights(self):
        """softmax(alpha) per group, expanded to [out_channels, num_candidates]."""
        per_group = self.out_channels // self.num_groups
        return F.softmax(self.alpha, dim=1).repeat_interleave(per_group, dim=0)

    def _fold_into_weights(self, x):
        if self.scale_mode != "auto":
            return self.scale_mode == "weights"
        out_numel = x.shape[0] * self.out_channels
        for size, stride in zip(x.shape[-2:], self.stride):
            out_numel *= (size - 1) // stride + 1
        return self.weight.numel() <= out_numel

    def forward(self, x):
        """Per channel group, the softmax(alpha)-weighted sum of the dilated convs; then the norm.

        In "sample" mode and in training, each group instead runs the candidate it draws
        (:meth:`draw`), computed for its own channels only: the cost of a decoded network.
        Evaluation mixes as "mix" does.

        Args:
            x (Tensor): [N, in_channels, H, W].

        Returns:
            Tensor: [N, out_channels, H', W'], the stock conv's output size (padding = dilation).
        """
        if self.mode == "sample" and self.training:
            out = self._forward_sampled(x)
            return self.norm(out) if self.norm is not None else out
        mix = self.mixing_weights().to(dtype=x.dtype)
        weights = self.candidate_weights()
        fold = self._fold_into_weights(x)
        out = None
        for i in [self.anchor] + [i for i in range(len(weights)) if i != self.anchor]:
            dilation, w, m = self.candidates[i], weights[i], mix[:, i]
            if fold:  # scale the weight's output channels: no activation kept for the mix
                w = w * m[:, None, None, None]
            y = F.conv2d(x, w, None, self.stride, dilation, dilation, self.groups)
            if fold:
                out = y if out is None else out.add_(y)
            else:  # scale the output: cheaper when it is smaller than the weight
                m = m[None, :, None, None]
                out = y * m if out is None else out.addcmul_(y, m)
        if self.norm is not None:
            out = self.norm(out)
        return out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, *args):
        replica_keys = [prefix + "replicas." + k for k in self.replicas.keys()]
        anchor = state_dict.get(prefix + "weight")
        if anchor is not None and not any(k in state_dict for k in replica_keys):
            # a stock checkpoint: every dilated replica starts from the pretrained weight
            for k in replica_keys:
                state_dict[k] = anchor
            state_dict.setdefault(prefix + "alpha", self.alpha.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, *args)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, candidates={self.candidates}, "
            f"num_groups={self.num_groups}, stride={self.stride}, groups={self.groups}, "
            f"mode={self.mode}, shared_weights={self.shared_weights}"
        )
