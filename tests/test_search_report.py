"""What a search logs (search/report.py, search/eta.py): the schedule at the start, the decision
summary at the end, the heatmap put into TensorBoard at each checkpoint, an ETA that counts the
architecture steps."""

import logging
import re

import pytest
from detectron2.engine import hooks
from detectron2.utils.events import EventStorage
from test_search_trainer import build, search_cfg

from projects.nats.search.eta import SearchMetricPrinter, search_eta_seconds
from projects.nats.search.report import schedule_text
from projects.nats.search.schedule import resolve_search_schedule


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def d2_log():
    """The messages of Detectron2's logger (which writes log.txt and the terminal)."""
    handler = _Lines()
    log = logging.getLogger("detectron2")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler.lines
    log.removeHandler(handler)
    log.setLevel(level)


def test_schedule_text_in_iterations(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=0, warmup_iters=0, checkpoint_period=40)
    cfg.MODEL.NATS.SEARCH.EPOCHS, cfg.MODEL.NATS.SEARCH.WARMUP_EPOCHS = 4, 1
    cfg.SOLVER.IMS_PER_BATCH = 4
    schedule = resolve_search_schedule(cfg, 100)  # 25 iterations per epoch
    text = schedule_text(cfg, schedule, num_weight_images=100, num_arch_images=50)
    assert "= 25.0 iterations per epoch" in text
    assert "MODEL.NATS.SEARCH.EPOCHS 4 x 25.0 = 100 iterations (iterations 0-99)" in text
    assert "weight-only warm-up: iterations 0-24 (MODEL.NATS.SEARCH.WARMUP_EPOCHS 1)" in text
    assert "first architecture step: iteration 25; 75 architecture steps" in text
    assert "after iterations 39, 79 and at the end" in text


def test_a_search_logs_its_schedule_summary_and_heatmaps(tmp_path, d2_log):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = search_cfg(tmp_path, max_iter=4, warmup_iters=1, checkpoint_period=2)
    trainer = build(cfg)
    images = []  # (name, step) put into the storage, seen after each step
    trainer.register_hooks(
        [
            hooks.CallbackHook(
                after_step=lambda t: images.extend(
                    (name, step) for name, _, step in t.storage._vis_data
                )
            )
        ]
    )
    trainer.resume_or_load(resume=False)
    trainer.train()
    text = "\n".join(d2_log)
    assert "weight-only warm-up: iteration 0 (MODEL.NATS.SEARCH.WARMUP_ITERS 1)" in text
    assert "first architecture step: iteration 1; 3 architecture steps" in text
    assert "SOLVER.CHECKPOINT_PERIOD 2:" in text and "after iterations 1 and at the end" in text
    # The heatmap goes into the storage at the checkpoint (after iteration 1, 2 done) ...
    assert ("arch/heatmap", 1) in images
    # ... and TensorBoard has it there and at the end (after_train's step: max_iter).
    acc = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    assert [e.step for e in acc.Images("arch/heatmap")] == [1, 4]
    summary = next(m for m in d2_log if m.startswith("Search finished after 4 iterations"))
    for stage in ("res3", "res4", "res5"):
        row = next(line for line in summary.splitlines() if line.strip().startswith(stage + ":"))
        shares = [int(v) for v in re.findall(r"\(\d,\d\) (\d+)%", row)]
        assert len(shares) == len(cfg.MODEL.NATS.CANDIDATES[stage.upper()])
        assert abs(sum(shares) - 100) <= len(shares)  # rounded shares of all channels
        assert " of ln " in row and "| stable " in row
    assert "architecture.json: " + str(tmp_path / "architecture.json") in summary
    assert "search_decision.json" in summary and "architecture_heatmap.png" in summary
    # The terminal printer's ETA is the search's own.
    assert any(isinstance(w, SearchMetricPrinter) for w in trainer.build_writers())


def test_eta_counts_architecture_steps():
    # 10 iterations, architecture steps from iteration 5; weight-only ones took 1 s, architecture
    # ones 3 s. After iteration 7: iterations 8 and 9 are left, both with an architecture step.
    times = [(1.0, i) for i in range(5)] + [(3.0, i) for i in range(5, 8)]
    eta = search_eta_seconds(iteration=7, max_iter=10, arch_start_iter=5, times=times, arch_cost=2)
    assert eta == 6.0
    # After iteration 2, only weight-only ones measured: 3, 4 at 1 s and 5-9 at 1 s x arch_cost 2.
    eta = search_eta_seconds(
        iteration=2, max_iter=10, arch_start_iter=5, times=times[:3], arch_cost=2
    )
    assert eta == 2 * 1.0 + 5 * 2.0
    # After iteration 4 with both kinds measured (a resumed search): 5 x 3 s.
    assert (
        search_eta_seconds(iteration=4, max_iter=10, arch_start_iter=5, times=times, arch_cost=2)
        == 15.0
    )
    assert (
        search_eta_seconds(iteration=0, max_iter=10, arch_start_iter=5, times=[], arch_cost=2)
        is None
    )
    # Through the printer, which puts it into the storage as Detectron2's does.
    printer = SearchMetricPrinter(10, arch_start_iter=5, arch_cost=2)
    with EventStorage(0) as storage:
        for t, it in times:
            storage.iter = it
            storage.put_scalar("time", t)
        assert printer._get_eta(storage) == "0:00:06"
        assert storage.latest()["eta_seconds"][0] == 6.0
