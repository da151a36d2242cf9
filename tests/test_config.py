"""The config checks beside add_nats_config: bad input named before any work."""

import pytest
from detectron2.config import get_cfg

from projects.nats.config import check_weights_file


def test_missing_local_weights_are_refused_by_name(tmp_path):
    cfg = get_cfg()
    cfg.MODEL.WEIGHTS = str(tmp_path / "X-101-32x4d.pkl")
    with pytest.raises(FileNotFoundError, match=r"MODEL.WEIGHTS = .*X-101-32x4d.pkl does not"):
        check_weights_file(cfg)
    for ok in ("", "detectron2://ImageNetPretrained/MSRA/R-50.pkl"):
        cfg.MODEL.WEIGHTS = ok
        assert check_weights_file(cfg) == ok
