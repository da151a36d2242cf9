"""Resumable search data loaders: batch ``b`` of rank ``r`` is a pure function of (seed, b, r).

v0.6's ``TrainingSampler`` restarts its stream from its seed on resume, so a resumed run would
see other batches than an uninterrupted one. Here position ``p`` of a split's infinite stream is
element ``p % N`` of a permutation seeded by (seed, p // N), and each sample's augmentation runs
under RNGs seeded by (seed, p): a loader started at batch ``k`` yields exactly what an
uninterrupted loader yields from batch ``k`` on, for any number of workers. Batches are formed
from consecutive stream positions (no aspect-ratio grouping, whose buffers depend on history; at
the paper's 1 image per GPU it changes nothing).
"""

import contextlib
import hashlib
import random

import numpy as np
import torch
from detectron2.data import DatasetFromList
from detectron2.data.build import trivial_batch_collator
from detectron2.utils import comm

__all__ = ["derive_seed", "seed_rngs", "SeededBatchStream", "ResumableLoader"]

MAX_MAP_ATTEMPTS = 20


def derive_seed(*parts):
    """A 31-bit seed from any tuple of printable parts (stable across processes and runs)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def seed_rngs(seed):
    """Seed Python's, NumPy's and torch's global RNGs (augmentations and samplers use them).

    Args:
        seed (int): the seed, in [0, 2**32) (NumPy's range), e.g. from :func:`derive_seed`.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _global_rngs_kept():
    """Python's, NumPy's and torch's (CPU) global RNG states restored on exit."""
    states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.random.set_rng_state(states[2])


class SeededBatchStream(torch.utils.data.IterableDataset):
    """Infinite per-rank batches of mapped samples; starts at batch ``start_iter``."""

    def __init__(self, *, dataset, mapper, batch_size, seed, name, rank=None, world_size=None):
        """
        Args:
            dataset (list[dict]): the split's dataset dicts, in Detectron2's format.
            mapper (callable): dataset dict -> model input (e.g. ``DatasetMapper``); it may
                return None to drop a sample, which is then replaced by a seeded draw.
            batch_size (int): images per batch of this rank.
            seed (int): the data seed; for a given dataset and batch size, batch ``b`` of rank
                ``r`` is a pure function of (seed, name, b, r).
            name (str): the split's name (e.g. "weight", "arch"), part of every seed, so that
                splits draw independently.
            rank (int or None): this process's rank; None: ``comm.get_rank()``.
            world_size (int or None): the number of processes; None: ``comm.get_world_size()``.
        """
        super().__init__()
        self.dataset = DatasetFromList(dataset, copy=True, serialize=True)
        self.mapper = mapper
        self.batch_size = batch_size
        self.seed = seed
        self.name = name
        self.rank = comm.get_rank() if rank is None else rank
        self.world_size = comm.get_world_size() if world_size is None else world_size
        self.start_iter = 0
        self._perm_epoch, self._perm = None, None

    def index_at(self, position):
        """Dataset index at ``position`` of the stream: epoch-wise seeded permutations."""
        epoch, offset = divmod(position, len(self.dataset))
        if epoch != self._perm_epoch:
            g = torch.Generator()
            g.manual_seed(derive_seed(self.seed, self.name, "epoch", epoch))
            self._perm, self._perm_epoch = torch.randperm(len(self.dataset), generator=g), epoch
        return int(self._perm[offset])

    def sample(self, position):
        """The mapped sample at ``position``; a sample the mapper drops is replaced by a seeded
        draw, as Detectron2's ``MapDataset`` does, but reproducibly. The global RNGs are left as
        they were: loading in the training process (``NUM_WORKERS`` 0) must not reseed what the
        step seeded, or the number of workers would change the run."""
        index = self.index_at(position)
        with _global_rngs_kept():
            for attempt in range(MAX_MAP_ATTEMPTS):
                seed_rngs(derive_seed(self.seed, self.name, "sample", position, attempt))
                out = self.mapper(self.dataset[index])
                if out is not None:
                    return out
                index = random.randrange(len(self.dataset))
        raise RuntimeError(
            f"the mapper of split '{self.name}' dropped {MAX_MAP_ATTEMPTS} samples in a row"
        )

    def batch(self, b):
        """Batch ``b`` of this rank: stream positions ``(b * world + rank) * batch_size + j``."""
        first = (b * self.world_size + self.rank) * self.batch_size
        return [self.sample(first + j) for j in range(self.batch_size)]

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        # The DataLoader reads workers round-robin, so worker w serves batches start + w + k * nw.
        b = self.start_iter + worker
        while True:
            yield self.batch(b)
            b += num_workers


class ResumableLoader:
    """A DataLoader over a :class:`SeededBatchStream` whose iterator starts lazily (on the first
    ``next``), so the start batch can still be set after a checkpoint is loaded."""

    def __init__(self, stream, *, num_workers=0):
        """
        Args:
            stream (SeededBatchStream): the batches; :meth:`set_start_iter` sets its start.
            num_workers (int): DataLoader worker processes; 0: load in the main process. The
                batches are the same for any number.
        """
        self.stream = stream
        self.loader = torch.utils.data.DataLoader(
            stream, batch_size=None, num_workers=num_workers, collate_fn=trivial_batch_collator
        )

    def set_start_iter(self, start_iter):
        """Make the next iteration over the loader start at batch ``start_iter``."""
        self.stream.start_iter = int(start_iter)

    def __iter__(self):
        # Starting a DataLoader iterator draws its base seed from torch's global RNG; that draw
        # happens at the first ``next``, inside a step that seeded the RNGs, and must not shift
        # the step's random numbers (a resumed run starts its loaders at another iteration).
        with _global_rngs_kept():
            iterator = iter(self.loader)
        yield from iterator
