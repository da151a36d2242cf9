#!/usr/bin/env python
"""Carry a search's supernet weights over to its decoded network, for fine-tuning from the search.

Each channel group of a searched conv takes the weights of the replica its argmax chose
(``projects/nats/architecture/carry_over.py``); the result loads as ``MODEL.WEIGHTS`` of the
decoded network's config.

    python tools/carry_over.py --supernet output/nats_search/.../model_final.pth \
        --architecture output/nats_search/.../architecture.json \
        --output output/nats_search/.../decoded_init.pth
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from projects.nats.architecture import load_architecture, save_carried_over  # noqa: E402
from projects.nats.preflight import check_weights_readable  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", required=True, help="supernet checkpoint (.pth)")
    parser.add_argument("--architecture", required=True, help="its architecture.json")
    parser.add_argument("--output", required=True, help="decoded checkpoint to write (.pth)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.supernet) and not os.path.isdir(args.supernet):
        parser.error(f"--supernet {args.supernet} does not exist")
    try:  # one line naming the file, before anything is written
        check_weights_readable(args.supernet, key="--supernet")
        load_architecture(args.architecture)
    except ValueError as e:
        parser.error(str(e))
    print(f"wrote {save_carried_over(args.supernet, args.architecture, args.output)}")


if __name__ == "__main__":
    main()
