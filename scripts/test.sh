#!/usr/bin/env bash
# Set up .venv if needed (scripts/setup_env.py), then run the test suite on CPU.
# NATS_VENV / NATS_DETECTRON2 (see scripts/setup_env.py) test another venv or Detectron2.
set -euo pipefail
cd "$(dirname "$0")/.."
"${NATS_PYTHON:-python3}" scripts/setup_env.py
exec "${NATS_VENV:-.venv}/bin/python" -m pytest "$@"
