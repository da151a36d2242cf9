"""The search trainer on a tiny supernet (CPU): what each step changes, metrics, exact resume."""

import json
import os

import pytest
import torch
from common import tiny_cfg
from detectron2.engine import SimpleTrainer, hooks
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage

from projects.nats.search import SearchTrainer
from projects.nats.search.fused_weight_update import (
    attach_fused_weight_update,
    can_fuse_weight_update,
)

SUPERNET = "build_nats_supernet_resnet_fpn_backbone"


def search_cfg(output_dir, *, max_iter, warmup_iters, checkpoint_period=100000):
    cfg = tiny_cfg(output_dir)
    cfg.MODEL.BACKBONE.NAME = SUPERNET
    cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = "count", 4
    cfg.MODEL.NATS.SEARCH.ARCH.DATASETS = ("tiny_shapes_arch",)
    cfg.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH = 2
    cfg.MODEL.NATS.SEARCH.EPOCHS = 0  # schedule in iterations (epochs: tests/test_search_net.py)
    cfg.MODEL.NATS.SEARCH.WARMUP_ITERS = warmup_iters
    cfg.MODEL.NATS.SEARCH.LOG_PERIOD = 1
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.BASE_LR = 0.002
    cfg.MODEL.NATS.SEARCH.BASE_LR_END = 0.0001
    cfg.SOLVER.CHECKPOINT_PERIOD = checkpoint_period
    return cfg


def build(cfg):
    seed_all_rng(0)  # the same initial weights for every run
    return SearchTrainer(cfg)


def split_state(trainer):
    model = trainer._trainer._inner_model
    logits, weights = {}, {}
    for name, p in model.named_parameters():
        (logits if name.endswith(".alpha") else weights)[name] = p.detach().clone()
    return logits, weights


def changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A 4-iteration search, 2 of them warm-up, with a snapshot of the parameters per step."""
    trainer = build(search_cfg(tmp_path_factory.mktemp("search"), max_iter=4, warmup_iters=2))
    trainer.resume_or_load(resume=False)
    snapshots = [split_state(trainer)]
    trainer.register_hooks(
        [hooks.CallbackHook(after_step=lambda t: snapshots.append(split_state(trainer)))]
    )
    trainer.train()
    return trainer, snapshots


def test_logits_wait_for_warmup_then_both_change_every_iteration(searched):
    _, snaps = searched
    for it in range(4):
        (l0, w0), (l1, w1) = snaps[it], snaps[it + 1]
        assert changed(w0, w1), f"iteration {it}: no weight changed"
        if it < 2:
            assert not changed(l0, l1), f"iteration {it} (warm-up): logits changed"
        else:
            assert changed(l0, l1) == set(l0), f"iteration {it}: not every logit tensor moved"


def test_weight_step_moves_only_weights_and_arch_step_only_logits(searched):
    trainer, _ = searched
    step = trainer._trainer
    model = step._inner_model
    with EventStorage(100):
        step.iter = 100
        logits, weights = split_state(trainer)
        SimpleTrainer.run_step(step)  # the weight step alone
        l1, w1 = split_state(trainer)
        assert not changed(logits, l1) and changed(weights, w1)
        assert all(alpha.grad is None for alpha in step.arch_params)  # none computed
        for p in model.parameters():
            p.grad = None
        step.run_arch_step()
        l2, w2 = split_state(trainer)
        assert changed(l1, l2) == set(l1) and not changed(w1, w2)
        assert all(p.grad is None for n, p in model.named_parameters()), "gradients left over"
        # requires_grad is restored: logits off, trainable weights on.
        assert all(not a.requires_grad for a in step.arch_params)
        assert all(p.requires_grad for p in step._weights)
        # A whole search step frees the weight gradients once SGD has used them (memory).
        step.run_step()
        assert all(p.grad is None for p in model.parameters()), "weight gradients kept"


def test_arch_metrics_have_their_own_names(searched):
    trainer, _ = searched
    with open(os.path.join(trainer.cfg.OUTPUT_DIR, "metrics.json")) as f:
        records = [json.loads(line) for line in f]
    last = records[-1]
    for key in ("total_loss", "loss_cls", "loss_rpn_cls", "data_time", "lr"):
        assert key in last and f"arch/{key}" in last, key
    assert "arch/fast_rcnn/cls_accuracy" in last  # written by the ROI head during forward
    assert last["arch/lr"] == pytest.approx(0.01) and last["lr"] < 0.002
    assert last["arch/total_loss"] != last["total_loss"]
    assert not [k for k in last if k.startswith("arch/arch/")]
    block_keys = [k for k in last if k.endswith("/entropy")]
    assert "arch/res4.0/entropy" in block_keys and "arch/res4.0/I_1x1" in last
    for k in block_keys:  # mean entropy of G distributions over the candidates, in nats
        assert 0.0 <= last[k] <= torch.log(torch.tensor(9.0)).item() + 1e-6


class _Stop(Exception):
    pass


def interrupted_and_resumed(cfg):
    """A search of ``cfg`` (MAX_ITER 5, CHECKPOINT_PERIOD 2) killed after 3 iterations, then
    resumed from its iteration-2 checkpoint and run to the end."""
    cut = build(cfg)
    cut.resume_or_load(resume=False)

    def stop(trainer):
        if trainer.iter == 3:  # dies after 3 iterations; the checkpoint is from iteration 2
            raise _Stop()

    cut.register_hooks([hooks.CallbackHook(before_step=stop)])
    with pytest.raises(_Stop):
        cut.train()
    del cut

    resumed = build(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    resumed.train()
    return resumed


def test_resume_is_bit_identical(tmp_path):
    full = build(search_cfg(tmp_path / "full", max_iter=5, warmup_iters=1, checkpoint_period=2))
    full.resume_or_load(resume=False)
    full.train()

    cfg = search_cfg(tmp_path / "cut", max_iter=5, warmup_iters=1, checkpoint_period=2)
    resumed = interrupted_and_resumed(cfg)
    (la, wa), (lb, wb) = split_state(full), split_state(resumed)
    assert not changed(la, lb), "logits differ after resume"
    assert not changed(wa, wb), "weights differ after resume"
    sa, sb = full._trainer.arch_optimizer.state_dict(), resumed._trainer.arch_optimizer.state_dict()
    assert all(
        torch.equal(sa["state"][k]["exp_avg"], sb["state"][k]["exp_avg"]) for k in sa["state"]
    )
    # The decision statistics (first-step entropy, last-quarter stability) survive the resume.
    decisions = [
        json.loads((tmp_path / d / "search_decision.json").read_text()) for d in ("full", "cut")
    ]
    assert decisions[0] == decisions[1] and decisions[0]["res3"]["entropy_first"] is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="AMP training needs CUDA")
def test_amp_search_steps_and_checkpoints_both_scalers(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=3, warmup_iters=1)
    cfg.MODEL.DEVICE, cfg.SOLVER.AMP.ENABLED = "cuda", True
    trainer = build(cfg)
    trainer.resume_or_load(resume=False)
    logits, _ = split_state(trainer)
    trainer.train()
    assert type(trainer._trainer).__name__ == "AMPSearchStepTrainer"
    assert changed(logits, split_state(trainer)[0])
    state = trainer.state_dict()["_trainer"]
    assert {"grad_scaler", "arch_grad_scaler", "arch_optimizer", "optimizer"} <= set(state)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="with CUDA the real AMP search test above runs instead"
)
def test_amp_architecture_step_plumbing_on_cpu(tmp_path):
    # The AMP weight step is Detectron2's AMPTrainer (CUDA only); the architecture step's AMP
    # plumbing (autocast, its own GradScaler, checkpointed) runs here with the scaler disabled.
    cfg = search_cfg(tmp_path, max_iter=3, warmup_iters=0)
    cfg.SOLVER.AMP.ENABLED = True
    with pytest.warns(UserWarning, match="CUDA is not available"):
        trainer = build(cfg)
    step = trainer._trainer
    assert type(step).__name__ == "AMPSearchStepTrainer"
    logits, weights = split_state(trainer)
    with EventStorage(0):
        step.iter = 0
        step.run_arch_step()
    l1, w1 = split_state(trainer)
    assert changed(logits, l1) == set(logits) and not changed(weights, w1)
    state = trainer.state_dict()["_trainer"]
    assert {"grad_scaler", "arch_grad_scaler", "arch_optimizer", "optimizer"} <= set(state)
    step.load_state_dict(state)


def test_in_backward_weight_update_equals_the_plain_step(tmp_path):
    runs = {}
    for fused in (True, False):
        cfg = search_cfg(tmp_path / f"fused_{fused}", max_iter=3, warmup_iters=1)
        cfg.MODEL.NATS.SEARCH.FUSED_WEIGHT_UPDATE = fused
        trainer = build(cfg)
        assert (
            len(trainer._trainer.fused_weight_update_params) > 13
        ) == fused  # every mixed op's replicas
        trainer.resume_or_load(resume=False)
        trainer.train()
        runs[fused] = split_state(trainer), trainer.optimizer.state_dict()["state"]
    ((l1, w1), state1), ((l0, w0), state0) = runs[True], runs[False]
    assert not changed(l1, l0) and not changed(w1, w0), "in-backward SGD differs from the step"
    assert state1.keys() == state0.keys()
    assert all(
        torch.equal(state1[k]["momentum_buffer"], state0[k]["momentum_buffer"]) for k in state0
    )


def test_in_backward_update_only_where_gradients_are_final():
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    assert can_fuse_weight_update(sgd, world_size=1, amp=False)
    assert not can_fuse_weight_update(
        sgd, world_size=2, amp=False
    )  # DDP averages after accumulation
    assert not can_fuse_weight_update(sgd, world_size=1, amp=True)  # scaled gradients
    cfg = tiny_cfg()
    cfg.SOLVER.CLIP_GRADIENTS.ENABLED = True
    clipped = maybe_add_gradient_clipping(cfg, torch.optim.SGD)(params, lr=0.1, momentum=0.9)
    assert not can_fuse_weight_update(clipped, world_size=1, amp=False)
    with pytest.raises(ValueError, match="every parameter must be in the optimizer"):
        attach_fused_weight_update(sgd, [torch.nn.Parameter(torch.zeros(1))])


def test_the_number_of_loader_workers_changes_nothing(tmp_path):
    runs = []
    for workers in (0, 2):
        cfg = search_cfg(tmp_path / f"workers_{workers}", max_iter=3, warmup_iters=1)
        cfg.DATALOADER.NUM_WORKERS = workers
        trainer = build(cfg)
        trainer.resume_or_load(resume=False)
        trainer.train()
        runs.append(split_state(trainer))
    (la, wa), (lb, wb) = runs
    assert not changed(la, lb), "the logits depend on DATALOADER.NUM_WORKERS"
    assert not changed(wa, wb), "the weights depend on DATALOADER.NUM_WORKERS"
