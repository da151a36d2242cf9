"""Bad input is refused with a message naming the key, file or field, before anything is written.

Table-driven: every bad config, weights file and architecture file below stops ``search_net.py``
or ``train_net.py`` in ``setup`` (before Detectron2's ``default_setup`` and before any dataset
loads), and a previous run's OUTPUT_DIR is byte-for-byte unchanged. Bad datasets are refused
when the splits load, before the first step, naming the dataset and the first bad record.
"""

import errno
import importlib.util
import os
import pickle
import re

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances
from detectron2.structures import BoxMode
from test_decoded_backbone import decoded_cfg
from test_search_net import _args as search_args
from test_search_trainer import search_cfg
from test_train_net import _args as train_args

import search_net
import train_net
import visualize_erf
from projects.nats import atomic
from projects.nats.atomic import atomic_open
from projects.nats.data.checks import DatasetError, load_checked_dataset_dicts
from projects.nats.search import SearchTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("carry_over_tool", f"{ROOT}/tools/carry_over.py")
carry_over_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(carry_over_tool)


def _snapshot(folder):
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = f.read()
    return out


@pytest.fixture
def previous_run(tmp_path):
    """An OUTPUT_DIR holding an earlier run's files (and a stale temporary of a killed write)."""
    out = tmp_path / "previous_run"
    out.mkdir()
    (out / "config.yaml").write_text("earlier run\n")
    (out / "log.txt").write_text("earlier log\n")
    (out / ".model_final.pth.ab12cd_3.tmp").write_bytes(b"half a checkpoint")
    return out


def _bad_files(tmp_path):
    """Bad weights and architecture files, by name."""
    files = {  # key: (file name, content)
        "empty": ("empty", b""),
        "text": ("text", b"these are not weights\n"),
        "binary": ("binary.json", b"\x89PNG\r\n\x1a\n\x00\xff\xfe"),
        "nested": ("nested.json", b"[" * 100000 + b"]" * 100000),
        "list": ("list.json", b"[1, 2, 3]\n"),
    }
    full = tmp_path / "full.pth"
    torch.save({"model": {"w": torch.zeros(1000)}}, full)
    files["truncated"] = ("truncated.pth", full.read_bytes()[:-200])
    paths = {}
    for key, (name, data) in files.items():
        paths[key] = tmp_path / name
        paths[key].write_bytes(data)
    paths["folder"] = tmp_path
    return {k: str(v) for k, v in paths.items()}


SEARCH_CASES = {
    "arch batch 0": (
        ["MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH", "0"],
        r"MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH must be a positive multiple .* got 0",
    ),
    "split fraction": (
        ["MODEL.NATS.SEARCH.ARCH.DATASETS", "()", "MODEL.NATS.SEARCH.SPLIT.FRACTION", "1.5"],
        r"MODEL.NATS.SEARCH.SPLIT.FRACTION must be in \(0, 1\), got 1.5",
    ),
    "warm-up epochs": (
        ["MODEL.NATS.SEARCH.WARMUP_EPOCHS", "2"],
        r"MODEL.NATS.SEARCH.WARMUP_EPOCHS = 2 leaves no architecture step .*EPOCHS = 2",
    ),
    "warm-up iterations": (
        [
            "MODEL.NATS.SEARCH.EPOCHS",
            "0",
            "SOLVER.MAX_ITER",
            "4",
            "MODEL.NATS.SEARCH.WARMUP_ITERS",
            "4",
        ],
        r"MODEL.NATS.SEARCH.WARMUP_ITERS = 4 leaves no architecture step in SOLVER.MAX_ITER = 4",
    ),
    "groups do not divide a width": (
        ["MODEL.NATS.GROUPS.MODE", "channels", "MODEL.NATS.GROUPS.VALUE", "3"],
        r"MODEL.NATS.GROUPS \(MODE='channels', VALUE=3\): res3.0 has 16 output channels",
    ),
    "unregistered train dataset": (
        ["DATASETS.TRAIN", "('tiny_shapes_trian',)"],
        r"DATASETS.TRAIN names 'tiny_shapes_trian', which is not a registered dataset; "
        r"close matches: \['tiny_shapes_train'",
    ),
    "unregistered architecture dataset": (
        ["MODEL.NATS.SEARCH.ARCH.DATASETS", "('coco_2014_valminusminival_x',)"],
        r"MODEL.NATS.SEARCH.ARCH.DATASETS names 'coco_2014_valminusminival_x'",
    ),
    "weights: empty file": (
        ["MODEL.WEIGHTS", "{empty}"],
        r"MODEL.WEIGHTS = \S+empty is an empty file",
    ),
    "weights: not a checkpoint": (
        ["MODEL.WEIGHTS", "{text}"],
        r"MODEL.WEIGHTS = \S+text cannot be read as a checkpoint \(\w+Error",
    ),
    "weights: truncated": (
        ["MODEL.WEIGHTS", "{truncated}"],
        r"MODEL.WEIGHTS = \S+truncated.pth cannot be read as a checkpoint .*: truncated",
    ),
    "weights: folder": (["MODEL.WEIGHTS", "{folder}"], r"MODEL.WEIGHTS = \S+ is a folder"),
}


@pytest.mark.parametrize("case", sorted(SEARCH_CASES))
def test_bad_search_input_is_refused_before_output(tmp_path, previous_run, case):
    opts, message = SEARCH_CASES[case]
    files = _bad_files(tmp_path)
    opts = [o.format(**files) for o in opts]
    before = _snapshot(previous_run)
    with pytest.raises((ValueError, KeyError, FileNotFoundError), match=message):
        search_net.setup(search_args(previous_run, *opts))
    assert _snapshot(previous_run) == before


def _decoded_config(tmp_path, previous_run, **changes):
    cfg = decoded_cfg(tmp_path)
    cfg.OUTPUT_DIR = str(previous_run)
    for key, value in changes.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    path = tmp_path / "decoded.yaml"
    path.write_text(cfg.dump())
    return path


def _architecture_of_depth_101(tmp_path):
    return decoded_cfg(tmp_path, depth=101, seed=3).MODEL.NATS.ARCHITECTURE


TRAIN_CASES = {
    "architecture: folder": (
        "MODEL.NATS.ARCHITECTURE",
        "{folder}",
        r"is a folder, not an architecture",
    ),
    "architecture: binary": (
        "MODEL.NATS.ARCHITECTURE",
        "{binary}",
        r"binary.json is not a text",
    ),
    "architecture: nested": ("MODEL.NATS.ARCHITECTURE", "{nested}", r"nested.json nests JSON"),
    "architecture: not an object": (
        "MODEL.NATS.ARCHITECTURE",
        "{list}",
        r"list.json: the file must hold a JSON object",
    ),
    "architecture of another network": (
        "MODEL.NATS.ARCHITECTURE",
        "{r101}",
        r"arch_101_4_3_False.json: .*res4",
    ),
    "weights: truncated": ("MODEL.WEIGHTS", "{truncated}", r"MODEL.WEIGHTS = \S+truncated.pth"),
    "unregistered test dataset": ("DATASETS.TEST", ("my_val",), r"DATASETS.TEST names 'my_val'"),
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_bad_train_input_is_refused_before_output(tmp_path, previous_run, case):
    key, value, message = TRAIN_CASES[case]
    files = dict(_bad_files(tmp_path), r101=_architecture_of_depth_101(tmp_path))
    value = value.format(**files) if isinstance(value, str) else value
    config_file = _decoded_config(tmp_path, previous_run, **{key: value})
    before = _snapshot(previous_run)
    for eval_only in (False, True):
        with pytest.raises((ValueError, KeyError, FileNotFoundError), match=message):
            train_net.setup(train_args(config_file, eval_only=eval_only))
        assert _snapshot(previous_run) == before


def test_accepted_run_removes_stale_temporaries_only(tmp_path, previous_run):
    (previous_run / ".notes.tmp").write_text("a user's file, not atomic_open's")
    search_net.setup(search_args(previous_run))
    names = os.listdir(previous_run)
    assert ".model_final.pth.ab12cd_3.tmp" not in names and ".notes.tmp" in names


def _register(name, dicts):
    if name in DatasetCatalog.list():
        DatasetCatalog.remove(name)
    DatasetCatalog.register(name, lambda: [dict(d) for d in dicts])
    return name


def _good_record(tmp_path, i=0, bbox=(2.0, 3.0, 10.0, 12.0), mode=BoxMode.XYWH_ABS):
    image = tmp_path / f"img{i}.png"
    image.write_bytes(b"\x89PNG")
    ann = {"bbox": list(bbox), "bbox_mode": mode, "category_id": 0, "iscrowd": 0}
    return {"file_name": str(image), "image_id": i, "height": 64, "width": 64, "annotations": [ann]}


def _bad_datasets(tmp_path):
    good = [_good_record(tmp_path, i) for i in range(3)]
    negative = [
        good[0],
        good[1],
        _good_record(tmp_path, 7, bbox=(30, 5, 20, 40), mode=BoxMode.XYXY_ABS),
    ]
    missing = [good[0], dict(good[1], file_name=str(tmp_path / "gone.png"), image_id=5)]
    nan_box = [good[0], _good_record(tmp_path, 8, bbox=(1.0, float("nan"), 4.0, 4.0))]
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{"images": [')
    if "bad_json" in DatasetCatalog.list():
        DatasetCatalog.remove("bad_json")
        MetadataCatalog.remove("bad_json")
    register_coco_instances("bad_json", {}, str(broken_json), str(tmp_path))
    return {
        "negative width": (
            _register("bad_negative", negative),
            r"record 2 \(image_id 7.*annotation 0: bbox \[30, 5, 20, 40\] \(XYXY_ABS\) "
            r"has negative width",
        ),
        "missing image": (
            _register("bad_missing", missing),
            r"record 1 \(image_id 5.*image file \S+gone.png does not exist",
        ),
        "non-finite box": (_register("bad_nan", nan_box), r"record 1 \(image_id 8.*is not finite"),
        "no images": (_register("bad_empty", []), r"cannot be loaded \(AssertionError: .*empty"),
        "unreadable annotations": (
            "bad_json",
            r"DATASETS.TRAIN \('bad_json',\) cannot be loaded \(JSONDecodeError",
        ),
    }


def test_bad_datasets_are_refused_naming_dataset_and_record(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=2, warmup_iters=0)
    for case, (name, message) in _bad_datasets(tmp_path).items():
        with pytest.raises(DatasetError, match=message) as info:
            load_checked_dataset_dicts(cfg, [name], key="DATASETS.TRAIN")
        assert f"DATASETS.TRAIN ('{name}',)" in str(info.value), case
        assert "\n" not in str(info.value), case  # one line


def test_bad_dataset_stops_search_and_training_before_the_first_step(tmp_path):
    name, message = _bad_datasets(tmp_path)["negative width"]
    cfg = search_cfg(tmp_path / "search", max_iter=2, warmup_iters=0)
    cfg.MODEL.NATS.SEARCH.ARCH.DATASETS = (name,)
    with pytest.raises(DatasetError, match=r"MODEL.NATS.SEARCH.ARCH.DATASETS \('bad_negative',\)"):
        SearchTrainer(cfg)
    cfg = decoded_cfg(tmp_path)
    cfg.DATASETS.TRAIN = (name,)
    with pytest.raises(DatasetError, match=r"DATASETS.TRAIN \('bad_negative',\): record 2"):
        train_net.Trainer(cfg)


def test_zero_size_boxes_are_counted_not_refused(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=2, warmup_iters=0)
    records = [_good_record(tmp_path, 0), _good_record(tmp_path, 1, bbox=(4, 4, 0, 9))]
    dicts = load_checked_dataset_dicts(cfg, [_register("zero_box", records)], key="DATASETS.TRAIN")
    assert len(dicts) == 2  # Detectron2's mapper drops the empty box (filter_empty_instances)


def test_a_full_disk_is_named_whatever_the_writer_raised(tmp_path, monkeypatch):
    target = tmp_path / "model_final.pth"
    target.write_bytes(b"previous")
    monkeypatch.setattr(atomic, "_disk_full", lambda directory: True)
    with pytest.raises(
        OSError, match=r"No space left on the device .* while writing \S+model_final.pth"
    ) as info:
        with atomic_open(target, "wb") as f:
            f.write(b"part")
            raise RuntimeError("PytorchStreamWriter failed writing file data/0")
    assert info.value.errno == errno.ENOSPC
    assert target.read_bytes() == b"previous" and os.listdir(tmp_path) == ["model_final.pth"]
    monkeypatch.setattr(atomic, "_disk_full", lambda directory: False)
    with pytest.raises(RuntimeError, match="other failure"):  # not mistaken for a full disk
        with atomic_open(target, "wb"):
            raise RuntimeError("other failure")


def test_readable_weights_pass(tmp_path, previous_run):
    weights = tmp_path / "ok.pkl"
    with open(weights, "wb") as f:
        pickle.dump({"model": {}, "__author__": "test"}, f)
    cfg = search_net.setup(search_args(previous_run, "MODEL.WEIGHTS", str(weights)))
    assert cfg.MODEL.WEIGHTS == str(weights)
    assert (previous_run / "config.yaml").read_text() != "earlier run\n"  # accepted: set up


def test_tools_refuse_unreadable_files_in_one_line(tmp_path, capsys):
    files = _bad_files(tmp_path)
    output = tmp_path / "decoded_init.pth"
    architecture = decoded_cfg(tmp_path).MODEL.NATS.ARCHITECTURE
    for supernet, arch, message in (
        (
            files["truncated"],
            architecture,
            r"--supernet = \S+truncated.pth cannot be read .*truncated",
        ),
        (files["empty"], architecture, r"--supernet = \S+empty is an empty file"),
        (str(tmp_path / "nope.pth"), architecture, r"--supernet \S+nope.pth does not exist"),
        (files["folder"], architecture, r"--supernet = \S+ is a folder"),
    ):
        with pytest.raises(SystemExit):
            carry_over_tool.main(
                ["--supernet", supernet, "--architecture", arch, "--output", str(output)]
            )
        assert re.search(message, capsys.readouterr().err)
    full = tmp_path / "full.pth"
    with pytest.raises(SystemExit):
        carry_over_tool.main(
            ["--supernet", str(full), "--architecture", files["binary"], "--output", str(output)]
        )
    assert re.search(r"binary.json is not a text", capsys.readouterr().err)
    assert not output.exists()

    config_file = _decoded_config(
        tmp_path, tmp_path / "erf", **{"MODEL.NATS.ARCHITECTURE": files["nested"]}
    )
    with pytest.raises(ValueError, match=r"nested.json nests JSON"):
        visualize_erf.setup(str(config_file), [])
