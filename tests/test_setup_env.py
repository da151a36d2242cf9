"""The set-up script: pins in one place, and clear messages for a bad environment."""

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
