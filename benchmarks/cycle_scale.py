"""One cycle's scoring, selection and persistence over a pool of N galaxies, from cached features.

Issue 17's scale benchmark. ``--rendered`` simulated galaxies (default 20,000) are rendered at
64 px and encoded once by the shipped encoder (``zoobot-sim-atto``) into a feature store: those
features are measured. A pool store of ``--pool`` subjects is then built from them: subject i gets
measured galaxy ``i mod rendered``'s features plus Gaussian noise (``--noise`` times each
feature's spread), and the output says how many pool galaxies reuse features that way. The timed
part is one cycle after the encoder: an ensemble of M = 3 Tree heads on the shipped encoder, each
sampled T = 5 times (15 posterior samples), streams the pool store through its heads, writes the
predictions file (float16 Parquet), selects the batch and records it with the file's pointer in a
SQLite database, then applies retention. The heads are freshly initialised (their training is not
part of a scoring cycle's cost).

The last line is ``pool=N seconds=S peak_rss_gb=M``: S is the cycle's wall time (scoring,
selection, persistence), M the process's peak resident memory over the whole run.

Usage::

    python benchmarks/cycle_scale.py --pool 1000000
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from prioritiser.pool_scoring import (
    score_pool_features,
    selected_predictions,
    update_feature_stores,
)
from prioritiser.prediction_files import (
    PredictionWriter,
    prediction_path,
    prune_predictions,
    selected_rows,
)
from prioritiser.records import Cycle, ModelVersion, Prediction, create_tables
from prioritiser.selection import select_batch
from zoobot.datasets.simulated import make_catalog
from zoobot.feature_store import RECORD_BATCH_ROWS, FeatureStore
from zoobot.finetune import FinetuneableZoobotTree

logger = logging.getLogger("cycle_scale")

SIMULATION_SEED = 17
ENCODER = "zoobot-sim-atto"


def peak_rss_gb() -> float:
    """This process's peak resident memory in GB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def build_models(n_models: int, size: int) -> list[FinetuneableZoobotTree]:
    """M Tree models on the shipped encoder, heads seeded 0..M-1."""
    models = []
    for member in range(n_models):
        torch.manual_seed(member)
        model = FinetuneableZoobotTree(schema="decals_dr5", name=ENCODER, image_size=size)
        models.append(model.eval())
    return models


def measured_store(args: argparse.Namespace, models: list) -> tuple[FeatureStore, dict]:
    """Render and encode ``--rendered`` galaxies once (both cached under ``--work-dir``)."""
    work = Path(args.work_dir)
    sims = work / f"sims_seed{SIMULATION_SEED}_n{args.rendered}_{args.size}px"
    start = time.perf_counter()
    catalog = make_catalog(args.rendered, args.size, SIMULATION_SEED, sims, workers=args.workers)
    catalog["id_str"] = [str(i) for i in range(1, len(catalog) + 1)]
    rendered_s = time.perf_counter() - start
    start = time.perf_counter()
    (store, *_) = update_feature_stores(
        models[:1], catalog, work / "features", batch_size=128, num_workers=args.decode_workers
    )
    encode_s = time.perf_counter() - start
    return store, {
        "render_or_cache_s": round(rendered_s, 1),
        "encode_or_cache_s": round(encode_s, 1),
    }


def pool_store(args: argparse.Namespace, measured: FeatureStore) -> FeatureStore:
    """N pool subjects: measured features reused cyclically with noise, appended in segments."""
    key = f"{measured.key}-n{args.pool}-noise{round(args.noise * 1000)}e-3"
    store = FeatureStore(Path(args.work_dir) / "pool_features", key)
    if len(store.subject_ids()) == args.pool:
        return store
    for stale in store.segments():
        stale.unlink()
    features = np.concatenate([f for _, f in measured.iter_chunks()])  # [rendered, n_features]
    spread = features.std(axis=0) * args.noise
    rng = np.random.default_rng(SIMULATION_SEED)
    segment = 4 * RECORD_BATCH_ROWS
    for start in range(0, args.pool, segment):
        ids = np.arange(start, min(start + segment, args.pool), dtype=np.int64)
        noise = rng.standard_normal((len(ids), features.shape[1]), dtype=np.float32) * spread
        noise[ids < len(features)] = 0.0  # the first ``rendered`` subjects are the measured ones
        store.append(ids + 1, features[ids % len(features)] + noise)
        logger.info("pool store %d/%d", ids[-1] + 1, args.pool)
    return store


def run_cycle(args: argparse.Namespace, models: list, store: FeatureStore) -> dict:
    """Score, select, persist, prune: the timed part."""
    work = Path(args.work_dir)
    engine = create_engine(f"sqlite:///{work / 'cycle_scale.sqlite'}")
    create_tables(engine)
    with Session(engine) as session, session.begin():
        cycle = Cycle(kind="retrain", status="running", stage="gated", counts={}, metrics={})
        session.add(cycle)
        session.flush()
        version = ModelVersion(
            cycle_id=cycle.id,
            checkpoints=[],
            n_labelled=0,
            validation_loss=0.0,
            deployed=True,
            status="accepted",
        )
        session.add(version)
        session.flush()
        cycle_id, version_id = cycle.id, version.id
    path = prediction_path(work / "predictions", version_id, cycle_id)
    start = time.perf_counter()
    pool_ids = np.arange(1, args.pool + 1, dtype=np.int64)
    with PredictionWriter(path, models[0].schema) as writer:
        scored = score_pool_features(
            models, [store] * len(models), pool_ids, writer, n_samples=args.samples, seed=cycle_id
        )
    scored_s = time.perf_counter() - start
    picks = select_batch(scored.scores, args.push_size, np.random.default_rng(cycle_id))
    chosen = selected_predictions(scored, picks, path)
    with Session(engine) as session, session.begin():
        session.execute(insert(Prediction), selected_rows(chosen, version_id, cycle_id))
        stored = session.get(Cycle, cycle_id)
        stored.metrics = {"predictions_file": str(path)}
        stored.stage = "push"
    prune_predictions(work / "predictions", keep_last=args.keep_versions)
    seconds = time.perf_counter() - start
    return {
        "scoring_s": round(scored_s, 1),
        "cycle_s": round(seconds, 1),
        "galaxies_per_s": round(args.pool / scored_s),
        "predictions_mb": round(path.stat().st_size / 1e6, 1),
        "selected": len(chosen),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, required=True, help="pool subjects (N)")
    parser.add_argument("--rendered", type=int, default=20_000, help="galaxies rendered, encoded")
    parser.add_argument("--size", type=int, default=64, help="image side (the encoder's 64 px)")
    parser.add_argument("--models", type=int, default=3, help="ensemble members (M)")
    parser.add_argument("--samples", type=int, default=5, help="MC-dropout passes (T)")
    parser.add_argument("--noise", type=float, default=0.05, help="noise on reused features")
    parser.add_argument("--push-size", type=int, default=500, help="galaxies selected")
    parser.add_argument("--keep-versions", type=int, default=3, help="retention: last versions")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--decode-workers", type=int, default=2, help="decoding processes")
    parser.add_argument("--work-dir", default="/tmp/zoobot_cycle_scale", help="caches, outputs")
    args = parser.parse_args(argv)
    for name in ("pool", "rendered", "models", "samples", "push_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    models = build_models(args.models, args.size)
    measured, setup = measured_store(args, models)
    start = time.perf_counter()
    store = pool_store(args, measured)
    setup["pool_store_s"] = round(time.perf_counter() - start, 1)
    setup["peak_rss_gb_before_cycle"] = round(peak_rss_gb(), 2)
    result = run_cycle(args, models, store)
    summary = {
        "pool": args.pool,
        "measured_galaxies": args.rendered,
        "reused_with_noise": max(0, args.pool - args.rendered),
        "ensemble": f"{args.models} x T={args.samples}",
        "torch_threads": torch.get_num_threads(),
        **setup,
        **result,
    }
    print(json.dumps(summary))
    print(f"pool={args.pool} seconds={result['cycle_s']} peak_rss_gb={peak_rss_gb():.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
