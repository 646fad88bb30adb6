"""The panoptes_sync store: SQLAlchemy models, migrations and repository functions.

SQLite (WAL, foreign keys, busy timeout) is the embedded default; PostgreSQL (psycopg 3) is used in
production. The backend is chosen by the URL given to `create_engine_for_url`.
"""

from panoptes_sync.store.database import (
    create_engine_for_url,
    database_errors,
    redact_url,
    session_scope,
    upgrade_database,
)
from panoptes_sync.store.models import (
    AggregationState,
    Base,
    Classification,
    Project,
    Push,
    Subject,
    SyncState,
    VoteCount,
    Workflow,
    WorkflowVersion,
    utcnow,
)
from panoptes_sync.store.repository import (
    cached_subjects,
    get_sync_state,
    insert_classifications,
    list_pushes,
    record_push,
    set_cache_paths,
    set_sync_state,
    uncached_subjects,
    update_push,
    upsert_projects,
    upsert_subjects,
    upsert_workflow_versions,
    upsert_workflows,
)
from panoptes_sync.store.votes import (
    add_vote_counts,
    get_aggregation_state,
    get_vote_counts,
    reset_aggregation,
    set_aggregation_state,
)

__all__ = [
    "AggregationState",
    "Base",
    "Classification",
    "Project",
    "Push",
    "Subject",
    "SyncState",
    "VoteCount",
    "Workflow",
    "WorkflowVersion",
    "add_vote_counts",
    "cached_subjects",
    "create_engine_for_url",
    "database_errors",
    "get_aggregation_state",
    "get_sync_state",
    "get_vote_counts",
    "insert_classifications",
    "list_pushes",
    "record_push",
    "redact_url",
    "reset_aggregation",
    "session_scope",
    "set_aggregation_state",
    "set_cache_paths",
    "set_sync_state",
    "uncached_subjects",
    "update_push",
    "upgrade_database",
    "upsert_projects",
    "upsert_subjects",
    "upsert_workflow_versions",
    "upsert_workflows",
    "utcnow",
]
