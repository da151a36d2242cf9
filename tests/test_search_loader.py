"""Resumable search loaders (search/loader.py): a restart at batch k repeats the uninterrupted
stream, with or without workers."""

from common import register_tiny_shapes

from projects.nats.search.loader import ResumableLoader, SeededBatchStream


def _stream(seed=3, rank=0, world_size=1):
    from detectron2.data import DatasetCatalog

    names = register_tiny_shapes()
    dicts = DatasetCatalog.get(names[0])
    # An identity "mapper" that draws from the global RNGs, like random augmentations do.
    import numpy as np

    def mapper(d):
        return {"image_id": d["image_id"], "draw": float(np.random.rand())}

    return SeededBatchStream(
        dataset=dicts,
        mapper=mapper,
        batch_size=2,
        seed=seed,
        name="weight",
        rank=rank,
        world_size=world_size,
    )


def _take(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_loader_restarted_at_k_repeats_the_uninterrupted_stream():
    full = _take(ResumableLoader(_stream()), 9)  # 18 samples: more than two epochs of 8
    resumed = ResumableLoader(_stream())
    resumed.set_start_iter(5)
    assert _take(resumed, 4) == full[5:]
    # Every epoch is a permutation of the split.
    ids = [s["image_id"] for b in full for s in b]
    assert sorted(ids[:8]) == sorted(ids[8:16]) and len(set(ids[:8])) == 8
    # Ranks see disjoint positions of the same stream.
    r0, r1 = _take(ResumableLoader(_stream(rank=0, world_size=2)), 2), _take(
        ResumableLoader(_stream(rank=1, world_size=2)), 2
    )
    assert [s["image_id"] for s in r0[0] + r1[0]] == ids[:4]


def test_loader_with_workers_matches_single_process():
    full = _take(ResumableLoader(_stream()), 6)
    two = ResumableLoader(_stream(), num_workers=2)
    two.set_start_iter(1)
    assert _take(two, 5) == full[1:]


def test_loading_leaves_the_global_rngs_as_the_step_seeded_them():
    import random

    import numpy as np
    import torch

    torch.manual_seed(11), np.random.seed(11), random.seed(11)
    expected = torch.rand(1), np.random.rand(), random.random()
    torch.manual_seed(11), np.random.seed(11), random.seed(11)
    it = iter(ResumableLoader(_stream()))
    next(it), next(it)  # the first next also starts the DataLoader iterator (a seed draw)
    assert (torch.rand(1), np.random.rand(), random.random()) == expected
