"""A random architecture: the standard NAS sanity check beside a searched one.

Same search space and channel-group division as a search, but each channel group's genotype is
drawn uniformly at random from its stage's candidates with a fixed seed, then decoded by the same
eq. 4-6 as a search's logits (one-hot logits of the drawn candidates), so the file has the format,
candidates, group division and channel split of a searched ``architecture.json``; with the same
decoding options (``MODEL.NATS.DECODE``: aligned channels, a genotype cap), so that a
comparison with an aligned search stays fair.
"""

import torch

from .decode import block_list, decode_architecture_from_cfg

__all__ = ["random_architecture"]


def random_architecture(supernet, cfg, *, seed, meta=None, align_channels=None, max_genotypes=None):
    """Each channel group of each searched block gets a uniformly drawn genotype.

    Args:
        supernet (nn.Module): a supernet (any wrapper, e.g. a detector built from a search
            config) whose mixed ops name the blocks, candidates and output channels; or a list
            ``[(block_name, alpha, candidates, out_channels)]`` as for
            :func:`~projects.nats.architecture.decode_architecture`. Only ``alpha``'s shape is read.
        cfg (CfgNode): the search config (``MODEL.NATS.STAGES``, ``CANDIDATES``, ``GROUPS``,
            ``DECODE``).
        seed (int): the draw's seed; the same seed gives the same architecture.
        meta (dict or None): extra JSON-serializable information for the file's ``meta``, which
            always records ``{"source": "random", "seed": seed}``.
        align_channels (int or None): overrides ``MODEL.NATS.DECODE.ALIGN_CHANNELS`` (None: the
            config's); every genotype's channels a multiple of it.
        max_genotypes (int or None): overrides ``MODEL.NATS.DECODE.MAX_GENOTYPES`` (None: the
            config's); the most genotypes a block keeps, 0 = no cap.

    Returns:
        Architecture: validated as a loaded file is.

    Raises:
        ValueError: as :func:`~projects.nats.architecture.decode_architecture_from_cfg`.
    """
    generator = torch.Generator().manual_seed(int(seed))
    drawn = []
    for name, alpha, candidates, out_channels in block_list(supernet):
        num_groups, num_candidates = alpha.shape
        choice = torch.randint(num_candidates, (num_groups,), generator=generator)
        logits = torch.nn.functional.one_hot(choice, num_candidates).float()
        drawn.append((name, logits, candidates, out_channels))
    if align_channels is not None or max_genotypes is not None:
        cfg = cfg.clone()
        cfg.defrost()
        if align_channels is not None:
            cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS = align_channels
        if max_genotypes is not None:
            cfg.MODEL.NATS.DECODE.MAX_GENOTYPES = max_genotypes
    return decode_architecture_from_cfg(
        drawn, cfg, meta={**(meta or {}), "source": "random", "seed": int(seed)}
    )
