"""Incremental vote aggregation in the store: new classifications -> ``vote_counts``.

The counting itself is `panoptes_sync.counting` (vectorised); this module reads classifications
stored since the last run in id order, applies the first-only rule against earlier ones, and adds
the counts together with the new ``aggregation_state`` in one transaction per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Text, cast, select
from sqlalchemy.orm import Session

from panoptes_sync.annotations import (
    AnswerMapping,
    WorkflowVersionTasks,
    inject_strings,
    parse_workflow_version,
)
from panoptes_sync.counting import (
    AggregationReport,
    count_votes,
    first_classification_mask,
    user_keys,
    vote_table,
)
from panoptes_sync.errors import AggregationError
from panoptes_sync.store import (
    Classification,
    WorkflowVersion,
    add_vote_counts,
    get_aggregation_state,
    get_vote_counts,
    reset_aggregation,
    session_scope,
    set_aggregation_state,
)
from zoobot.schemas import Schema

__all__ = ["aggregate_store", "load_workflow_versions", "stored_vote_table"]

logger = logging.getLogger(__name__)

#: Most values bound in one SQL ``IN (...)`` (SQLite allows 32766 parameters).
IN_CLAUSE_LIMIT = 5_000


def load_workflow_versions(session: Session, workflow_id: int) -> list[WorkflowVersionTasks]:
    """A workflow's stored versions, strings injected into the tasks."""
    rows = session.scalars(
        select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
    )
    return [
        WorkflowVersionTasks(
            row.workflow_id,
            row.major,
            row.minor,
            inject_strings(row.tasks, row.strings),
            row.first_task,
        )
        for row in rows
    ]


def _majors(versions: Sequence[str]) -> np.ndarray:
    majors = np.full(len(versions), -1, dtype=np.int64)
    for index, text in enumerate(versions):
        try:
            majors[index] = parse_workflow_version(text)[0]
        except ValueError:
            continue
    return majors


def _earlier_pairs(session: Session, workflow_id: int, last_id: int, subjects: set[int]) -> set:
    """(subject, volunteer key) pairs of classifications up to ``last_id`` of these subjects."""
    wanted = sorted(int(s) for s in subjects)  # numpy ints would not bind on SQLite
    rows = []
    for start in range(0, len(wanted), IN_CLAUSE_LIMIT):
        query = (
            select(Classification.subject_id, Classification.user_id, Classification.user_name)
            .where(Classification.workflow_id == workflow_id, Classification.id <= last_id)
            .where(Classification.subject_id.in_(wanted[start : start + IN_CLAUSE_LIMIT]))
        )
        rows += session.execute(query).all()
    if not rows:
        return set()
    subject_ids, ids, names = zip(*rows)
    return {(s, k) for s, k in zip(subject_ids, user_keys(ids, names)) if k is not None}


def aggregate_store(
    engine: Engine,
    workflow_id: int,
    schema: Schema | None = None,
    schema_name: str | None = None,
    first_only: bool = False,
    rebuild: bool = False,
    batch_size: int = 50_000,
) -> AggregationReport:
    """Add the votes of classifications stored since the last run to the stored vote counts.

    Each batch commits its counts and the new ``last_classification_id`` together, so an
    interrupted run resumes without double counting.

    Args:
        engine: the store (already migrated).
        workflow_id: the workflow whose classifications are counted.
        schema: count into its label columns; None gives ``<task>_<index>`` columns.
        schema_name: the name counts are stored under (default the schema's name, or
            ``workflow-<id>`` without a schema).
        first_only: count only each volunteer's first classification of a subject.
        rebuild: forget stored counts and aggregate everything again.
        batch_size: classifications read per batch.

    Returns:
        The report of this run.

    Raises:
        AggregationError: if the workflow has no stored versions, or the stored counts were made
            with other options (pass ``rebuild=True``).
    """
    name = schema_name or (schema.name if schema is not None else f"workflow-{workflow_id}")
    options = {"workflow_id": workflow_id, "first_only": first_only}
    with session_scope(engine) as session:
        mapping = AnswerMapping(load_workflow_versions(session, workflow_id), schema)
        if rebuild:
            reset_aggregation(session, name)
        state = get_aggregation_state(session, name)
    if state is not None and state[1] != options:
        raise AggregationError(
            f"vote counts {name!r} were aggregated with {state[1]}, not {options}; "
            "pass --rebuild to aggregate again from scratch"
        )
    last_id = state[0] if state is not None else 0
    total = AggregationReport()
    while True:
        with session_scope(engine) as session:
            rows = session.execute(
                select(
                    Classification.id,
                    Classification.subject_id,
                    Classification.workflow_version,
                    Classification.user_id,
                    Classification.user_name,
                    cast(Classification.annotations, Text),
                )
                .where(Classification.workflow_id == workflow_id, Classification.id > last_id)
                .order_by(Classification.id)
                .limit(batch_size)
            ).all()
            if not rows:
                break
            ids, subjects, versions, user_ids, names, texts = (list(c) for c in zip(*rows))
            ids_array = np.asarray(ids, dtype=np.int64)
            subjects_array = np.asarray([s if s is not None else -1 for s in subjects], np.int64)
            keep = subjects_array >= 0
            if first_only:
                keys = user_keys(user_ids, names)
                keep &= first_classification_mask(ids_array, subjects_array, keys)
                earlier = _earlier_pairs(session, workflow_id, last_id, set(subjects_array[keep]))
                keep &= np.array([(s, k) not in earlier for s, k in zip(subjects_array, keys)])
            counts, report = count_votes(
                ids_array[keep],
                subjects_array[keep],
                _majors(versions)[keep],
                [t for t, k in zip(texts, keep) if k],
                mapping,
            )
            report.classifications, report.filtered = len(ids), int((~keep).sum())
            labels = np.asarray(mapping.columns, dtype=object)
            add_vote_counts(
                session,
                name,
                pd.DataFrame(
                    {
                        "subject_id": counts["subject_id"],
                        "label_col": labels[counts["column"].to_numpy()],
                        "count": counts["count"],
                    }
                ),
            )
            last_id = int(ids_array.max())
            set_aggregation_state(session, name, last_id, options)
        total.merge(report)
    if total.problems:
        logger.warning("aggregation problems schema=%s issues=%s", name, total.problems)
    logger.info(
        "store aggregated schema=%s classifications=%d votes=%d last_id=%d",
        name,
        total.classifications,
        total.votes,
        last_id,
    )
    return total


def stored_vote_table(
    engine: Engine, name: str, columns: Sequence[str], schema: Schema | None
) -> pd.DataFrame:
    """The stored counts under ``name`` as a per-subject table (see `vote_table`)."""
    with session_scope(engine) as session:
        return vote_table(get_vote_counts(session, name), columns, schema)
