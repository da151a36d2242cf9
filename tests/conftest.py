"""Test-suite set-up: generated data goes to a per-session folder unless NATS_DATA_CACHE is set."""

import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("NATS_DATA_CACHE", os.path.join(tempfile.gettempdir(), "nats_d2_test_data"))
