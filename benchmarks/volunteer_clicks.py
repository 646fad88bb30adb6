"""Volunteer clicks each arm needs to reach Galaxy Zoo's quality, on a simulated survey.

Run from the repository root::

    PYTHONPATH=$PWD python benchmarks/volunteer_clicks.py            # ~20 min on 2 CPU cores
    PYTHONPATH=$PWD python benchmarks/volunteer_clicks.py --quick    # smoke test, ~1 min

Per seed: a survey of ``--n`` simulated galaxies (``zoobot.datasets.simulated``), each with its own
crowd answer fractions (Dirichlet(kappa x true probabilities), the target every arm is scored
against), a previous survey of ``--pretrain`` galaxies with 40 votes each from the same crowd
that the model starts from, and a persistent crowd of ``--volunteers`` (good, careless,
spammers, artifact-happy; ``zoobot.datasets.simulated.crowd``). The model is
``click_model``'s stand-in (why: see there).
Arms (``click_stream.ARMS``):

- ``random_40`` (a) Galaxy Zoo's rule: random order, retire at 40 votes;
- ``mi_40`` (b) today's engine: BALD priority from the model, retire at 40;
- ``kade`` (c) KaDE-like: the model retires galaxies whose smooth-or-featured probability passes
  ``--kade-threshold``; the rest in random order, retire at 40;
- ``swap`` (d) SWAP-like: skill-weighted votes, a flat (Jeffreys) prior, posterior retirement,
  random order;
- ``combined`` (e) model prior + skill + information-based retirement + priority by the
  information of the next click.

Every galaxy, voted or not, is scored: an arm's catalogue uses its votes where a question has any
and the model elsewhere ((e): the combined posterior everywhere). Writes
``docs/volunteer_clicks.json`` (per arm ``clicks_to_match`` of (a)'s final NLL, whole tree and
smooth-or-featured; seeds; curves) and ``docs/volunteer_clicks.png``; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from click_model import stand_in_features
from click_stream import ARMS, ArmRun, Protocol, Survey, one_hot

from prioritiser.retirement import RetirementRule
from zoobot.datasets.simulated import answer_probabilities, draw_truths, perturb_probabilities
from zoobot.datasets.simulated.crowd import Crowd, crowd_classify, make_crowd
from zoobot.schemas import decals_dr5_schema

logger = logging.getLogger("volunteer_clicks")
SCHEMA = decals_dr5_schema
TARGETS = {"whole_tree": "nll_tree", "smooth-or-featured": "nll_smooth"}


def make_survey(args: argparse.Namespace, seed: int) -> tuple[Survey, Crowd]:
    """Simulated survey, crowd, previous survey (40 votes each, same crowd), stand-in features."""
    rng = np.random.default_rng(10_000 + seed)
    truth = answer_probabilities(draw_truths(args.n + args.pretrain, 10_000 + seed), SCHEMA)
    crowd_fractions = perturb_probabilities(truth, rng, args.kappa, SCHEMA)
    features = stand_in_features(truth, args.feature_noise, rng, SCHEMA)
    crowd = make_crowd(args.volunteers, rng, SCHEMA)
    galaxy = np.repeat(np.arange(args.n, args.n + args.pretrain), 40)
    volunteer = rng.integers(args.volunteers, size=galaxy.size)
    said = crowd_classify(crowd_fractions[galaxy], volunteer, crowd, rng, SCHEMA)
    counts = np.zeros((args.pretrain, len(SCHEMA.label_cols)))
    np.add.at(counts, galaxy - args.n, one_hot(said, SCHEMA))
    survey = Survey(
        fractions=crowd_fractions[: args.n],
        features=features[: args.n],
        pretrain_features=features[args.n :],
        pretrain_counts=counts,
        pretrain_votes=(galaxy - args.n, volunteer, said),
    )
    return survey, crowd


def clicks_to_reach(clicks: np.ndarray, curve: np.ndarray, target: float) -> float | None:
    """First click count where the curve is at or below target (linear between points)."""
    below = np.flatnonzero(curve <= target)
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(clicks[0])
    x0, x1, y0, y1 = clicks[i - 1], clicks[i], curve[i - 1], curve[i]
    return float(x0 + (x1 - x0) * (y0 - target) / (y0 - y1))


def summarise(clicks: np.ndarray, curves: dict[str, dict[str, np.ndarray]]) -> dict:
    """Per arm: clicks to reach random_40's final NLL, factor against random_40, final values.

    An arm already there before its first click gets the factor against the first checkpoint,
    marked as a lower bound.
    """
    result = {}
    for arm, metrics in curves.items():
        entry: dict = {"clicks_to_match": {}, "factor_vs_random_40": {}, "lower_bound": {}}
        for name, key in TARGETS.items():
            target = curves["random_40"][key][-1]
            reference = clicks_to_reach(clicks, curves["random_40"][key], target)
            needed = clicks_to_reach(clicks, metrics[key], target)
            entry["clicks_to_match"][name] = None if needed is None else round(needed)
            entry["lower_bound"][name] = needed == 0.0
            entry["factor_vs_random_40"][name] = (
                None if needed is None else round(reference / max(needed, clicks[1]), 2)
            )
        entry["final"] = {k: round(float(v[-1]), 4) for k, v in metrics.items()}
        result[arm] = entry
    return result


def table(summary: dict) -> str:
    """Markdown table of the summary."""
    rows = [
        "| arm | clicks to match (a), whole tree | factor | smooth-or-featured | factor | "
        "final NLL tree | final NLL s-o-f | final acc tree | final acc s-o-f | retired |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, e in summary.items():
        c, f, fin = e["clicks_to_match"], dict(e["factor_vs_random_40"]), e["final"]
        for name, bound in e["lower_bound"].items():
            f[name] = f">= {f[name]}" if bound else f[name]
        cells = [
            arm,
            c["whole_tree"],
            f["whole_tree"],
            c["smooth-or-featured"],
            f["smooth-or-featured"],
            fin["nll_tree"],
            fin["nll_smooth"],
            fin["accuracy_tree"],
            fin["accuracy_smooth"],
            fin["retired"],
        ]
        rows.append("| " + " | ".join("not reached" if x is None else str(x) for x in cells) + " |")
    return "\n".join(rows)


def plot(clicks: np.ndarray, curves: dict, path: Path) -> None:
    """NLL curves (mean over seeds), whole tree and smooth-or-featured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (name, key) in zip(axes, TARGETS.items(), strict=True):
        for arm, metrics in curves.items():
            ax.plot(clicks, metrics[key], label=arm)
        ax.axhline(curves["random_40"][key][-1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("volunteer clicks")
        ax.set_ylabel("NLL per galaxy (nats)")
        ax.set_title(name)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def protocol(args: argparse.Namespace) -> Protocol:
    """The arms' shared protocol from the flags."""
    rule = RetirementRule(
        min_votes=args.min_votes,
        max_votes=40,
        information_threshold=args.information_threshold,
        decided_z=args.decided_z,
        control_share=args.control_share,
    )
    swap_rule = RetirementRule(min_votes=args.min_votes, max_votes=40, decided_z=args.decided_z)
    return Protocol(
        budget=args.budget,
        window=args.window,
        retrain_every=args.retrain_every,
        eval_every=args.eval_every,
        em_every=args.em_every,
        kade_threshold=args.kade_threshold,
        reweight_previous=args.reweight_previous,
        rule=rule,
        swap_rule=swap_rule,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Flags; ``--quick`` shrinks everything for a smoke test."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--n", type=int, default=10_000, help="galaxies in the survey")
    add("--pretrain", type=int, default=2_000, help="previous-survey galaxies (40 votes each)")
    add("--budget", type=int, default=100_000, help="clicks per arm")
    add("--volunteers", type=int, default=2_000)
    add("--seeds", type=int, nargs="+", default=[0, 1, 2])
    add("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    add("--kappa", type=float, default=10.0, help="crowd over-dispersion (simulator default)")
    add("--feature-noise", type=float, default=1.0, help="stand-in feature noise sd")
    add("--window", type=int, default=1_000, help="clicks per sync")
    add("--retrain-every", type=int, default=10_000)
    add("--eval-every", type=int, default=1_000)
    add("--em-every", type=int, default=5_000, help="clicks between full skill re-estimates")
    add("--min-votes", type=int, default=3)
    add("--information-threshold", type=float, default=0.02)
    add("--decided-z", type=float, default=2.0)
    add("--control-share", type=float, default=0.0)
    add("--kade-threshold", type=float, default=0.8)
    add(
        "--reweight-previous",
        action="store_true",
        help="skill arms also learn skills from, and skill-weight, the previous survey's votes",
    )
    add("--out-dir", default="docs")
    add("--quick", action="store_true", help="tiny run for tests")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.pretrain, args.budget, args.volunteers = 400, 150, 2_000, 200
        args.seeds, args.window, args.retrain_every = args.seeds[:1], 250, 1_000
        args.eval_every, args.em_every = 500, 500
    for name in ("retrain_every", "eval_every", "em_every", "budget"):
        if getattr(args, name) % args.window:
            parser.error(f"--{name.replace('_', '-')} must be a multiple of --window")
    return args


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    return next(
        (line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line), ""
    )


def main(argv: list[str] | None = None) -> int:
    """Run every arm on every seed; write the JSON and PNG; print the table."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    args = parse_args(argv)
    started = time.perf_counter()
    runs: dict[str, list[list[dict]]] = {arm: [] for arm in args.arms}
    for seed in args.seeds:
        survey, crowd = make_survey(args, seed)
        for arm in args.arms:
            arm_started = time.perf_counter()
            runs[arm].append(ArmRun(arm, survey, crowd, protocol(args), SCHEMA, seed).run())
            logger.info(
                "seed=%d arm=%s duration_s=%.1f", seed, arm, time.perf_counter() - arm_started
            )
    clicks = np.array([p["clicks"] for p in runs[args.arms[0]][0]], dtype=float)
    curves = {
        arm: {k: np.mean([[p[k] for p in run] for run in seeds], axis=0) for k in seeds[0][0]}
        for arm, seeds in runs.items()
    }
    summary = summarise(clicks, curves)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "arms": summary,
        "seeds": args.seeds,
        "arguments": {k: v for k, v in vars(args).items() if k != "out_dir"},
        "cpu": _cpu(),
        "wall_s": round(time.perf_counter() - started, 1),
        "clicks": clicks.tolist(),
        "curves": {
            a: {k: [round(float(x), 5) for x in v] for k, v in m.items()} for a, m in curves.items()
        },
    }
    (out_dir / "volunteer_clicks.json").write_text(json.dumps(result, indent=1, allow_nan=False))
    plot(clicks, curves, out_dir / "volunteer_clicks.png")
    print(table(summary))
    print(f"seeds {args.seeds}; cpu {result['cpu']}; wall {result['wall_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
