"""First-start seeding: owner and volunteer accounts, the GZ project, workflow, subjects, votes."""

from __future__ import annotations

import copy
import logging
import random
import re
import secrets
from typing import Any

from panoptes_sync.emulator.answers import AnswerModel
from panoptes_sync.emulator.database import EmulatorDatabase, dumps
from panoptes_sync.emulator.operations import (
    create_subject_set,
    member_priority,
    normalise_metadata,
    task_strings,
    touch,
)
from panoptes_sync.emulator.passwords import hash_password
from panoptes_sync.emulator.settings import EmulatorSettings
from panoptes_sync.emulator.volunteers import VolunteerSimulator
from zoobot.schemas import decals_dr5_workflow

__all__ = [
    "is_seeded",
    "seed_state",
    "seeded_image_index",
    "seeded_image_path",
    "workflow_definition",
]

logger = logging.getLogger(__name__)

WORKFLOW_NAME = "DECaLS DR5"
SEED_SET_NAME = "GZ DECaLS DR5 simulated subjects"
_SEEDED_IMAGE = re.compile(r"^/uploads/subject_location/seed-(-?\d+)-(\d+)\.png$")


def seeded_image_path(seed: int, index: int) -> str:
    """Blob path of a seeded subject's image."""
    return f"/uploads/subject_location/seed-{seed}-{index:06d}.png"


def seeded_image_index(path: str, seed: int) -> int | None:
    """The subject index a seeded image path names, or None for any other path."""
    match = _SEEDED_IMAGE.match(path)
    if match is None or int(match.group(1)) != seed:
        return None
    return int(match.group(2))


def workflow_definition() -> dict[str, Any]:
    """The GZ DECaLS DR5 workflow definition (tasks T0..T11) the project is seeded with."""
    return copy.deepcopy(decals_dr5_workflow)


def is_seeded(database: EmulatorDatabase) -> bool:
    """Whether the state file already holds a seeded emulator."""
    return database.get_meta("seeded") == "1"


def _insert_user(database: EmulatorDatabase, login: str, password: str | None, admin: bool) -> int:
    user_id = database.next_id("users")
    now = database.clock.iso()
    password_hash = None if password is None else hash_password(password)
    database.execute(
        "INSERT INTO users (id, login, password_hash, display_name, admin, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (user_id, login, password_hash, login, int(admin), now, now),
    )
    return user_id


def _insert_project_and_workflow(
    database: EmulatorDatabase, settings: EmulatorSettings, owner_id: int
) -> None:
    now = database.clock.iso()
    definition = workflow_definition()
    major, minor = (int(part) for part in str(definition.get("version", "1.1")).split("."))
    retirement = {
        "criteria": "classification_count",
        "options": {"count": settings.retirement_count},
    }
    with database.transaction() as connection:
        connection.execute(
            "INSERT INTO projects (id, slug, display_name, owner_id, live, private, configuration, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, 1, 0, ?, ?, ?)",
            (
                settings.project_id,
                settings.project_slug,
                "Galaxy Zoo",
                owner_id,
                dumps({}),
                now,
                now,
            ),
        )
        connection.execute(
            "INSERT INTO workflows (id, project_id, display_name, tasks, first_task, major, minor, "
            "prioritized, grouped, pairwise, active, retirement, configuration, mobile_friendly, "
            "primary_language, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 1, ?, ?, 1, 'en', ?, ?)",
            (
                settings.workflow_id,
                settings.project_id,
                WORKFLOW_NAME,
                dumps(definition["tasks"]),
                definition["first_task"],
                major,
                minor,
                int(settings.prioritized),
                dumps(retirement),
                dumps({}),
                now,
                now,
            ),
        )
        connection.execute(
            "INSERT INTO workflow_versions (id, workflow_id, major, minor, first_task, tasks, "
            "strings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                database.next_id("workflow_versions"),
                settings.workflow_id,
                major,
                minor,
                definition["first_task"],
                dumps(definition["tasks"]),
                dumps(task_strings(definition["tasks"])),
                now,
                now,
            ),
        )


def _insert_seed_subjects(
    database: EmulatorDatabase,
    settings: EmulatorSettings,
    answer_model: AnswerModel,
    set_id: int,
    owner_id: int,
) -> list[int]:
    """Insert the seeded subjects, link them to the set and give them statuses, in bulk.

    The rows equal what ``insert_subject``, ``link_subjects`` and ``ensure_statuses`` make one
    by one (ids, priorities, the set's random numbers in the same order), with one statement per
    table. Images are rendered when first downloaded (``blobs.get_upload``), not here.
    """
    n = settings.subjects
    if n == 0:
        return []
    now = database.clock.iso()
    first_subject = database.next_id("subjects", step=n)
    first_member = database.next_id("set_member_subjects", step=n)
    first_status = database.next_id("subject_workflow_statuses", step=n)
    subject_ids = list(range(first_subject, first_subject + n))
    metadata = [normalise_metadata(answer_model.subject_metadata(i)) for i in range(n)]
    rng = random.Random(settings.seed)
    with database.transaction() as connection:
        connection.executemany(
            "INSERT INTO subjects (id, project_id, metadata, locations, uploader_id, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    subject_id,
                    settings.project_id,
                    dumps(meta),
                    dumps([{"image/png": seeded_image_path(settings.seed, index)}]),
                    owner_id,
                    now,
                    now,
                )
                for index, (subject_id, meta) in enumerate(zip(subject_ids, metadata))
            ),
        )
        connection.executemany(
            "INSERT INTO set_member_subjects (id, subject_set_id, subject_id, priority, random, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (
                    first_member + k,
                    set_id,
                    subject_id,
                    member_priority(meta),
                    rng.random(),
                    now,
                    now,
                )
                for k, (subject_id, meta) in enumerate(zip(subject_ids, metadata))
            ),
        )
        connection.executemany(
            "INSERT INTO subject_workflow_statuses (id, subject_id, workflow_id, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?)",
            (
                (first_status + k, subject_id, settings.workflow_id, now, now)
                for k, subject_id in enumerate(subject_ids)
            ),
        )
        touch(database, "subject_sets", set_id)
    return subject_ids


def seed_state(
    database: EmulatorDatabase, settings: EmulatorSettings, answer_model: AnswerModel
) -> None:
    """Seed an empty state file; a seeded one is left as it is (state survives restarts).

    Args:
        database: the emulator state.
        settings: the emulator settings.
        answer_model: simulated subject images/metadata and volunteer answers.
    """
    if is_seeded(database):
        logger.info("emulator state reused path=%s", database.path)
        return
    with database.transaction():
        _seed(database, settings, answer_model)


def _seed(
    database: EmulatorDatabase, settings: EmulatorSettings, answer_model: AnswerModel
) -> None:
    database.set_meta("signing_key", secrets.token_hex(16))
    owner_id = _insert_user(database, settings.login, settings.password, admin=False)
    for login, password in settings.other_users:
        _insert_user(database, login, password, admin=False)
    for index in range(settings.volunteers):
        _insert_user(database, f"volunteer-{index + 1:03d}", None, admin=False)
    _insert_project_and_workflow(database, settings, owner_id)
    set_id = create_subject_set(database, settings.project_id, SEED_SET_NAME, {})
    database.execute(
        "INSERT INTO workflow_subject_sets (workflow_id, subject_set_id) VALUES (?, ?)",
        (settings.workflow_id, set_id),
    )
    subject_ids = _insert_seed_subjects(database, settings, answer_model, set_id, owner_id)
    simulator = VolunteerSimulator(database, answer_model, settings.workflow_id, settings.seed)
    made = simulator.run(settings.classifications)
    database.set_meta("seeded", "1")
    logger.info(
        "emulator seeded path=%s subjects=%d classifications=%d",
        database.path,
        len(subject_ids),
        len(made),
    )
