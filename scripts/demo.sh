#!/usr/bin/env bash
# Set up .venv if needed, then run the main job on CPU on the test bed (scripts/demo.py --help):
# search -> decode -> retrain -> evaluate -> ERF maps (outputs under output/testbed/).
set -euo pipefail
cd "$(dirname "$0")/.."
"${NATS_PYTHON:-python3}" scripts/setup_env.py
exec .venv/bin/python scripts/demo.py "$@"
