"""The random-architecture control (architecture/random_architecture.py and its tool): a file
the loader accepts, of the search config's candidates and group division, fixed by its seed."""

import os
import subprocess
import sys
from collections import Counter

from detectron2.config import get_cfg
from detectron2.modeling import build_backbone

from projects.nats import add_nats_config, load_architecture
from projects.nats.architecture import random_architecture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCH = "configs/Demo/search_shapes_R_50_FPN_G16.yaml"


def _search_cfg():
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, SEARCH))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def test_the_tool_writes_a_loadable_file_of_the_search_space(tmp_path):
    out = tmp_path / "random" / "architecture.json"
    cmd = [sys.executable, "tools/make_random_architecture.py", "--config-file", SEARCH]
    subprocess.run(cmd + ["--seed", "3", "--output", str(out)], cwd=ROOT, check=True)
    arch = load_architecture(str(out))
    cfg = _search_cfg()
    assert (arch.group_mode, arch.group_value) == ("count", 16)
    assert sorted(arch.candidates) == sorted(cfg.MODEL.NATS.STAGES)
    assert arch.candidates["res5"] == [tuple(d) for d in cfg.MODEL.NATS.CANDIDATES.RES5]
    assert arch.meta["source"] == "random" and arch.meta["seed"] == 3
    supernet = build_backbone(cfg)
    assert arch.to_dict() == random_architecture(supernet, cfg, seed=3).to_dict()
    # A decoded network of the demo's retraining config builds from it.
    nats = get_cfg()
    add_nats_config(nats)
    nats.merge_from_file(os.path.join(ROOT, "configs/Demo/faster_rcnn_R_50_FPN_nats_shapes.yaml"))
    nats.MODEL.NATS.ARCHITECTURE, nats.MODEL.DEVICE = str(out), "cpu"
    build_backbone(nats)


def test_the_seed_fixes_the_draw_and_draws_are_uniform():
    cfg = _search_cfg()
    supernet = build_backbone(cfg)
    a, b = (random_architecture(supernet, cfg, seed=s).to_dict() for s in (0, 0))
    assert a == b
    c = random_architecture(supernet, cfg, seed=1).to_dict()
    assert a["blocks"] != c["blocks"]
    # Every group draws from its stage's candidates, all of which are drawn about equally often.
    counts = Counter()
    for seed in range(8):
        arch = random_architecture(supernet, cfg, seed=seed)
        for name, block in arch.blocks.items():
            if name.startswith("res5"):
                for g in block.genotypes:
                    counts[g.dilation] += len(g.groups)
    candidates = [tuple(d) for d in cfg.MODEL.NATS.CANDIDATES.RES5]
    assert set(counts) == set(candidates)
    total = sum(counts.values())  # 8 seeds x 3 blocks x 16 groups = 384 draws over 9
    assert all(abs(n / total - 1 / len(candidates)) < 0.06 for n in counts.values())


def test_aligned_random_architecture_keeps_the_draws_and_the_tool_takes_the_flags(tmp_path):
    cfg = _search_cfg()  # demo widths: res3 64, res4 128, res5 256; G=16 -> 4, 8, 16 per group
    supernet = build_backbone(cfg)
    exact = random_architecture(supernet, cfg, seed=5)
    aligned = random_architecture(supernet, cfg, seed=5, align_channels=16, max_genotypes=4)
    assert exact.version == 1 and (aligned.version, aligned.align_channels) == (2, 16)
    assert aligned.max_genotypes == 4
    for name, block in exact.blocks.items():  # the same draws, decoded with the options
        assert aligned.blocks[name].group_choices() == block.group_choices()
        genotypes = aligned.blocks[name].genotypes
        assert len(genotypes) <= 4 and all(g.channels % 16 == 0 for g in genotypes)
        assert sum(g.channels for g in genotypes) == block.out_channels
    assert any(aligned.blocks[n] != exact.blocks[n] for n in exact.blocks)
    # The config's keys give the same file as the arguments; the tool's flags set those keys.
    cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS, cfg.MODEL.NATS.DECODE.MAX_GENOTYPES = 16, 4
    assert random_architecture(supernet, cfg, seed=5).to_dict() == aligned.to_dict()
    out = tmp_path / "architecture.json"
    cmd = [sys.executable, "tools/make_random_architecture.py", "--config-file", SEARCH]
    cmd += ["--seed", "5", "--output", str(out), "--align-channels", "16", "--max-genotypes", "4"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    assert load_architecture(str(out)).to_dict() == aligned.to_dict()
    bad = subprocess.run(
        cmd[:-4] + ["--align-channels", "48"], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert "MODEL.NATS.DECODE.ALIGN_CHANNELS = 48 does not divide" in bad.stderr
    assert "searched stage res3 (64 channels" in bad.stderr
