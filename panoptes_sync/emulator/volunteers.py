"""Simulated volunteers: Designator-like subject selection, classification, retirement."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from panoptes_sync.emulator.answers import AnswerModel
from panoptes_sync.emulator.database import EmulatorDatabase, dumps, loads
from panoptes_sync.emulator.operations import count_and_retire

__all__ = ["VolunteerSimulator", "VolunteerThread"]

logger = logging.getLogger(__name__)

#: Share of classifications made by volunteers who are not logged in.
ANONYMOUS_SHARE = 0.1


class VolunteerSimulator:
    """Makes classifications as volunteers on a workflow would, deterministically for the seed.

    Each classification draws its randomness from ``(seed, n-th classification)``, so a run is
    reproducible and continues the same sequence after a restart.

    Args:
        database: the emulator state.
        answer_model: how volunteers answer.
        workflow_id: the workflow volunteers classify on.
        seed: the emulator seed.
    """

    def __init__(
        self, database: EmulatorDatabase, answer_model: AnswerModel, workflow_id: int, seed: int
    ) -> None:
        self.database = database
        self.answer_model = answer_model
        self.workflow_id = workflow_id
        self.seed = seed
        self._lock = threading.Lock()

    def run(self, n: int) -> list[int]:
        """Make up to ``n`` classifications; fewer when nothing is left to classify.

        Returns:
            The new classification ids.
        """
        made: list[int] = []
        with self._lock, self.database.transaction():
            for _ in range(n):
                classification_id = self._classify_once()
                if classification_id is None:
                    break
                made.append(classification_id)
        if len(made) < n:
            logger.info(
                "volunteers ran out of subjects workflow_id=%d requested=%d made=%d",
                self.workflow_id,
                n,
                len(made),
            )
        return made

    def _classify_once(self) -> int | None:
        database = self.database
        workflow = database.query_one("SELECT * FROM workflows WHERE id = ?", (self.workflow_id,))
        if workflow is None or not workflow["active"]:
            return None
        counter = int(database.get_meta("volunteer_counter") or 0)
        rng = np.random.default_rng([self.seed, 3, counter])
        user_id = self._pick_volunteer(rng)
        subject_id = self._select_subject(workflow, user_id, rng)
        if subject_id is None and user_id is not None:
            # This volunteer has seen everything left; someone not logged in classifies instead.
            user_id = None
            subject_id = self._select_subject(workflow, user_id, rng)
        if subject_id is None:
            return None
        subject = database.query_one("SELECT metadata FROM subjects WHERE id = ?", (subject_id,))
        metadata = loads(subject["metadata"]) if subject is not None else {}
        probabilities = self.answer_model.probabilities(subject_id, metadata)
        annotations = self.answer_model.annotate(probabilities, rng)
        with database.transaction() as connection:
            classification_id = database.next_id("classifications", step=1 + int(rng.integers(3)))
            now = database.clock.now()
            connection.execute(
                "INSERT INTO classifications (id, project_id, workflow_id, user_id, subject_ids, "
                "annotations, metadata, workflow_version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    classification_id,
                    workflow["project_id"],
                    workflow["id"],
                    user_id,
                    dumps([subject_id]),
                    dumps(annotations),
                    dumps(self._metadata(rng, now)),
                    f"{workflow['major']}.{workflow['minor']}",
                    database.clock.iso(now),
                    database.clock.iso(now),
                ),
            )
            if user_id is not None:
                connection.execute(
                    "INSERT INTO seen_subjects (user_id, workflow_id, subject_id) VALUES (?, ?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (user_id, workflow["id"], subject_id),
                )
            count_and_retire(database, workflow, subject_id)
            database.set_meta("volunteer_counter", str(counter + 1))
        return classification_id

    def _pick_volunteer(self, rng: np.random.Generator) -> int | None:
        if rng.random() < ANONYMOUS_SHARE:
            return None
        rows = self.database.query("SELECT id FROM users WHERE password_hash IS NULL ORDER BY id")
        return int(rows[int(rng.integers(len(rows)))]["id"]) if rows else None

    def _select_subject(
        self, workflow: Any, user_id: int | None, rng: np.random.Generator
    ) -> int | None:
        """Designator's choice: a set by chance, then in priority order or at random."""
        database = self.database
        sets = database.query(
            "SELECT wss.subject_set_id AS id, COUNT(sms.id) AS size FROM workflow_subject_sets wss "
            "JOIN set_member_subjects sms ON sms.subject_set_id = wss.subject_set_id "
            "WHERE wss.workflow_id = ? GROUP BY wss.subject_set_id ORDER BY wss.subject_set_id",
            (workflow["id"],),
        )
        chances = (loads(workflow["configuration"]) or {}).get("subject_set_chances") or {}
        candidates = {int(row["id"]): float(row["size"]) for row in sets}
        if candidates and all(str(set_id) in chances for set_id in candidates):
            candidates = {set_id: float(chances[str(set_id)]) for set_id in candidates}
        while candidates:
            ids = list(candidates)
            weights = np.array([candidates[i] for i in ids])
            if weights.sum() <= 0:
                weights = np.ones(len(ids))
            set_id = ids[int(rng.choice(len(ids), p=weights / weights.sum()))]
            subject_id = self._select_in_set(workflow, set_id, user_id, rng)
            if subject_id is not None:
                return subject_id
            del candidates[set_id]
        return None

    def _select_in_set(
        self, workflow: Any, set_id: int, user_id: int | None, rng: np.random.Generator
    ) -> int | None:
        unseen = (
            ""
            if user_id is None
            else (
                "AND sms.subject_id NOT IN (SELECT subject_id FROM seen_subjects "
                "WHERE user_id = :user AND workflow_id = :workflow)"
            )
        )
        rows = self.database.query(
            "SELECT sms.subject_id FROM set_member_subjects sms "
            "WHERE sms.subject_set_id = :set AND sms.subject_id NOT IN ("
            "SELECT subject_id FROM subject_workflow_statuses "
            "WHERE workflow_id = :workflow AND retired_at IS NOT NULL) "
            f"{unseen} ORDER BY COALESCE(sms.priority, 0), sms.id",
            {"set": set_id, "workflow": workflow["id"], "user": user_id},  # type: ignore[arg-type]
        )
        if not rows:
            return None
        if workflow["prioritized"]:
            return int(rows[0]["subject_id"])
        return int(rows[int(rng.integers(len(rows)))]["subject_id"])

    def _metadata(self, rng: np.random.Generator, finished: float) -> dict[str, Any]:
        started = finished - float(rng.uniform(5, 60))
        iso = self.database.clock.iso
        return {
            "source": "api",
            "session": f"{int(rng.integers(2**63)):016x}",
            "viewport": {"width": 1366, "height": 657},
            "started_at": iso(started),
            "finished_at": iso(finished),
            "user_agent": "Mozilla/5.0 (panoptes-emulator volunteer)",
            "utc_offset": "0",
            "live_project": True,
            "interventions": {"opt_in": True, "message": False},
            "user_language": "en",
            "user_group_ids": [],
            "subject_dimensions": [
                {"clientWidth": 424, "clientHeight": 424, "naturalWidth": 424, "naturalHeight": 424}
            ],
            "subject_selection_state": {
                "retired": False,
                "already_seen": False,
                "selection_state": "normal",
                "finished_workflow": False,
                "user_has_finished_workflow": False,
            },
        }


class VolunteerThread(threading.Thread):
    """Keeps volunteers classifying at ``rate_per_s`` until ``stop`` is called."""

    def __init__(self, simulator: VolunteerSimulator, rate_per_s: float, tick_s: float = 0.05):
        super().__init__(name="panoptes-emulator-volunteers", daemon=True)
        self.simulator = simulator
        self.rate_per_s = rate_per_s
        self.tick_s = tick_s
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Ask the thread to finish and wait for it."""
        self._stop_event.set()
        self.join(timeout=5)

    def run(self) -> None:
        """Make ``rate_per_s × elapsed`` classifications, in small batches."""
        start, made = time.monotonic(), 0
        while not self._stop_event.wait(self.tick_s):
            due = int(self.rate_per_s * (time.monotonic() - start)) - made
            if due > 0:
                try:
                    self.simulator.run(due)
                except Exception:  # boundary of a background thread: log and keep going
                    logger.exception("volunteer simulation failed")
                made += due
