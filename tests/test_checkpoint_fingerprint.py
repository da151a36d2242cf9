"""Checkpoints record what they were trained for; one that does not fit the model is refused."""

import pickle

import pytest
import torch
from common import tiny_cfg
from detectron2.modeling import build_backbone
from test_checkpoint import _c2_name
from test_decoded_backbone import decoded_cfg
from test_search_trainer import build, search_cfg

import train_net
from projects.nats.architecture import (
    decode_architecture_from_cfg,
    load_architecture,
    save_architecture,
    save_carried_over,
)
from projects.nats.checkpoint import NATSCheckpointer
from projects.nats.fingerprint import (
    CHECKPOINT_KEY,
    CheckpointMismatchError,
    architecture_fingerprint,
    describe_model,
)
from projects.nats.modeling import mixed_ops


def supernet_cfg(tmp_path, *, candidates=None):
    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = "count", 4
    if candidates is not None:
        cfg.MODEL.NATS.CANDIDATES.RES3 = candidates
    return cfg


def save(model, folder, name="model_final", *, strip=None):
    """Save through NATSCheckpointer; ``strip=True`` drops the description (an older file)."""
    NATSCheckpointer(model, str(folder)).save(name)
    path = str(folder / f"{name}.pth")
    if strip:
        data = torch.load(path, weights_only=False)
        del data[CHECKPOINT_KEY]
        torch.save(data, path)
    return path


def test_checkpoints_record_what_the_model_is(tmp_path):
    supernet = build_backbone(supernet_cfg(tmp_path))
    desc = torch.load(save(supernet, tmp_path), weights_only=True)[CHECKPOINT_KEY]
    assert desc["kind"] == "supernet"
    assert desc["search_space"]["res3.0"] == {
        "candidates": [list(d) for d in mixed_ops(supernet)[0][1].candidates],
        "num_groups": 4,
    }
    cfg = decoded_cfg(tmp_path, seed=1)
    desc = describe_model(build_backbone(cfg))
    arch = load_architecture(cfg.MODEL.NATS.ARCHITECTURE)
    assert desc["kind"] == "decoded" and desc["fingerprint"] == architecture_fingerprint(arch)
    assert desc["architecture_file"] == cfg.MODEL.NATS.ARCHITECTURE
    arch.meta = {"iteration": 7}  # meta is not what the network is
    assert architecture_fingerprint(arch) == desc["fingerprint"]
    assert describe_model(build_backbone(tiny_cfg(tmp_path))) == {"version": 1, "kind": "stock"}


@pytest.mark.parametrize("described", [True, False])
def test_supernet_checkpoint_into_decoded_network_refused(tmp_path, described):
    path = save(build_backbone(supernet_cfg(tmp_path)), tmp_path, strip=not described)
    cfg = decoded_cfg(tmp_path)
    model = train_net.Trainer.build_model(cfg)  # as --eval-only builds and loads it
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as e:
        NATSCheckpointer(model, cfg.OUTPUT_DIR).resume_or_load(path, resume=False)
    msg = str(e.value)
    assert f"checkpoint {path} was trained for a supernet" in msg
    assert "res3: [1x1, " in msg or "replicas" in msg  # its search space
    assert "but this model is the decoded network of architecture sha256:" in msg
    assert cfg.MODEL.NATS.ARCHITECTURE in msg and "tools/carry_over.py --supernet " + path in msg
    assert ("found by its keys" in msg) != described
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(CheckpointMismatchError, match="this model is a stock network"):
        NATSCheckpointer(build_backbone(tiny_cfg(tmp_path))).load(path)


def test_decoded_checkpoint_loads_only_into_its_architecture(tmp_path):
    cfg_x, cfg_y = decoded_cfg(tmp_path, seed=1), decoded_cfg(tmp_path, seed=2)
    torch.manual_seed(0)
    x = build_backbone(cfg_x)
    path = save(x, tmp_path)
    again = build_backbone(cfg_x)
    NATSCheckpointer(again).load(path)  # decoded X -> decoded X
    assert all(torch.equal(again.state_dict()[k], v) for k, v in x.state_dict().items())

    with pytest.raises(CheckpointMismatchError) as e:
        NATSCheckpointer(build_backbone(cfg_y)).load(path)
    msg = str(e.value)
    assert f"checkpoint {path} was trained for the decoded network" in msg
    assert cfg_x.MODEL.NATS.ARCHITECTURE in msg and cfg_y.MODEL.NATS.ARCHITECTURE in msg
    assert "Blocks that differ: res3." in msg and "MODEL.NATS.ARCHITECTURE to" in msg
    for other in (tiny_cfg(tmp_path), supernet_cfg(tmp_path)):
        with pytest.raises(CheckpointMismatchError, match="into the decoded network of its arch"):
            NATSCheckpointer(build_backbone(other)).load(path)


def test_resume_with_a_changed_search_space_refused(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=2, warmup_iters=1)
    trainer = build(cfg)
    trainer.checkpointer.save("model_0000000")  # what a killed search leaves to resume from
    original = [list(d) for d in cfg.MODEL.NATS.CANDIDATES.RES3]
    trainer = build(cfg)
    trainer.resume_or_load(resume=True)  # the same search space resumes
    assert trainer.start_iter == 1

    for changed in (original[::-1], [[1, 1], [5, 5]] + original[2:]):
        cfg.MODEL.NATS.CANDIDATES.RES3 = changed
        with pytest.raises(CheckpointMismatchError) as e:
            build(cfg).resume_or_load(resume=True)
        msg = str(e.value)
        assert str(tmp_path / "model_0000000.pth") in msg and "search spaces differ" in msg
        names = ", ".join(f"{a}x{b}" for a, b in original)
        assert f"res3.0, res3.1, res3.2, res3.3: checkpoint [{names}] x 4 groups, model [" in msg
        assert ", ".join(f"{a}x{b}" for a, b in changed) in msg


def test_older_supernet_checkpoint_with_other_candidates_refused(tmp_path):
    path = save(build_backbone(supernet_cfg(tmp_path)), tmp_path, strip=True)
    NATSCheckpointer(build_backbone(supernet_cfg(tmp_path))).load(path)  # same space: loads
    other = supernet_cfg(tmp_path, candidates=[[1, 1], [5, 5], [6, 6], [7, 7]])
    blocks = "res3.0, res3.1, res3.2, res3.3"
    with pytest.raises(CheckpointMismatchError, match=f"{blocks}: checkpoint 5 candidates"):
        NATSCheckpointer(build_backbone(other)).load(path)


def test_carried_over_checkpoint_fits_its_decoded_network_only(tmp_path):
    cfg = supernet_cfg(tmp_path)
    supernet = build_backbone(cfg)
    with torch.no_grad():
        for _, op in mixed_ops(supernet):
            op.alpha.normal_()
    arch_path = str(tmp_path / "architecture.json")
    save_architecture(decode_architecture_from_cfg(supernet, cfg), arch_path)
    supernet_path = save(supernet, tmp_path)
    out = save_carried_over(supernet_path, arch_path, str(tmp_path / "decoded_init.pth"))
    decoded = cfg.clone()
    decoded.MODEL.BACKBONE.NAME = "build_nats_resnet_fpn_backbone"
    decoded.MODEL.NATS.ARCHITECTURE = arch_path
    NATSCheckpointer(build_backbone(decoded)).load(out)
    with pytest.raises(CheckpointMismatchError, match=f"trained for .* \\({arch_path}\\)"):
        NATSCheckpointer(build_backbone(decoded_cfg(tmp_path, seed=3))).load(out)


def test_stock_and_imagenet_checkpoints_load_everywhere(tmp_path):
    torch.manual_seed(0)
    stock = build_backbone(tiny_cfg(tmp_path))
    stock_path = save(stock, tmp_path, "stock")
    blobs = {
        _c2_name(k): v.numpy()
        for k, v in stock.bottom_up.state_dict().items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }
    pkl = tmp_path / "R-tiny.pkl"
    pkl.write_bytes(pickle.dumps({"blobs": blobs}))
    weight = stock.bottom_up.res4[1].conv2.weight
    for cfg in (decoded_cfg(tmp_path), supernet_cfg(tmp_path), tiny_cfg(tmp_path)):
        for path in (stock_path, str(pkl)):
            model = build_backbone(cfg)
            NATSCheckpointer(model).load(path)
            assert torch.equal(model.bottom_up.res4[1].conv2.weight, weight), (cfg, path)


def test_unknown_description_refused(tmp_path):
    model = build_backbone(tiny_cfg(tmp_path))
    path = save(model, tmp_path)
    data = torch.load(path, weights_only=False)
    data[CHECKPOINT_KEY] = {"version": 2, "kind": "hypernet"}
    torch.save(data, path)
    with pytest.raises(ValueError, match=f"checkpoint {path}: its 'nats' entry .* kind in"):
        NATSCheckpointer(model).load(path)


@pytest.mark.parametrize("strip", [False, True], ids=["described", "older"])
def test_shared_and_separate_weights_supernets_do_not_swap_checkpoints(tmp_path, strip):
    separate = supernet_cfg(tmp_path)
    shared = supernet_cfg(tmp_path)
    shared.MODEL.NATS.SEARCH.SHARED_WEIGHTS = True
    path = save(build_backbone(separate), tmp_path, strip=strip)
    with pytest.raises(CheckpointMismatchError, match=r"res3\.0.*: checkpoint .*, model ") as e:
        NATSCheckpointer(build_backbone(shared)).load(path)
    # the model's side: its one weight (older files are compared by their replica names)
    assert ("model 5 candidates (replicas [])" if strip else "one shared weight") in str(e.value)
    path = save(build_backbone(shared), tmp_path / "shared", strip=strip)
    NATSCheckpointer(build_backbone(shared)).load(path)  # its own kind loads
    with pytest.raises(CheckpointMismatchError, match="res3.0"):
        NATSCheckpointer(build_backbone(separate)).load(path)
