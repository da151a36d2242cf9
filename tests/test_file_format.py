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
