"""Search splits (search/splits.py): stable, disjoint, by image id."""

import pytest

from projects.nats.search.splits import split_by_image_id


def test_split_by_image_id_is_stable_and_disjoint():
    dicts = [{"image_id": i, "file_name": f"{i}.png"} for i in range(50)]
    weight, arch = split_by_image_id(dicts, 0.3, seed=0)
    assert len(arch) == 15 and len(weight) == 35
    assert not {d["image_id"] for d in weight} & {d["image_id"] for d in arch}
    # Independent of the records' order; another seed draws another split.
    w2, a2 = split_by_image_id(list(reversed(dicts)), 0.3, seed=0)
    assert {d["image_id"] for d in a2} == {d["image_id"] for d in arch}
    _, a3 = split_by_image_id(dicts, 0.3, seed=1)
    assert {d["image_id"] for d in a3} != {d["image_id"] for d in arch}
    with pytest.raises(ValueError, match="SPLIT.FRACTION"):
        split_by_image_id(dicts, 1.0, seed=0)
