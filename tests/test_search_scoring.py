"""The test bed's search-validation scores: Kendall's tau-b, an architecture's log-probability
under a search's logits, the mean dilation and the direction check, on hand-computed cases."""

import math
import os
import sys

import pytest
import torch

from projects.nats.architecture import decode_architecture
from projects.nats.architecture.score import group_choices, kendall_tau, log_probability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from bench_search_validation import direction, mean_dilation  # noqa: E402

CANDS = [(1, 1), (2, 2), (3, 3)]


def test_kendall_tau_hand_computed():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> (5 - 1) / 6
    assert math.isclose(kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]), 4 / 6)
    # a tie in x: pairs (a,b) tied in x; others: (a,c) C, (b,c) C -> tau-b = 2 / sqrt(2 * 3)
    assert math.isclose(kendall_tau([1, 1, 2], [1, 2, 3]), 2 / math.sqrt(2 * 3))
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="3 values against 2"):
        kendall_tau([1, 2, 3], [1, 2])


def _arch(choices_per_block):
    """An architecture whose groups pick the given candidate indices (one-hot logits)."""
    blocks = []
    for name, choices in choices_per_block.items():
        alpha = torch.nn.functional.one_hot(torch.tensor(choices), len(CANDS)).float()
        blocks.append((name, alpha, CANDS, 4 * len(choices)))
    return decode_architecture(blocks, group_mode="count", group_value=len(choices))


def test_log_probability_hand_computed():
    arch = _arch({"res4.0": [0, 2], "res5.0": [1, 1]})
    assert group_choices(arch, "res4.0", CANDS) == [0, 2]
    a4 = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 2.0]])
    a5 = torch.tensor([[0.0, math.log(2.0), 0.0], [0.0, 0.0, 0.0]])
    logits = [("res4.0", a4, CANDS, 8), ("res5.0", a5, CANDS, 8)]
    expected = (
        math.log(1 / 3)
        + math.log(math.exp(2) / (math.e + 1 + math.exp(2)))
        + math.log(2 / 4)
        + math.log(1 / 3)
    )
    assert math.isclose(log_probability(arch, logits), expected, rel_tol=1e-9)
    # the architecture the logits favour scores higher than one they do not
    assert log_probability(arch, logits) > log_probability(
        _arch({"res4.0": [1, 1], "res5.0": [0, 2]}), logits
    )
    with pytest.raises(ValueError, match="no block res3.0"):
        log_probability(arch, [("res3.0", a4, CANDS, 8)])


def test_mean_dilation_and_direction():
    md = mean_dilation({"res4": {"1x1": 0.5, "3x3": 0.5}, "res5": {"1x3": 1.0}})
    assert math.isclose(md["res4"], 0.5 + 1.5) and math.isclose(md["res5"], math.sqrt(3))
    large = {s: {"res4": 2.0, "res5": 1.5 + s} for s in range(5)}
    small = {s: {"res4": 1.0 + s * 0.3, "res5": 1.0} for s in range(5)}
    out = direction({"large": large, "small": small}, list(range(5)))
    # res4: 2.0 > 1.0, 1.3, 1.6, 1.9 but not 2.2 -> 4 of 5; res5: always
    assert out["res4"] == {"seeds_right": 4, "of": 5, "pass": True}
    assert out["res5"]["seeds_right"] == 5
    small[0]["res4"] = 2.5
    assert direction({"large": large, "small": small}, list(range(5)))["res4"]["pass"] is False


def test_pipeline_direction_check_hand_computed():
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    from pipeline import direction_check
    from pipeline import mean_dilation as pipeline_mean_dilation

    cands = {"res4": ["1x1", "3x3"], "res5": ["1x1", "3x3"]}
    # uniform start: (1 + 3) / 2 = 2 in both stages
    fixed = {"res4": 1.0, "res5": 3.0}
    searched = {"res4": 1.5, "res5": 1.5}
    out = direction_check(searched, fixed, cands)
    assert out["res4"] == {"uniform": 2.0, "searched": 1.5, "fixed": 1.0, "toward_fixed": True}
    assert out["res5"]["toward_fixed"] is False
    assert (
        direction_check(searched, {"res4": 2.0, "res5": 3.0}, cands)["res4"]["toward_fixed"] is None
    )
    assert pipeline_mean_dilation({"res4": {"1x1": 0.5, "3x3": 0.5}}) == {"res4": 2.0}
