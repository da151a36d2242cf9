"""The experiment's statistics (benchmarks/bench_nats_vs_baseline.py): paired differences with
t-based 95% intervals, and the between-seed agreement of searched intensities."""

import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench_nats_vs_baseline import mean_pairwise_tv, paired, report  # noqa: E402


def test_paired_difference_and_its_t_interval():
    mean, (lo, hi) = paired([3.0, 5.0, 4.0, 6.0, 7.0], [2.0, 3.0, 3.0, 4.0, 3.0])
    d = [1.0, 2.0, 1.0, 2.0, 4.0]  # mean 2, sd sqrt(1.5)
    half = 2.776 * math.sqrt(1.5) / math.sqrt(5)  # t(0.975, 4 df)
    assert mean == 2.0 and math.isclose(lo, 2 - half) and math.isclose(hi, 2 + half)
    assert paired([1.0], [0.5]) == (0.5, None)  # one pair: no interval
    assert sum(d) / 5 == mean
    mean, ci = paired([3.0, float("nan")], [2.0, 1.0])  # APm of a split without medium objects
    assert math.isnan(mean) and ci is None


def test_total_variation_between_runs():
    a = {"res3": {"1x1": 1.0, "2x2": 0.0}}
    b = {"res3": {"1x1": 0.0, "2x2": 1.0}}
    c = {"res3": {"1x1": 0.5, "2x2": 0.5}}
    assert mean_pairwise_tv([a, a]) == 0.0
    assert mean_pairwise_tv([a, b]) == 1.0
    assert math.isclose(mean_pairwise_tv([a, b, c]), (1.0 + 0.5 + 0.5) / 3)


def test_report_names_every_model_and_difference():
    def run(seed, shift):
        models = {
            m: {k: 10.0 + shift + i for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
            for i, m in enumerate(("baseline", "nats", "random", "scratch"))
        }
        search = {"res3": {"entropy_last": 1.0, "ln_K": 1.6, "stable_share": 0.9,
                           "intensities": {"1x1": 0.5, "2x2": 0.5}}}  # fmt: skip
        return {"seed": seed, "models": models, "search": search,
                "random_intensities": {"res3": {"1x1": 1.0, "2x2": 0.0}}}  # fmt: skip

    text = report([run(0, 0.0), run(1, 1.0), run(2, 0.5)])
    for row in ("| baseline |", "| nats |", "| random |", "| scratch |", "| nats - baseline |",
                "| nats - random |", "| baseline - scratch |"):  # fmt: skip
        assert row in text, row
    assert "+1.00 [+1.00, +1.00]" in text  # nats - baseline is exactly 1 in every seed
