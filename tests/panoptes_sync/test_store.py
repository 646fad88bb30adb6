"""The store on real SQLite (always) and PostgreSQL (ZOO_TEST_POSTGRES_URL): migrations, idempotent
inserts, upserts, sync state and the push log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError

import panoptes_sync.store as store
from panoptes_sync.errors import StoreError
from panoptes_sync.store import (
    Base,
    Classification,
    Project,
    Subject,
    create_engine_for_url,
    get_sync_state,
    insert_classifications,
    list_pushes,
    record_push,
    session_scope,
    set_sync_state,
    update_push,
    upgrade_database,
    upsert_projects,
    upsert_subjects,
    upsert_workflow_versions,
    upsert_workflows,
)

TABLES = {
    "projects",
    "workflows",
    "workflow_versions",
    "subjects",
    "classifications",
    "sync_state",
    "vote_counts",
    "aggregation_state",
    "pushes",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = upgrade_database(database_url)
    yield engine
    engine.dispose()


def classification(cid: int, **overrides: object) -> dict[str, object]:
    row = {
        "id": cid,
        "project_id": 5733,
        "workflow_id": 6122,
        "workflow_version": "66.425",
        "subject_ids": [cid * 10],
        "user_id": 7,
        "created_at": "2019-03-29T18:38:10.824Z",
        "annotations": [{"task": "T0", "value": 1}],
        "metadata": {"workflow_version": "66.425"},
        "source": "api",
        "annotation_format": "index",
    }
    row.update(overrides)
    return row


def test_public_names_match_all() -> None:
    public = {name for name in dir(store) if not name.startswith("_")}
    modules = {"database", "models", "repository", "votes"}
    assert set(store.__all__) == public - modules


def test_upgrade_creates_tables_and_is_idempotent(engine: Engine) -> None:
    upgrade_database(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert revision == "0001"


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_insert_classifications_is_idempotent(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert insert_classifications(session, [classification(1), classification(2)]) == 2
    with session_scope(engine) as session:
        assert insert_classifications(session, [classification(2), classification(3)]) == 1
        assert insert_classifications(session, [classification(4), classification(4)]) == 1
        assert insert_classifications(session, []) == 0
    with session_scope(engine) as session:
        stored = session.scalars(select(Classification).order_by(Classification.id)).all()
    assert [c.id for c in stored] == [1, 2, 3, 4]
    first = stored[0]
    assert first.subject_id == 10
    assert first.created_at == datetime(2019, 3, 29, 18, 38, 10, 824000, tzinfo=UTC)
    assert first.annotations == [{"task": "T0", "value": 1}]
    assert first.metadata_ == {"workflow_version": "66.425"}


def test_first_writer_wins(engine: Engine) -> None:
    with session_scope(engine) as session:
        insert_classifications(session, [classification(9)])
        labelled = classification(
            9,
            source="export",
            annotation_format="label",
            annotations=[{"task": "T0", "value": "Smooth"}],
            created_at="2019-03-29 18:38:10 UTC",
        )
        assert insert_classifications(session, [labelled]) == 0
    with session_scope(engine) as session:
        assert session.get(Classification, 9).source == "api"


def test_big_classification_ids(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert (
            insert_classifications(session, [classification(5_000_000_000, subject_ids=[1])]) == 1
        )
        assert session.get(Classification, 5_000_000_000) is not None


def test_insert_rejects_incomplete_and_invalid_rows(engine: Engine) -> None:
    with pytest.raises(StoreError, match="lacks"), session_scope(engine) as session:
        insert_classifications(session, [{"id": 1}])
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        insert_classifications(session, [classification(1, source="carrier-pigeon")])
    with session_scope(engine) as session:
        assert session.scalar(select(Classification.id)) is None


def test_upserts_update_only_given_columns(engine: Engine) -> None:
    with session_scope(engine) as session:
        upsert_projects(
            session, [{"id": 5733, "slug": "zookeeper/galaxy-zoo", "display_name": "GZ"}]
        )
        upsert_projects(session, [{"id": 5733, "display_name": "Galaxy Zoo"}])
        upsert_workflows(session, [{"id": 6122, "project_id": 5733, "version": "66.425"}])
        upsert_workflows(session, [{"id": 6122, "prioritized": True}])
        upsert_workflow_versions(
            session, [{"workflow_id": 6122, "major": 66, "minor": 425, "tasks": {"T0": {}}}]
        )
        upsert_workflow_versions(
            session, [{"workflow_id": 6122, "major": 66, "minor": 425, "tasks": {"T1": {}}}]
        )
        upsert_subjects(
            session, [{"id": 1, "metadata": {"ra": 1.0}, "image_url": "http://x/1.png"}]
        )
        upsert_subjects(
            session, [{"id": 1, "cache_path": "cache/1.png"}, {"id": 2, "retired": True}]
        )
    with session_scope(engine) as session:
        project = session.get(Project, 5733)
        assert (project.slug, project.display_name) == ("zookeeper/galaxy-zoo", "Galaxy Zoo")
        workflow = session.get(store.Workflow, 6122)
        assert (workflow.version, workflow.prioritized) == ("66.425", True)
        version = session.get(store.WorkflowVersion, (6122, 66, 425))
        assert version.tasks == {"T1": {}}
        one, two = session.get(Subject, 1), session.get(Subject, 2)
        assert (one.metadata_, one.cache_path, one.retired) == ({"ra": 1.0}, "cache/1.png", False)
        assert two.retired is True


def test_workflow_needs_its_project(engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        upsert_workflows(session, [{"id": 1, "project_id": 404}])


def test_upsert_rejects_unknown_columns(engine: Engine) -> None:
    with pytest.raises(StoreError, match="unknown columns"), session_scope(engine) as session:
        upsert_subjects(session, [{"id": 1, "colour": "red"}])


def test_sync_state_round_trip(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert get_sync_state(session, "classifications:project:5733") is None
        set_sync_state(session, "classifications:project:5733", 156463637)
        set_sync_state(session, "classifications:project:5733", 156463700)
        set_sync_state(session, "other", 1)
    with session_scope(engine) as session:
        assert get_sync_state(session, "classifications:project:5733") == 156463700


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        set_sync_state(session, "k", 1)
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        assert get_sync_state(session, "k") is None


def test_push_log(engine: Engine) -> None:
    with session_scope(engine) as session:
        first = record_push(
            session, batch_id="b1", action="create_subject", subject_id=3, priority=0.5
        )
        record_push(session, batch_id="b2", action="retire", dry_run=True)
        update_push(session, first, status="done", request_count=4, detail={"subject_id": 3})
    with session_scope(engine) as session:
        pushes = list_pushes(session)
        batch = list_pushes(session, batch_id="b1")
        with pytest.raises(StoreError, match="no push"):
            update_push(session, 999, status="done")
        with pytest.raises(StoreError, match="unknown push fields"):
            record_push(session, batch_id="b", action="retire", colour="red")
    assert [p["batch_id"] for p in pushes] == ["b1", "b2"]
    assert batch[0]["status"] == "done" and batch[0]["request_count"] == 4
    assert batch[0]["detail"] == {"subject_id": 3}
    assert pushes[1]["status"] == "planned" and pushes[1]["dry_run"] is True
    assert pushes[0]["created_at"].tzinfo is not None


def test_push_action_is_checked(engine: Engine) -> None:
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        record_push(session, batch_id="b", action="launch_rocket")


def test_sqlite_connection_settings(tmp_path) -> None:
    engine = create_engine_for_url(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() > 0


def test_bad_urls_raise_store_errors() -> None:
    with pytest.raises(StoreError, match="unsupported"):
        create_engine_for_url("mysql://user:secret@host/db")
    with pytest.raises(StoreError, match="invalid database URL"):
        create_engine_for_url("not a url")
    assert "secret" not in store.redact_url("postgresql://user:secret@host/db")
    engine = create_engine_for_url("postgresql://user:secret@127.0.0.1:1/db")
    assert engine.dialect.driver == "psycopg"
