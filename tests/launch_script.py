"""Runs a script (``$NATS_LAUNCH_SCRIPT``: search_net.py, train_net.py) as ``__main__`` after
registering the test suite's tiny datasets, in the launching process and in every process its
``launch`` spawns (they import this file again as their main module, which then defines the
script's functions without running its ``__main__`` block). Used as
``python tests/launch_script.py --num-gpus 2 --config-file ...``.
"""

import os
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(TESTS), TESTS]

from common import register_tiny_shapes  # noqa: E402

register_tiny_shapes()
SCRIPT = os.environ["NATS_LAUNCH_SCRIPT"]
sys.argv[0] = SCRIPT
with open(SCRIPT) as f:
    exec(compile(f.read(), SCRIPT, "exec"))
