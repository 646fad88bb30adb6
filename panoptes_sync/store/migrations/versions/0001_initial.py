"""Initial store tables: projects, workflows, subjects, classifications, state, votes, pushes.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision: create the tables in their original order."""
    _create_aggregation_state()
    _create_classifications()
    _create_projects()
    _create_pushes()
    _create_subjects()
    _create_sync_state()
    _create_vote_counts()
    _create_workflow_versions()
    _create_workflows()


def _create_aggregation_state() -> None:
    """Create ``aggregation_state``: the last classification aggregated per schema."""
    op.create_table(
        "aggregation_state",
        sa.Column("schema_name", sa.String(length=64), nullable=False),
        sa.Column("last_classification_id", sa.BigInteger(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("schema_name"),
    )


def _create_classifications() -> None:
    """Create ``classifications`` and its subject and workflow indexes."""
    op.create_table(
        "classifications",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("workflow_version", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("subject_ids", sa.JSON(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("annotation_format", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "annotation_format IN ('index', 'label')", name="ck_classifications_format"
        ),
        sa.CheckConstraint("source IN ('api', 'export')", name="ck_classifications_source"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_classifications_subject_id", "classifications", ["subject_id"], unique=False
    )
    op.create_index(
        "ix_classifications_workflow_id", "classifications", ["workflow_id"], unique=False
    )


def _create_projects() -> None:
    """Create ``projects``."""
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def _create_pushes() -> None:
    """Create ``pushes``: one row per planned or made write to Panoptes, and its batch index."""
    op.create_table(
        "pushes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("subject_set_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("request_count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "action IN ('create_subject', 'link_subjects', 'set_priority', "
            "'create_subject_set', 'link_subject_set', 'retire')",
            name="ck_pushes_action",
        ),
        sa.CheckConstraint("status IN ('planned', 'done', 'failed')", name="ck_pushes_status"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_pushes_batch_id", "pushes", ["batch_id"], unique=False)


def _create_subjects() -> None:
    """Create ``subjects``."""
    op.create_table(
        "subjects",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("locations", sa.JSON(), nullable=True),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("cache_path", sa.String(length=2048), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _create_sync_state() -> None:
    """Create ``sync_state``: the last id fetched per sync key."""
    op.create_table(
        "sync_state",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def _create_vote_counts() -> None:
    """Create ``vote_counts``: aggregated votes per schema, subject and answer."""
    op.create_table(
        "vote_counts",
        sa.Column("schema_name", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("label_col", sa.String(length=255), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("schema_name", "subject_id", "label_col"),
    )


def _create_workflow_versions() -> None:
    """Create ``workflow_versions``."""
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("major", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("minor", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("first_task", sa.String(length=64), nullable=True),
        sa.Column("tasks", sa.JSON(), nullable=False),
        sa.Column("strings", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("workflow_id", "major", "minor"),
    )


def _create_workflows() -> None:
    """Create ``workflows`` (each belongs to a project)."""
    op.create_table(
        "workflows",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("display_name", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=32), nullable=True),
        sa.Column("prioritized", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("workflows")
    op.drop_table("workflow_versions")
    op.drop_table("vote_counts")
    op.drop_table("sync_state")
    op.drop_table("subjects")
    op.drop_index("ix_pushes_batch_id", table_name="pushes")
    op.drop_table("pushes")
    op.drop_table("projects")
    op.drop_index("ix_classifications_workflow_id", table_name="classifications")
    op.drop_index("ix_classifications_subject_id", table_name="classifications")
    op.drop_table("classifications")
    op.drop_table("aggregation_state")
