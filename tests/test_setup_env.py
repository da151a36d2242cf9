"""The set-up script: pins in one place, and clear messages for a bad environment."""

import glob
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import setup_env  # noqa: E402


@pytest.mark.parametrize("version", [(3, 9), (3, 13), (2, 7)])
def test_unsupported_python_is_refused(version):
    with pytest.raises(setup_env.SetupError, match=r"3\.10 to 3\.12"):
        setup_env.check_python(version)


def test_supported_python_passes():
    for version in [(3, 10), (3, 11), (3, 12)]:
        setup_env.check_python(version)


def test_lock_pins_every_package_exactly():
    pins, torch_pins, (spec, sha) = setup_env.read_lock()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", p) for p in pins + torch_pins)
    names = {p.split("==")[0].lower() for p in pins}
    assert {"fvcore", "iopath", "pycocotools", "pillow", "setuptools", "pytest"} <= names
    assert [p for p in pins if p.lower().startswith("pillow==")][0] < "pillow==10"
    assert {"torch", "torchvision"} <= {p.split("==")[0] for p in torch_pins}
    assert spec == "pb1-detectron2==0.6" and re.fullmatch(r"[0-9a-f]{64}", sha)


def test_no_registry_and_no_offline_folder_says_so(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    with pytest.raises(
        setup_env.SetupError, match="No package registry reachable.*NATS_OFFLINE_DIR"
    ):
        setup_env.check_registry()


def test_missing_offline_folder_stops_before_touching_venv(tmp_path):
    marker = os.path.getmtime(setup_env.STAMP)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "setup_env.py")],
        env=dict(os.environ, NATS_OFFLINE_DIR=os.fspath(tmp_path / "missing")),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "is not a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert os.path.getmtime(setup_env.STAMP) == marker


def _fake_detectron2(root, requires):
    (root / "detectron2" / "layers" / "csrc").mkdir(parents=True)
    (root / "detectron2" / "__init__.py").write_text('__version__ = "0.7"\n')
    (root / "detectron2" / "layers" / "__init__.py").write_text("")
    (root / "detectron2" / "layers" / "csrc" / "vision.cpp").write_text("// C++\n")
    (root / "detectron2" / "model_zoo").mkdir()
    (root / "configs" / "COCO-Detection").mkdir(parents=True)
    (root / "configs" / "COCO-Detection" / "a.yaml").write_text("MODEL: {}\n")
    (root / "setup.py").write_text(
        f"from setuptools import setup\nsetup(install_requires={requires!r})\n"
    )


@pytest.mark.parametrize("packed", [False, True])
def test_python_only_install_of_a_detectron2_source(tmp_path, packed):
    import tarfile

    import detectron2_source

    _fake_detectron2(tmp_path / "src" / "detectron2-abc", [])
    source = tmp_path / "src" / "detectron2-abc"
    if packed:  # a tarball with one top folder, as git archive and GitHub make them
        source = tmp_path / "d2.tar.gz"
        with tarfile.open(source, "w:gz") as tar:
            tar.add(tmp_path / "src" / "detectron2-abc", arcname="detectron2-abc")
    purelib = tmp_path / "site"
    with detectron2_source.open_source(str(source)) as root:
        detectron2_source.install_python_sources(root, str(purelib), summary="test")
    assert (purelib / "detectron2" / "layers" / "__init__.py").exists()
    assert not (purelib / "detectron2" / "layers" / "csrc").exists()
    assert (purelib / "detectron2" / "model_zoo" / "configs" / "COCO-Detection" / "a.yaml").exists()
    record = (purelib / "detectron2-0.7.dist-info" / "RECORD").read_text()
    assert "detectron2/__init__.py" in record and "csrc" not in record


def test_a_detectron2_source_gets_the_pins_it_asks_for(tmp_path):
    import detectron2_source

    lock = os.path.join(ROOT, "requirements", "lock.txt")
    overlay = os.path.join(ROOT, "requirements", "overlay-detectron2-main.txt")
    _fake_detectron2(tmp_path / "a", ["fvcore>=0.1.5,<0.1.6", "Pillow>=7.1", "tqdm>4.29.0"])
    assert detectron2_source.resolve(str(tmp_path / "a"), lock, overlay) == []  # v0.6-like
    _fake_detectron2(tmp_path / "b", ["omegaconf>=2.1,<2.4", "hydra-core>=1.1", "black"])
    pins = detectron2_source.resolve(str(tmp_path / "b"), lock, overlay)
    assert {"omegaconf==2.3.1", "hydra-core==1.3.8"} <= set(pins)  # main's
    _fake_detectron2(tmp_path / "c", ["omegaconf>=2.5", "dataclasses; python_version<'3.7'"])
    with pytest.raises(detectron2_source.SourceError, match=r"'omegaconf>=2.5'.*overlay"):
        detectron2_source.resolve(str(tmp_path / "c"), lock, overlay)


def test_the_shared_detectron2_main_resolves_to_the_overlay():
    import detectron2_source

    tarballs = glob.glob(os.path.join(ROOT, "..", "shared", "detectron2", "*.tar.gz"))
    if not tarballs:
        if os.environ.get("CI") == "true":  # .ci/run requires it there too: never skip in CI
            pytest.fail("CI: no ../shared/detectron2/*.tar.gz beside this clone")
        pytest.skip("no ../shared/detectron2/*.tar.gz beside this clone (CI has it)")
    lock = os.path.join(ROOT, "requirements", "lock.txt")
    overlay = os.path.join(ROOT, "requirements", "overlay-detectron2-main.txt")
    with detectron2_source.open_source(tarballs[0]) as root:
        assert "omegaconf>=2.1,<2.4" in detectron2_source.install_requires(root)
        assert "omegaconf==2.3.1" in detectron2_source.resolve(root, lock, overlay)
