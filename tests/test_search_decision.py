"""The search's decision report (search/decision.py): per-stage entropy after the first and the
last architecture step against ln K, and the share of groups stable over the last quarter."""

import json
import math

import torch
from test_search_trainer import build, search_cfg


def test_a_search_reports_its_decision_per_stage(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=9, warmup_iters=1)
    cfg.MODEL.NATS.SEARCH.ARCH.BASE_LR = 0.05  # moves the logits visibly in 8 steps
    trainer = build(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    report = json.loads((tmp_path / "search_decision.json").read_text())
    assert sorted(report) == ["res3", "res4", "res5"]
    for stage, row in report.items():
        k = len(cfg.MODEL.NATS.CANDIDATES[stage.upper()])
        assert row["num_candidates"] == k and math.isclose(row["ln_K"], math.log(k))
        blocks = [b for b in trainer.searched_blocks() if b[0].startswith(stage + ".")]
        assert row["groups"] == 4 * len(blocks)  # GROUPS count 4
        assert 0 <= row["stable_groups"] <= row["groups"]
        assert row["stable_share"] == row["stable_groups"] / row["groups"]
        # The logits moved away from uniform, and further by the end.
        assert row["entropy_last"] < row["entropy_first"] < row["ln_K"]
        entropies = []
        for name, alpha, _ in blocks:
            p = alpha.detach().softmax(1)
            entropies += (-(p * p.log()).sum(1)).tolist()
        assert math.isclose(row["entropy_last"], sum(entropies) / len(entropies), rel_tol=1e-6)
    history = trainer.storage.history("arch_stage/res4/stable_share")
    assert history.latest() == report["res4"]["stable_share"]


def test_stability_counts_groups_whose_argmax_never_changed(tmp_path):
    from types import SimpleNamespace

    from detectron2.utils.events import EventStorage

    from projects.nats.search.decision import SearchDecisionTracker

    alpha = torch.zeros(4, 3)
    tracker = SearchDecisionTracker(
        blocks=[("res3.0", alpha, [(1, 1), (2, 2), (3, 3)])],
        arch_start_iter=2,
        max_iter=10,  # 8 architecture steps: the last quarter starts at iteration 8
        output_path=str(tmp_path / "search_decision.json"),
    )
    with EventStorage() as storage:
        tracker.trainer = SimpleNamespace(iter=0, storage=storage)
        for it, argmax in ((7, [0, 0, 0, 0]), (8, [0, 1, 2, 0]), (9, [0, 1, 0, 0])):
            alpha.zero_()
            alpha[torch.arange(4), torch.tensor(argmax)] = 1.0
            tracker.trainer.iter = it
            tracker.after_step()
    report = json.loads((tmp_path / "search_decision.json").read_text())
    assert report["res3"]["stable_groups"] == 3  # group 2 went from 2 to 0; iteration 7 is before
    assert report["res3"]["entropy_first"] is None  # iteration 2 was not seen
