"""The architecture file (architecture/file_format.py): round trip, every bad field named,
keyword-only records."""

import json
import os
import re

import pytest

from projects.nats.architecture import (
    Architecture,
    ArchitectureError,
    BlockArchitecture,
    Genotype,
    load_architecture,
    save_architecture,
)


def small_architecture_dict():
    """A valid two-block file (count mode, 2 groups per conv) for the bad-file cases to edit."""
    cands = [[1, 1], [2, 2]]
    return {
        "format": "nats-architecture",
        "version": 1,
        "groups": {"mode": "count", "value": 2},
        "candidates": {"res3": cands, "res4": cands},
        "blocks": {
            "res3.0": {
                "out_channels": 8,
                "num_groups": 2,
                "genotypes": [
                    {"dilation": [1, 1], "channels": 4, "groups": [0]},
                    {"dilation": [2, 2], "channels": 4, "groups": [1]},
                ],
            },
            "res4.0": {
                "out_channels": 16,
                "num_groups": 2,
                "genotypes": [{"dilation": [2, 2], "channels": 16, "groups": [0, 1]}],
            },
        },
        "meta": {"note": "test"},
    }


def _set_block(d, name, block):
    d["blocks"][name] = block


BAD_FILES = {
    "candidates not a list": (
        lambda d: d["candidates"].update(res3=5),
        "'candidates.res3' must be a non-empty list of [dh, dw] pairs",
    ),
    "string channel group": (
        lambda d: d["blocks"]["res3.0"]["genotypes"][1].update(groups=["1"]),
        "'blocks.res3.0.genotypes[1].groups[0]' must be a channel group index in 0..1",
    ),
    "count value disagrees with num_groups": (
        lambda d: d["groups"].update(value=4),
        "'blocks.res3.0.num_groups' must equal 'groups.value' (4)",
    ),
    "channels value disagrees with num_groups": (
        # 8 / 4 = 2 groups fits res3.0; res4.0 would need 16 / 4 = 4, not 2
        lambda d: d["groups"].update(mode="channels", value=4),
        "'blocks.res4.0.num_groups' must be out_channels / 'groups.value' = 16 / 4",
    ),
    "zero value": (
        lambda d: d["groups"].update(value=0),
        "'groups.value' must be a positive integer",
    ),
    "negative value": (
        lambda d: d["groups"].update(value=-2),
        "'groups.value' must be a positive integer",
    ),
    "unknown stage in candidates": (
        lambda d: d["candidates"].update(res9=[[1, 1]]),
        "'candidates.res9' is not a stage; accepted stages: ['res2', 'res3', 'res4', 'res5']",
    ),
    "block name without index": (
        lambda d: _set_block(d, "res3", d["blocks"].pop("res3.0")),
        "'blocks.res3' must be '<stage>.<index>' with stage in ['res2', 'res3', 'res4', 'res5']",
    ),
    "block name of an unknown stage": (
        lambda d: _set_block(d, "res9.0", d["blocks"].pop("res3.0")),
        "'blocks.res9.0' must be '<stage>.<index>'",
    ),
    "block of a stage not in candidates": (
        lambda d: _set_block(d, "res2.0", d["blocks"].pop("res3.0")),
        "'blocks.res2.0' is in stage 'res2', which is not among the searched stages",
    ),
    "no searched blocks": (
        lambda d: (d["candidates"].clear(), d["blocks"].clear()),
        "'candidates' and 'blocks' must name at least one searched stage and block",
    ),
    "meta not an object": (
        lambda d: d.update(meta=["iteration", 7]),
        "field 'meta' must be an object",
    ),
}


def test_small_architecture_file_is_valid(tmp_path):
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(small_architecture_dict()))
    arch = load_architecture(str(path))
    assert arch.to_dict() == small_architecture_dict()


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_architecture_file_names_the_field(tmp_path, case):
    edit, message = BAD_FILES[case]
    data = small_architecture_dict()
    edit(data)
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ArchitectureError, match=re.escape(message)) as info:
        load_architecture(str(path))
    assert str(info.value).startswith(str(path))  # the file is named too


def test_committed_reference_architecture_loads_and_matches_its_generator():
    from tools.make_reference_architecture import DEFAULT_OUT, seeded_architecture

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    loaded = load_architecture(os.path.join(root, DEFAULT_OUT))
    assert loaded.to_dict() == seeded_architecture().to_dict()


def test_dataclasses_are_keyword_only():
    genotype = Genotype(dilation=(1, 1), channels=8, groups=(0, 1))
    block = BlockArchitecture(out_channels=8, num_groups=2, genotypes=(genotype,))
    arch = Architecture(candidates={"res3": [(1, 1)]}, group_mode="count", group_value=2, blocks={})
    assert arch.meta == {} and block.genotypes[0] is genotype
    for cls, args in [
        (Genotype, ((1, 1), 8, (0, 1))),
        (BlockArchitecture, (8, 2, (genotype,))),
        (Architecture, ({"res3": [(1, 1)]}, "count", 2, {})),
    ]:
        with pytest.raises(TypeError):
            cls(*args)


def aligned_architecture_dict():
    """A valid version 2 file: 4 groups of 2 over 8 channels, aligned to 4; group 3 chose (3, 3)
    alone, which the alignment dropped: its rows 6-7 went to (2, 2)."""
    cands = [[1, 1], [2, 2], [3, 3]]
    return {
        "format": "nats-architecture",
        "version": 2,
        "groups": {"mode": "count", "value": 4},
        "candidates": {"res3": cands},
        "decode": {"align_channels": 4, "max_genotypes": 0},
        "blocks": {
            "res3.0": {
                "out_channels": 8,
                "num_groups": 4,
                "genotypes": [
                    {"dilation": [1, 1], "channels": 4, "groups": [0, 2], "rows": [[0, 2], [4, 6]]},
                    {"dilation": [2, 2], "channels": 4, "groups": [1], "rows": [[2, 4], [6, 8]]},
                ],
                "dropped": [{"dilation": [3, 3], "groups": [3]}],
            },
        },
        "meta": {},
    }


def _v2_genotype(d, i):
    return d["blocks"]["res3.0"]["genotypes"][i]


BAD_ALIGNED_FILES = {
    "unknown version": (lambda d: d.update(version=3), "field 'version' must be one of [1, 2]"),
    "version 2 without decode": (lambda d: d.pop("decode"), "missing field 'decode'"),
    "version 2 with the paper's decoding": (
        lambda d: d["decode"].update(align_channels=1),
        "'decode' with align_channels 1 and max_genotypes 0 is the paper's decoding",
    ),
    "alignment zero": (
        lambda d: d["decode"].update(align_channels=0),
        "'decode.align_channels' must be an integer >= 1",
    ),
    "alignment not dividing the width": (
        lambda d: d["decode"].update(align_channels=3),
        "'blocks.res3.0.out_channels' (8) must be a multiple of 'decode.align_channels' (3)",
    ),
    "channels not aligned": (
        lambda d: (
            _v2_genotype(d, 0).update(channels=2, rows=[[0, 2]]),
            _v2_genotype(d, 1).update(channels=6, rows=[[2, 8]]),
        ),
        "'blocks.res3.0.genotypes[0].channels' must be a multiple of 'decode.align_channels' (4)",
    ),
    "channels disagree with rows": (
        lambda d: _v2_genotype(d, 1).update(channels=8),
        "'blocks.res3.0.genotypes[1].channels' must be the number of channels its 'rows' cover",
    ),
    "rows overlap": (
        lambda d: _v2_genotype(d, 1).update(rows=[[0, 2], [6, 8]]),
        "the 'rows' of 'blocks.res3.0.genotypes' must cover output channels 0..7 exactly once",
    ),
    "bad row range": (
        lambda d: _v2_genotype(d, 1).update(rows=[[4, 2], [6, 8]]),
        "'blocks.res3.0.genotypes[1].rows[0]' must be a [start, stop) range",
    ),
    "missing rows": (
        lambda d: _v2_genotype(d, 0).pop("rows"),
        "missing field 'blocks.res3.0.genotypes[0].rows'",
    ),
    "dropped group lost": (
        lambda d: d["blocks"]["res3.0"]["dropped"].clear(),
        "the 'groups' of 'blocks.res3.0.genotypes' and 'blocks.res3.0.dropped' must cover "
        "channel groups 0..3 exactly once each, got [0, 1, 2]",
    ),
    "too many genotypes for the cap": (
        lambda d: d["decode"].update(max_genotypes=1),
        "'blocks.res3.0.genotypes' must keep at most 'decode.max_genotypes' (1) genotypes, got 2",
    ),
}


def test_aligned_version_2_file_round_trips(tmp_path):
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(aligned_architecture_dict()))
    arch = load_architecture(str(path))
    assert (arch.version, arch.align_channels, arch.max_genotypes) == (2, 4, 0)
    assert arch.to_dict() == aligned_architecture_dict()
    block = arch.blocks["res3.0"]
    # decoded channel -> (supernet row, replica): rows 6-7 of group 3 now use (2, 2)
    assert block.row_sources() == [
        (0, (1, 1)), (1, (1, 1)), (4, (1, 1)), (5, (1, 1)),
        (2, (2, 2)), (3, (2, 2)), (6, (2, 2)), (7, (2, 2)),
    ]  # fmt: skip
    assert block.group_choices() == {0: (1, 1), 1: (2, 2), 2: (1, 1), 3: (3, 3)}
    save_architecture(arch, str(tmp_path / "again.json"))
    assert load_architecture(str(tmp_path / "again.json")) == arch


@pytest.mark.parametrize("case", sorted(BAD_ALIGNED_FILES))
def test_bad_aligned_file_names_the_field(tmp_path, case):
    edit, message = BAD_ALIGNED_FILES[case]
    data = aligned_architecture_dict()
    edit(data)
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ArchitectureError, match=re.escape(message)):
        load_architecture(str(path))


def test_default_decoding_still_writes_version_1_byte_for_byte(tmp_path):
    from tools.make_reference_architecture import DEFAULT_OUT, seeded_architecture

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    save_architecture(seeded_architecture(), str(tmp_path / "ref.json"))
    with open(os.path.join(root, DEFAULT_OUT), "rb") as f:
        assert (tmp_path / "ref.json").read_bytes() == f.read()
    assert json.loads((tmp_path / "ref.json").read_text())["version"] == 1


def test_rebalanced_rows_are_refused_in_a_version_1_file():
    genotype = Genotype(dilation=(1, 1), channels=8, groups=(0, 1), rows=((0, 4), (4, 8)))
    block = BlockArchitecture(out_channels=8, num_groups=2, genotypes=(genotype,))
    arch = Architecture(
        candidates={"res3": [(1, 1)]}, group_mode="count", group_value=2, blocks={"res3.0": block}
    )
    assert arch.to_dict()["version"] == 1  # the default rows: nothing lost
    moved = Genotype(dilation=(1, 1), channels=8, groups=(0, 1), rows=((4, 8), (0, 4)))
    arch.blocks["res3.0"] = BlockArchitecture(out_channels=8, num_groups=2, genotypes=(moved,))
    with pytest.raises(ArchitectureError, match="needs format version 2"):
        arch.to_dict()
