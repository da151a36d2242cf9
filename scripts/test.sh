#!/usr/bin/env bash
# Set up .venv if needed (scripts/setup_env.py), then run the test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
"${NATS_PYTHON:-python3}" scripts/setup_env.py
exec .venv/bin/python -m pytest "$@"
