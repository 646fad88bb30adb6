"""Encoding throughput, JPEG to pooled features, with and without decode workers (issue 17).

Encodes ``--n`` of the scale benchmark's rendered galaxies (64 px JPEGs, rendered here if
missing) with the shipped encoder into a fresh feature store, once per ``--workers`` value, on
CUDA when present (JPEGs then decode on the device) and on the CPU otherwise.

Usage::

    python benchmarks/encode_throughput.py --n 2000 --workers 0 2
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import torch

from zoobot.datasets.simulated import make_catalog
from zoobot.feature_store import FeatureStore, encode_to_store
from zoobot.finetune import FinetuneableZoobotTree

SIMULATION_SEED = 17


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="galaxies encoded per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="decode workers")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default=None, help="e.g. bf16-mixed")
    parser.add_argument("--work-dir", default="/tmp/zoobot_cycle_scale", help="rendered images")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sims = Path(args.work_dir) / f"sims_seed{SIMULATION_SEED}_n{args.n}_64px"
    catalog = make_catalog(args.n, 64, SIMULATION_SEED, sims, workers=2)
    catalog["id_str"] = [str(i) for i in range(len(catalog))]
    model = FinetuneableZoobotTree(schema="decals_dr5", name="zoobot-sim-atto", image_size=64)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    results = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as root:
            store = FeatureStore(root, f"w{workers}")
            start = time.perf_counter()
            encode_to_store(
                model.encoder,
                catalog,
                store,
                64,
                batch_size=args.batch_size,
                num_workers=workers,
                device=device,
                precision=args.precision,
            )
            seconds = time.perf_counter() - start
        results[f"workers_{workers}_galaxies_per_s"] = round(len(catalog) / seconds)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
