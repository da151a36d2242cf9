#!/usr/bin/env python
"""Write the retraining config of a finished search: its decoded network, matching the search.

The network keys (trunk widths, norm, ``FREEZE_AT``, FPN, class counts, input sizes, pixel
statistics) come from what the search recorded in ``architecture.json`` (or its ``config.yaml``),
the backbone is the decoded builder of the searched supernet, ``MODEL.NATS.ARCHITECTURE`` points at
the file, and the rest (schedule, evaluation datasets) comes from ``--base`` (default: the search's
own ``config.yaml``). Then ``train_net.py --config-file FILE`` runs as is:

    python tools/make_retrain_config.py --search-dir output/my_search --output my_retrain.yaml
    python tools/make_retrain_config.py --search-dir output/my_search --output my_retrain.yaml \
        --base configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from projects.nats.architecture.file_format import ArchitectureError  # noqa: E402
from projects.nats.architecture.retrain_config import retrain_config  # noqa: E402
from projects.nats.atomic import atomic_open  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--search-dir", required=True, help="the search's OUTPUT_DIR")
    parser.add_argument("--output", required=True, help="the config file to write (.yaml)")
    parser.add_argument("--base", help="the config to start from (default: the search's)")
    parser.add_argument(
        "--output-dir", help="OUTPUT_DIR of the retraining (default: <search-dir>_retrain)"
    )
    args = parser.parse_args(argv)
    try:
        cfg = retrain_config(args.search_dir, base=args.base)
    except (FileNotFoundError, ArchitectureError, ValueError) as e:
        parser.error(str(e))
    cfg.OUTPUT_DIR = args.output_dir or os.path.normpath(args.search_dir) + "_retrain"
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with atomic_open(args.output, "w") as f:
        f.write(cfg.dump())
    print(
        f"wrote {args.output}: {cfg.MODEL.BACKBONE.NAME} with {cfg.MODEL.NATS.ARCHITECTURE}; "
        f"retrain with: python train_net.py --config-file {args.output}"
    )


if __name__ == "__main__":
    main()
