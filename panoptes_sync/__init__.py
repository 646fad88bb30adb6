"""panoptes_sync: the Zooniverse link. Sync, store, aggregate and push, without torch.

The local Panoptes emulator is ``panoptes_sync.emulator``; the store is ``panoptes_sync.store``.
"""

from panoptes_sync.aggregate import aggregate_store, stored_vote_table
from panoptes_sync.client import (
    PanoptesCredentials,
    ResilientPanoptes,
    connect_panoptes,
    credentials_from_env,
    iterate_pages,
)
from panoptes_sync.config import Settings, load_settings
from panoptes_sync.errors import PanoptesSyncError
from panoptes_sync.push import (
    PushItem,
    PushPlan,
    PushReport,
    execute_push,
    plan_push,
    read_ranked_list,
)
from panoptes_sync.retry import RetryPolicy
from panoptes_sync.subjects import SubjectSyncReport, sync_workflow_subjects
from panoptes_sync.sync import SyncReport, sync_classifications

__all__ = [
    "PanoptesCredentials",
    "PanoptesSyncError",
    "PushItem",
    "PushPlan",
    "PushReport",
    "ResilientPanoptes",
    "RetryPolicy",
    "Settings",
    "SubjectSyncReport",
    "SyncReport",
    "aggregate_store",
    "connect_panoptes",
    "credentials_from_env",
    "execute_push",
    "iterate_pages",
    "load_settings",
    "plan_push",
    "read_ranked_list",
    "stored_vote_table",
    "sync_classifications",
    "sync_workflow_subjects",
]
