"""The one-command demo: a local Panoptes emulator, simulated volunteers and two full cycles.

Everything runs on embedded defaults and offline: the emulator serves a Galaxy Zoo project with
simulated galaxies over real HTTP, the daemon's cycles talk to it through the real panoptes-client,
the store is SQLite in the work folder, and the ensemble starts from the encoder shipped with
zoobot. Between cycles the simulated volunteers classify, served by Designator's rules, so the
pushed (prioritised) galaxies are classified first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from panoptes_sync.client import PanoptesCredentials, connect_panoptes
from panoptes_sync.emulator import EmulatorSettings, serve_emulator
from prioritiser.config import load_config
from prioritiser.daemon import Daemon
from prioritiser.errors import PrioritiserError
from prioritiser.report import write_report
from prioritiser.store import cycle_rows, selected_predictions, version_rows
from zoobot import strict_json

__all__ = ["DemoOptions", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_LOGIN, DEMO_PASSWORD = "demo-owner", "demo-password"


@dataclass(frozen=True)
class DemoOptions:
    """Sizes of the demo; the defaults finish two cycles in a few minutes on 2 CPU cores."""

    workdir: Path = Path("zoo-demo")
    subjects: int = 240
    classifications: int = 900
    volunteers_between_cycles: int = 600
    cycles: int = 2
    retirement_count: int = 10
    labelled_min_votes: int = 5
    encoder: str = "zoobot-sim-atto"
    image_size: int = 64
    n_models: int = 2
    max_epochs: int = 6
    push_size: int = 20
    seed: int = 0


def _frames(daemon: Daemon) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    schema = daemon.context.schema
    cycles = pd.DataFrame(
        [
            {
                "id": c.id,
                "kind": c.kind,
                "started_at": c.started_at,
                "ended_at": c.ended_at,
                "status": c.status,
                "stage": c.stage,
                "counts": c.counts,
                "metrics": c.metrics,
                "error": c.error,
            }
            for c in cycle_rows(daemon.engine)
        ]
    )
    versions = pd.DataFrame(
        [
            {
                "version": v.id,
                "n_labelled": v.n_labelled,
                "validation_loss": v.validation_loss,
                "baseline_loss": v.baseline_loss,
                "deployed": v.deployed,
                "status": v.status,
            }
            for v in version_rows(daemon.engine)
        ]
    )
    columns = ["rank", "id_str", "file_loc", "score", "selection"]
    columns += [f"mi_{q}" for q in schema.question_names]
    columns += [f"{c}_fraction" for c in schema.label_cols]
    top = pd.DataFrame(
        columns=columns,
        data=[
            {
                "rank": p.rank,
                "id_str": str(p.subject_id),
                "file_loc": path,
                "score": p.score,
                "selection": p.selection,
                **{f"mi_{q}": p.mutual_information.get(q, 0.0) for q in schema.question_names},
                **{f"{c}_fraction": p.vote_fractions.get(c, 0.0) for c in schema.label_cols},
            }
            for p, path in selected_predictions(daemon.engine)
        ],
    )
    return top, cycles, versions


def run_demo(options: DemoOptions) -> dict:
    """Run the demo; returns its summary (also written to ``summary.json``), with the report.

    Raises:
        CycleFailed: a cycle failed (its stage and error named); no report is written.
        PrioritiserError: no model version was trained, so there is nothing to report.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    workdir = options.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    emulator_settings = EmulatorSettings(
        state_path=workdir / "emulator.sqlite3",
        subjects=options.subjects,
        classifications=options.classifications,
        login=DEMO_LOGIN,
        password=DEMO_PASSWORD,
        seed=options.seed,
        image_size=options.image_size,
        retirement_count=options.retirement_count,
        prioritized=True,
    )
    with serve_emulator(emulator_settings) as emulator:
        logger.info("emulator serving endpoint=%s subjects=%d", emulator.endpoint, options.subjects)
        config = load_config(
            env={},
            overrides={
                "workdir": str(workdir),
                "encoder": options.encoder,
                "image_size": options.image_size,
                "n_models": options.n_models,
                "max_epochs": options.max_epochs,
                "push_size": options.push_size,
                "labelled_min_votes": options.labelled_min_votes,
                "seed": options.seed,
                "retrain_min_new_labelled": 0,
            },
            sync_overrides={
                "database_url": f"sqlite:///{workdir / 'zoo.sqlite3'}",
                "endpoint": emulator.endpoint,
                "project_id": emulator.project_id,
                "workflow_id": emulator.workflow_id,
                "schema": "decals_dr5",
            },
        )
        credentials = PanoptesCredentials(username=DEMO_LOGIN, password=DEMO_PASSWORD)
        daemon = Daemon(config, connect=lambda: connect_panoptes(emulator.endpoint, credentials))
        for cycle in range(options.cycles):
            if cycle:
                emulator.run_volunteers(options.volunteers_between_cycles)
            daemon.retrain_or_raise()
        top, cycles, versions = _frames(daemon)
    if versions.empty:
        raise PrioritiserError(
            "no model version was trained (every cycle was skipped: too few labelled galaxies); "
            "no report written"
        )
    report = write_report(workdir / "report.html", top, cycles, versions, daemon.context.schema)
    retrains = cycles[cycles["kind"] == "retrain"]
    summary = {
        "workdir": str(workdir),
        "report": str(report),
        "wall_time_s": round(time.perf_counter() - started, 1),
        "cycles": retrains[["id", "status", "stage"]].to_dict(orient="records"),
        "model_versions": versions.to_dict(orient="records"),
        "pushed": int(sum(c.get("pushed", 0) for c in retrains["counts"])),
    }
    (workdir / "summary.json").write_text(strict_json.dumps(summary, indent=2))
    return summary
