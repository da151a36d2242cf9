"""Carry supernet weights over to the decoded network (for fine-tuning from the search).

Each channel group of a searched conv takes the weights of the replica its argmax chose; the
channels are then permuted ONCE into the architecture's genotype order (genotype g's groups,
ascending, make its contiguous slice), together with the norm's channels and the input channels
of the following 1x1 ``conv3``. With grouped convs (ResNeXt) whole conv groups move, so the
outputs of ``conv1`` (and its norm) are permuted to feed each moved conv group its own inputs.
The decoded network then equals the supernet with one-hot mixing weights.

A version 2 file (aligned channels, a genotype cap) lists per genotype the supernet rows its
slice takes (``rows``): a row that the re-balancing moved to another genotype takes the weights
of that genotype's replica, so the decoded network equals the one-hot supernet except in the
moved channels, which change dilation.

Command line: ``tools/carry_over.py``.
"""

import torch

from ..atomic import atomic_open
from ..fingerprint import CHECKPOINT_KEY, describe_architecture
from ..search_space import replica_key, split_block_path
from .file_format import ArchitectureError, load_architecture

__all__ = ["carry_over_supernet", "save_carried_over"]

_NORM_KEYS = ("weight", "bias", "running_mean", "running_var")


def _block_sources(block_arch, alpha, name):
    """``(perm, dilations, chosen, choices)``: per decoded channel its supernet row and replica
    dilation, per group its argmax index and the dilation the file says it chose."""
    if tuple(alpha.shape) != (block_arch.num_groups, alpha.shape[1]):
        raise ArchitectureError(
            f"'blocks.{name}.num_groups' is {block_arch.num_groups}, but the supernet's logits "
            f"have shape {tuple(alpha.shape)}"
        )
    sources = block_arch.row_sources()
    perm = torch.tensor([row for row, _ in sources])
    return perm, [d for _, d in sources], alpha.argmax(dim=1).tolist(), block_arch.group_choices()


def carry_over_supernet(state_dict, architecture):
    """A decoded network's state dict (stock keys) from a supernet's, for ``architecture``.

    ``architecture`` must be the one decoded from this state dict's logits (checked). The
    logits and ``conv2.replicas.*`` entries are dropped (a shared-weights supernet has none: its
    one weight serves every dilation); in each searched block, ``conv2``'s
    weight takes per channel group the chosen replica's rows (version 2: per row, the replica of
    the genotype whose ``rows`` list it), and the channels are permuted into genotype order (see
    the module docstring). Other entries are kept as they are.

    Args:
        state_dict (dict): a supernet's model state dict (e.g. a checkpoint's ``"model"``), with
            any key prefix (e.g. ``backbone.bottom_up.``).
        architecture (Architecture): the architecture decoded from these logits.

    Returns:
        dict: the decoded network's state dict (the split convs keep the stock keys).

    Raises:
        ArchitectureError: if a searched block is missing from ``architecture.blocks`` or vice
            versa, or a block's groups or argmax choices do not match the logits.
        FloatingPointError: if the checkpoint holds non-finite values (a diverged search).
    """
    out = {k: v for k, v in state_dict.items() if ".conv2.replicas." not in k}
    done = set()
    diverged = [
        k
        for k, v in state_dict.items()
        if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if diverged:
        raise FloatingPointError(
            f"the supernet checkpoint holds non-finite values in {diverged[:3]}"
            f"{' and more' if len(diverged) > 3 else ''}: its search diverged; nothing carried over"
        )
    for key in state_dict:
        found = key.endswith(".alpha") and split_block_path(key[: -len(".alpha")])
        if not found:
            continue
        prefix, name = found
        if name not in architecture.blocks:
            raise ArchitectureError(f"the supernet searched {name}, which 'blocks' lacks")
        block_arch, alpha = architecture.blocks[name], state_dict[key].float()
        candidates = architecture.candidates[name.split(".")[0]]
        perm, dilations, chosen, choices = _block_sources(block_arch, alpha, name)
        if [candidates[c] for c in chosen] != [choices[i] for i in range(len(chosen))]:
            raise ArchitectureError(
                f"'blocks.{name}' does not match the supernet's logits (argmax per group: "
                f"{[list(candidates[c]) for c in chosen]}): decode this checkpoint's logits"
            )
        p = prefix + name + "."
        anchor = (1, 1) if (1, 1) in candidates else candidates[0]
        per_group = block_arch.out_channels // block_arch.num_groups
        weight = state_dict[p + "conv2.weight"][perm]  # decoded channel order
        shared = not any(k.startswith(p + "conv2.replicas.") for k in state_dict)
        for dilation in set() if shared else set(dilations) - {anchor}:  # shared: one weight
            at = torch.tensor([d == dilation for d in dilations])
            replica = state_dict[p + "conv2.replicas." + replica_key(dilation)]
            weight[at] = replica[perm[at]]
        out[p + "conv2.weight"] = weight
        for k in _NORM_KEYS:
            if p + "conv2.norm." + k in state_dict:
                out[p + "conv2.norm." + k] = state_dict[p + "conv2.norm." + k][perm]
        out[p + "conv3.weight"] = state_dict[p + "conv3.weight"][:, perm]
        conv_groups = state_dict[p + "conv1.weight"].shape[0] // weight.shape[1]
        if conv_groups > 1:  # ResNeXt: conv group k's inputs follow it
            w_out, w_in = weight.shape[0] // conv_groups, weight.shape[1]
            whole = all(
                int(perm[i]) % w_out == 0
                and perm[i : i + w_out].tolist() == list(range(int(perm[i]), int(perm[i]) + w_out))
                for i in range(0, len(perm), w_out)
            )
            if per_group % w_out or not whole:
                raise ArchitectureError(
                    f"'blocks.{name}': channel groups of {per_group} (or the re-balanced 'rows') "
                    f"cut through conv groups of {w_out} channels; the permutation must move "
                    "whole conv groups"
                )
            order = [int(perm[i * w_out]) // w_out for i in range(conv_groups)]
            in_perm = torch.cat([torch.arange(k * w_in, (k + 1) * w_in) for k in order])
            out[p + "conv1.weight"] = state_dict[p + "conv1.weight"][in_perm]
            for k in _NORM_KEYS:
                if p + "conv1.norm." + k in state_dict:
                    out[p + "conv1.norm." + k] = state_dict[p + "conv1.norm." + k][in_perm]
        del out[key]
        done.add(name)
    missing = sorted(set(architecture.blocks) - done)
    if missing:
        raise ArchitectureError(f"'blocks' {missing} have no logits in the supernet checkpoint")
    return out


def save_carried_over(supernet_path, architecture_path, output_path):
    """Read a supernet checkpoint (``{"model": ...}``), write the decoded one atomically.

    Args:
        supernet_path (str): a local supernet checkpoint: ``{"model": state_dict, ...}`` as the
            search writes, or a bare state dict; loaded with ``weights_only=False``, so only
            trusted files.
        architecture_path (str): the ``architecture.json`` decoded from that checkpoint's logits.
        output_path (str): the file to write: ``{"model": decoded_state_dict, "__author__": ...,
            "nats": describe_architecture(...)}``, so it loads only into the decoded network of
            this architecture.

    Returns:
        str: ``output_path``.

    Raises:
        ArchitectureError: as :func:`load_architecture` and :func:`carry_over_supernet`.
    """
    checkpoint = torch.load(supernet_path, map_location="cpu", weights_only=False)
    state_dict = checkpoint.get("model", checkpoint)
    architecture = load_architecture(architecture_path)
    decoded = carry_over_supernet(state_dict, architecture)
    description = describe_architecture(architecture, source=architecture_path)
    with atomic_open(output_path, "wb") as f:
        torch.save(
            {
                "model": decoded,
                "__author__": "NATS supernet carry-over",
                CHECKPOINT_KEY: description,
            },
            f,
        )
    return output_path
