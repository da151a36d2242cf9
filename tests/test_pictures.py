"""The search's heatmap (architecture/heatmap.py) and the ERF figure (erf/figure.py): one colour
per dilation in every stage, shade by winning probability, title, size, the border warning."""

import logging
import os

import numpy as np
import pytest
import torch
from PIL import Image

from projects.nats.architecture import decode_architecture
from projects.nats.architecture.heatmap import (
    _progress,
    architecture_heatmap_image,
    dilation_colour,
    heatmap_cells,
    save_architecture_heatmap,
    winning_probabilities,
)
from projects.nats.erf.figure import erf_reaches_border, save_erf_figure

C5 = [(1, 1), (2, 2), (3, 3), (1, 3), (3, 1)]
C9 = C5 + [(4, 4), (5, 5), (1, 5), (5, 1)]


def _arch(scale_per_stage, meta=None):
    """Blocks res3.0, res4.0 (5 candidates) and res5.0 (9); group g of every block chooses the
    candidate g % K, with a logit margin of the stage's scale."""
    blocks = []
    for stage, cands in (("res3", C5), ("res4", C5), ("res5", C9)):
        alpha = torch.zeros(8, len(cands))
        for g in range(8):
            alpha[g, g % len(cands)] = scale_per_stage[stage]
        blocks.append((f"{stage}.0", alpha, cands, 64))
    arch = decode_architecture(blocks, group_mode="count", group_value=8, meta=meta or {})
    return arch, {name: alpha for name, alpha, _, _ in blocks}


def test_a_dilation_has_one_colour_in_every_stage():
    colours = [dilation_colour(d) for d in C9]
    assert len(set(colours)) == len(C9)  # the nine candidates tell apart
    assert dilation_colour((2, 2)) == dilation_colour([2, 2])  # by (dh, dw) alone
    assert dilation_colour((7, 2)) == dilation_colour((7, 2)) not in colours
    # In the drawn cells, group g chose candidate g % K in every stage: (3, 3) (index 2) and
    # (1, 3) (index 3) have the same hue in res3 (5 candidates) and res5 (9), decided or not.
    for scale in (20.0, 0.5):
        arch, logits = _arch({"res3": scale, "res4": scale, "res5": scale})
        cells = heatmap_cells(arch, logits=logits)
        for g in range(5):  # the hue: the direction away from white (the shade is its length)
            a, b = 1 - cells["res3"][0, g], 1 - cells["res5"][0, g]
            assert np.allclose(a / np.linalg.norm(a), b / np.linalg.norm(b))
        assert not np.allclose(cells["res5"][0, 5], cells["res5"][0, 0])  # (4,4) != (1,1)
        if scale == 20.0:  # decided: the full hue
            assert np.allclose(cells["res5"][0, 2], dilation_colour((3, 3)), atol=1e-6)
    image = architecture_heatmap_image(arch, logits=logits, iteration=5)
    assert image.dtype == np.uint8 and image.shape[0] == 3


def test_decided_and_undecided_shades_differ(tmp_path):
    decided, logits = _arch({"res3": 20.0, "res4": 20.0, "res5": 20.0})
    undecided, flat = _arch({"res3": 0.01, "res4": 0.01, "res5": 0.01})
    p = winning_probabilities(decided, logits=logits)
    q = winning_probabilities(undecided, logits=flat)
    assert all(np.allclose(v, 1.0) for v in p.values())
    assert np.allclose(q["res5.0"], 1 / 9, atol=1e-2) and np.allclose(q["res3.0"], 0.2, atol=1e-2)
    a = architecture_heatmap_image(decided, logits=logits, iteration=1).astype(float)
    b = architecture_heatmap_image(undecided, logits=flat, iteration=1).astype(float)
    assert a.shape == b.shape
    # The same choices (argmax), so only the shade differs: the undecided cells are pale.
    sat_a = (a.max(0) - a.min(0)).mean()
    sat_b = (b.max(0) - b.min(0)).mean()
    assert sat_b < 0.5 * sat_a
    with pytest.raises(ValueError, match="res4.0"):
        winning_probabilities(decided, logits={k: v for k, v in logits.items() if k != "res4.0"})
    path = save_architecture_heatmap(decided, str(tmp_path / "h.png"), logits=logits)
    assert Image.open(path).size[0] >= 800


def test_title_has_the_iteration_and_whether_finished():
    arch, _ = _arch({"res3": 1.0, "res4": 1.0, "res5": 1.0}, meta={"max_iter": 40})
    assert _progress(arch, 20, None) == "iteration 20 of 40, not finished"
    assert _progress(arch, 40, True) == "iteration 40 of 40, finished"
    assert _progress(arch, 40, None) == "iteration 40 of 40, finished"
    no_meta, _ = _arch({"res3": 1.0, "res4": 1.0, "res5": 1.0})
    assert _progress(no_meta, 7, None) == "iteration 7, finished: unknown"
    assert _progress(no_meta, 7, False) == "iteration 7, not finished"


def _maps(sigma_last, size=512, features=9, rows=2):
    yy, xx = np.mgrid[:size, :size]
    r2 = (yy - (size - 1) / 2) ** 2 + (xx - (size - 1) / 2) ** 2
    rng = np.random.default_rng(0)
    sigmas = list(np.linspace(8, 60, features - 1)) + [sigma_last]
    return {
        f"model {i} with a rather long label": {
            f"p{j}": np.exp(-r2 / (2 * s**2)) * rng.gamma(0.5, 1.0, (size, size))
            for j, s in enumerate(sigmas)
        }
        for i in range(rows)
    }


def test_erf_figure_under_1mb_and_warns_only_for_a_map_at_the_border(tmp_path, caplog):
    assert not erf_reaches_border(np.pad(np.ones((5, 5)), 10))
    assert erf_reaches_border(np.ones((9, 9)))
    assert not erf_reaches_border(np.zeros((9, 9)))
    erfs = _maps(sigma_last=400)  # 2 models x 9 maps at 512x512, visualize_erf.py's defaults
    path = str(tmp_path / "erf.png")
    with caplog.at_level(logging.WARNING, logger="nats.erf.figure"):
        cut = save_erf_figure(erfs, path)
    assert os.path.getsize(path) < 1_000_000
    assert cut == [(label, "p8") for label in erfs]  # the wide one only
    warned = [
        r.getMessage() for r in caplog.records if "reaches the input's border" in r.getMessage()
    ]
    assert len(warned) == 2 and all("p8" in m for m in warned)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nats.erf.figure"):
        assert save_erf_figure(_maps(sigma_last=60, rows=1), path) == []
    assert not caplog.records
