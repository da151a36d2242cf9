"""Search schedules (search/schedule.py): epochs to iterations, the weights' LR cosine, and the
schedules of the shipped search configs (no model needed)."""

import os

import pytest
from common import tiny_cfg

from projects.nats.search.schedule import (
    SearchSchedule,
    build_weight_lr_scheduler,
    resolve_search_schedule,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _search_cfg(epochs, warmup_epochs, max_iter, warmup_iters=0):
    cfg = tiny_cfg()
    cfg.MODEL.NATS.SEARCH.EPOCHS = epochs
    cfg.MODEL.NATS.SEARCH.WARMUP_EPOCHS = warmup_epochs
    cfg.MODEL.NATS.SEARCH.WARMUP_ITERS = warmup_iters
    cfg.SOLVER.MAX_ITER = max_iter
    cfg.SOLVER.IMS_PER_BATCH = 8
    return cfg


def test_epochs_define_iterations():
    # 100 images / 8 per batch = 12.5 iterations per epoch.
    s = resolve_search_schedule(_search_cfg(25, 10, 0), 100)
    assert (s.max_iter, s.arch_start_iter, s.iters_per_epoch) == (313, 125, 12.5)
    # The same count in SOLVER.MAX_ITER is not a conflict.
    assert resolve_search_schedule(_search_cfg(25, 10, 313), 100).max_iter == 313


def test_search_schedule_is_keyword_only_and_frozen():
    schedule = SearchSchedule(max_iter=10, arch_start_iter=4, iters_per_epoch=2.5)
    assert (schedule.max_iter, schedule.arch_start_iter) == (10, 4)
    with pytest.raises(TypeError):
        SearchSchedule(10, 4, 2.5)
    with pytest.raises(AttributeError):  # frozen (FrozenInstanceError)
        schedule.max_iter = 20


def test_epochs_conflicting_with_max_iter_are_refused():
    with pytest.raises(ValueError, match=r"MODEL.NATS.SEARCH.EPOCHS=25.*SOLVER.MAX_ITER=1000"):
        resolve_search_schedule(_search_cfg(25, 10, 1000), 100)
    with pytest.raises(ValueError, match=r"WARMUP_EPOCHS=10.*WARMUP_ITERS=3"):
        resolve_search_schedule(_search_cfg(25, 10, 0, warmup_iters=3), 100)
    with pytest.raises(ValueError, match="SOLVER.MAX_ITER"):
        resolve_search_schedule(_search_cfg(0, 0, 0), 100)
    with pytest.raises(ValueError, match="no architecture step"):
        resolve_search_schedule(_search_cfg(0, 0, 5, warmup_iters=5), 100)


def test_iteration_schedule_when_epochs_is_zero():
    s = resolve_search_schedule(_search_cfg(0, 10, 7, warmup_iters=2), 100)
    assert (s.max_iter, s.arch_start_iter) == (7, 2)


def test_weight_lr_cosine_ends_at_configured_value():
    import torch

    cfg = _search_cfg(0, 0, 10)
    cfg.SOLVER.BASE_LR, cfg.MODEL.NATS.SEARCH.BASE_LR_END, cfg.SOLVER.WARMUP_ITERS = 0.01, 0.0004, 0
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    sched = build_weight_lr_scheduler(cfg, opt, 10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.01)
    assert lrs == sorted(lrs, reverse=True)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0004)  # value at max_iter
    cfg.MODEL.NATS.SEARCH.BASE_LR_END = 0.02
    with pytest.raises(ValueError, match="BASE_LR_END"):
        build_weight_lr_scheduler(cfg, opt, 10)


@pytest.mark.parametrize(
    "name",
    sorted(
        os.path.join("NATS-Search", n)
        for n in os.listdir(os.path.join(ROOT, "configs", "NATS-Search"))
        if n.endswith(".yaml") and not n.startswith("Base-")
    )
    + [os.path.join("Demo", "demo_shapes_R_50_FPN_tiny.yaml")],
)
def test_search_configs_load_and_schedule(name):
    from detectron2.config import get_cfg

    from projects.nats import add_nats_config
    from projects.nats.search_space import parse_search_space

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, "configs", name))
    name = os.path.basename(name)
    parse_search_space(cfg)  # candidates and group division are valid
    assert cfg.MODEL.BACKBONE.NAME.startswith("build_nats_supernet_")
    if name.startswith("demo_"):
        assert resolve_search_schedule(cfg, 120).max_iter == 120  # 2 epochs of 120 / 2 images
        return
    # The paper's runs: 82783 coco_2014_train images, 8 per batch, 25 epochs, 10 warm-up.
    assert cfg.SOLVER.IMS_PER_BATCH == 8 and cfg.MODEL.RESNETS.NORM == "SyncBN"
    assert cfg.MODEL.NATS.SEARCH.ARCH.DATASETS == ("coco_2014_valminusminival",)
    s = resolve_search_schedule(cfg, 82783)
    assert (s.max_iter, s.arch_start_iter) == (258697, 103479)
