"""Bulk seeding: the same rows as linking subjects one by one, with one statement per table."""

from __future__ import annotations

import random

from panoptes_sync.emulator import EmulatorServer
from panoptes_sync.emulator.database import loads
from panoptes_sync.emulator.seed import seeded_image_path
from tests.panoptes_sync.emulator_fixtures import small_settings


def test_seeded_subjects_are_linked_with_statuses_and_lazy_images(tmp_path):
    settings = small_settings(tmp_path, subjects=30, classifications=0)
    server = EmulatorServer(settings)
    database = server.database
    subjects = database.query("SELECT id, metadata, locations FROM subjects ORDER BY id")
    ids = [row["id"] for row in subjects]
    assert ids == list(range(ids[0], ids[0] + 30))
    assert loads(subjects[4]["locations"]) == [{"image/png": seeded_image_path(0, 4)}]
    assert database.count("SELECT COUNT(*) FROM blobs") == 0  # rendered when first requested
    members = database.query("SELECT id, subject_id, random FROM set_member_subjects ORDER BY id")
    assert [m["subject_id"] for m in members] == ids
    expected_random = random.Random(settings.seed)
    assert [m["random"] for m in members] == [expected_random.random() for _ in ids]
    statuses = database.query(
        "SELECT subject_id FROM subject_workflow_statuses WHERE workflow_id = ? ORDER BY id",
        (settings.workflow_id,),
    )
    assert [s["subject_id"] for s in statuses] == ids
    assert database.query_one("SELECT lock_version FROM subject_sets")["lock_version"] == 1
    next_subject = database.next_id("subjects")
    assert next_subject == ids[-1] + 1
