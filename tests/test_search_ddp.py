"""The search in two processes on CPU (gloo DDP): ranks stay in lockstep, logits included."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import hooks
from detectron2.utils import comm
from test_search_trainer import build, changed, search_cfg, split_state

import projects.nats.search.hooks as search_hooks

WORLD_SIZE = 2


def _rank_main(rank, init_file, output_dir, mode="mix"):
    """One rank of a 4-iteration search (2 warm-up); saves its parameters after every step."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE
    )
    comm._LOCAL_PROCESS_GROUP = dist.new_group(list(range(WORLD_SIZE)))  # as d2's launch sets it
    writes = []
    save = search_hooks.save_architecture
    search_hooks.save_architecture = lambda arch, path: writes.append(path) or save(arch, path)
    try:
        cfg = search_cfg(output_dir, max_iter=4, warmup_iters=2)
        cfg.SOLVER.IMS_PER_BATCH = 2  # 1 image per rank, as in the paper
        cfg.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH = 2
        cfg.MODEL.NATS.SEARCH.MODE = mode
        trainer = build(cfg)
        trainer.resume_or_load(resume=False)
        snapshots = [split_state(trainer)]
        trainer.register_hooks(
            [hooks.CallbackHook(after_step=lambda t: snapshots.append(split_state(trainer)))]
        )
        trainer.train()
        batches = [trainer._trainer.data_loader.stream.batch(b)[0]["image_id"] for b in range(4)]
        result = {"snapshots": snapshots, "image_ids": batches, "writes": writes}
        torch.save(result, f"{output_dir}/rank{rank}.pth")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("mode", ["mix", "sampled"])
def test_two_process_search_keeps_ranks_identical(tmp_path, mode):
    # "sampled": each rank draws its own candidates; the logits still stay identical.
    args = (str(tmp_path / "init"), str(tmp_path), {"sampled": "sample"}.get(mode, mode))
    mp.spawn(_rank_main, args=args, nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pth", weights_only=False) for r in range(WORLD_SIZE)]
    # Each rank reads its own images of the weight split...
    assert ranks[0]["image_ids"] != ranks[1]["image_ids"]
    snaps0, snaps1 = ranks[0]["snapshots"], ranks[1]["snapshots"]
    assert len(snaps0) == len(snaps1) == 5
    for it in range(5):
        # ...yet weights (DDP's averaged gradients) and logits (all-reduced logit gradients)
        # are identical on both ranks after every step.
        (l0, w0), (l1, w1) = snaps0[it], snaps1[it]
        assert not changed(l0, l1) and not changed(w0, w1), f"ranks differ after step {it}"
    for it in range(4):
        moved = changed(snaps0[it][0], snaps0[it + 1][0])
        # Architecture steps on the same iterations on every rank: none in warm-up, then all.
        assert moved == (set() if it < 2 else set(snaps0[it][0])), f"iteration {it}"
    # Only rank 0 writes architecture.json (at the checkpoint and at the end).
    assert ranks[0]["writes"] and not ranks[1]["writes"]
    assert os.path.exists(tmp_path / "architecture.json")
