"""The scheduled service: the single place that wires the store, the models and the push together.

Jobs live in APScheduler's SQLAlchemy job store, in the same database as everything else:
``sync`` every ``sync_interval_s``, ``retrain`` (a full cycle: sync, aggregate, retrain, gate,
score, push) every ``retrain_interval_s`` or as soon as ``retrain_min_new_labelled`` galaxies
have become labelled, and a lock ``heartbeat``. Missed runs (after downtime) run once if they
are late by less than ``misfire_grace_s``; otherwise they wait for their next time.

SIGTERM or SIGINT ask the running job to stop at its next safe point (between stages, between
training steps, before each push write) and stop the scheduler. The lock is released only once
no job runs, and the heartbeat goes on until then, so a second instance cannot start while this
one can still write; a push that was stopped is finished by the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

from panoptes_sync.client import ResilientPanoptes, connect_panoptes, credentials_from_env
from panoptes_sync.retry import RetryPolicy
from panoptes_sync.store import create_engine_for_url, upgrade_database
from prioritiser.config import DaemonConfig
from prioritiser.cycle import (
    NEXT_STAGE,
    CycleContext,
    resume_interrupted,
    run_retrain,
    run_sync,
)
from prioritiser.errors import ConfigError, CycleFailed, CycleStopped
from prioritiser.lock import acquire_lock, check_lock, heartbeat, release_lock
from prioritiser.pool import count_labelled
from prioritiser.records import create_tables, utcnow
from prioritiser.store import cycle_outcome, labelled_at_last_retrain
from zoobot.schemas import get_schema

__all__ = ["Daemon", "prepare_store", "run_job"]

logger = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
_ACTIVE: Daemon | None = None


def prepare_store(database_url: str) -> Engine:
    """Migrate panoptes_sync's tables and create the prioritiser's; returns the engine."""
    engine = create_engine_for_url(database_url)
    upgrade_database(engine)
    create_tables(engine)
    return engine


def run_job(kind: str) -> None:
    """Entry point the job store refers to; runs ``kind`` on the daemon of this process."""
    if _ACTIVE is None:
        logger.warning("job %s fired with no daemon running in this process", kind)
        return
    _ACTIVE.run(kind)


class Daemon:
    """The prioritisation service for one database.

    Args:
        config: resolved settings.
        connect: makes a logged-in Panoptes client (default: from ``ZOO_PANOPTES_*`` env vars).
        trainer_kwargs: extra Lightning Trainer arguments for retraining.
        max_retrains: stop after this many retrain cycles (tests and the demo); None runs forever.

    Raises:
        ConfigError: if the project or workflow id is not set.
    """

    def __init__(
        self,
        config: DaemonConfig,
        connect: Callable[[], ResilientPanoptes] | None = None,
        trainer_kwargs: dict[str, Any] | None = None,
        max_retrains: int | None = None,
    ) -> None:
        if config.sync.project_id is None or config.sync.workflow_id is None:
            raise ConfigError(
                "project_id and workflow_id must be set in [panoptes_sync] "
                "or by ZOO_PROJECT_ID / ZOO_WORKFLOW_ID"
            )
        self.config = config
        self.engine = prepare_store(config.sync.database_url)
        self._client: ResilientPanoptes | None = None
        self._connect = connect or self._connect_from_env
        self.context = CycleContext(
            config=config,
            engine=self.engine,
            connect=self.client,
            schema=get_schema(config.prioritiser.schema),
            trainer_kwargs={
                "accelerator": "auto",
                "enable_progress_bar": False,
                **(trainer_kwargs or {}),
            },
        )
        self.max_retrains = max_retrains
        self.retrains = 0
        self.last_retrain: int | None = None
        self._scheduler: BlockingScheduler | None = None
        self._jobs = threading.Condition()
        self._running_jobs = 0

    def _connect_from_env(self) -> ResilientPanoptes:
        settings = self.config.sync
        policy = RetryPolicy(
            max_attempts=settings.max_retries + 1, timeout_s=settings.request_timeout_s
        )
        return connect_panoptes(settings.endpoint, credentials_from_env(os.environ), policy=policy)

    def client(self) -> ResilientPanoptes:
        """The Panoptes connection, made on first use."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def run(self, kind: str) -> None:
        """Run one job now: ``sync``, ``retrain`` or ``heartbeat``; nothing once a stop is asked."""
        if kind == "heartbeat":
            heartbeat(self.engine)
            return
        with self._jobs:
            if self.context.stop.is_set():
                logger.info("job %s not started: the daemon is stopping", kind)
                return
            self._running_jobs += 1
        try:
            self._run(kind)
        finally:
            with self._jobs:
                self._running_jobs -= 1
                self._jobs.notify_all()

    def _run(self, kind: str) -> None:
        if kind == "sync":
            run_sync(self.context)
            if self._labelled_since_retrain() >= max(
                1, self.config.prioritiser.retrain_min_new_labelled
            ):
                self._reschedule("retrain", utcnow())
        elif kind == "retrain":
            self.last_retrain = run_retrain(self.context)
            self.retrains += 1
            if self.max_retrains is not None and self.retrains >= self.max_retrains:
                self.stop()

    def retrain_or_raise(self) -> int:
        """Run one retrain cycle now; returns its id.

        Raises:
            CycleFailed: if the cycle failed, naming its stage and the error.
        """
        self._run("retrain")
        status, stage, error = cycle_outcome(self.engine, self.last_retrain)
        if status == "failed":
            failed = NEXT_STAGE.get(stage, stage)
            raise CycleFailed(self.last_retrain, failed, stage, error or "unknown error")
        return self.last_retrain

    def run_once(self) -> int:
        """Take the lock, finish interrupted pushes, run one retrain cycle, give the lock up.

        SIGTERM or SIGINT stop the cycle at its next safe point, as in `serve`.

        Returns:
            The cycle's id.

        Raises:
            DaemonLockedError: if another instance holds this database.
            CycleFailed: if the cycle failed.
            CycleStopped: if a signal stopped it first.
        """
        with self._holding():
            resume_interrupted(self.context)
            cycle_id = self.retrain_or_raise()
            status, stage, _ = cycle_outcome(self.engine, cycle_id)
            if self.context.stop.is_set() and status != "done":
                raise CycleStopped(
                    f"cycle {cycle_id} stopped by a signal at stage {stage!r}; "
                    "the next start finishes what it had begun to push"
                )
            return cycle_id

    @contextmanager
    def _holding(self) -> Iterator[None]:
        """Hold the lock (checked at every safe point) with SIGTERM/SIGINT asking a stop.

        On the way out, waits for any running job, heartbeating, then releases the lock.
        """
        acquire_lock(self.engine)
        self.context.guards.append(self._check_lock)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for sig in previous:
                signal.signal(sig, self._on_signal)
            yield
        finally:
            self.context.stop.set()
            self._wait_for_jobs()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.context.guards.remove(self._check_lock)
            release_lock(self.engine)

    def _check_lock(self) -> None:
        heartbeat(self.engine)
        check_lock(self.engine)

    def _labelled_since_retrain(self) -> int:
        settings = self.config.prioritiser
        if not settings.retrain_min_new_labelled:
            return 0
        labelled = count_labelled(self.engine, self.context.schema, settings.labelled_min_votes)
        return labelled - labelled_at_last_retrain(self.engine)

    def _reschedule(self, job_id: str, when: datetime) -> None:
        if self._scheduler is not None:
            self._scheduler.modify_job(job_id, next_run_time=when)

    def stop(self) -> None:
        """Ask the running job to stop at its next safe point, and the scheduler to stop."""
        self.context.stop.set()
        if self._scheduler is not None and self._scheduler.running:
            threading.Thread(
                target=self._scheduler.shutdown, kwargs={"wait": False}, daemon=True
            ).start()

    def _wait_for_jobs(self) -> None:
        """Block until no job runs, refreshing the lock's heartbeat meanwhile."""
        with self._jobs:
            while self._running_jobs:
                if not self._jobs.wait(timeout=HEARTBEAT_S):
                    heartbeat(self.engine)
                    logger.info("waiting for the running job to reach a safe point")

    def serve(self) -> None:
        """Take the database's lock, finish interrupted pushes, then run the schedule until stopped.

        Raises:
            DaemonLockedError: if another instance holds this database.
        """
        global _ACTIVE
        with self._holding():
            _ACTIVE = self
            try:
                resume_interrupted(self.context)
                if not self.context.stop.is_set():
                    self._scheduler = self._build_scheduler()
                    logger.info("daemon started pid=%d", os.getpid())
                    self._scheduler.start()
            finally:
                self.context.stop.set()
                self._wait_for_jobs()
                _ACTIVE = None
        logger.info("daemon stopped retrains=%d", self.retrains)

    def _on_signal(self, signum: int, frame: object) -> None:
        logger.info(
            "signal received signal=%s; stopping at the running job's next safe point",
            signal.Signals(signum).name,
        )
        self.stop()

    def _build_scheduler(self) -> BlockingScheduler:
        settings = self.config.prioritiser
        scheduler = BlockingScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(engine=self.engine, tablename="prioritiser_jobs")
            },
            # One worker for sync and retrain, so they never aggregate votes at the same time.
            executors={"default": ThreadPoolExecutor(1), "heartbeat": ThreadPoolExecutor(1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(settings.misfire_grace_s),
            },
            timezone="UTC",
        )
        now = utcnow()
        jobs = {
            "sync": (settings.sync_interval_s, now + timedelta(seconds=settings.sync_interval_s)),
            "retrain": (settings.retrain_interval_s, now),
            "heartbeat": (HEARTBEAT_S, now + timedelta(seconds=HEARTBEAT_S)),
        }
        for job_id, (interval_s, first) in jobs.items():
            scheduler.add_job(
                run_job,
                "interval",
                seconds=interval_s,
                args=[job_id],
                id=job_id,
                replace_existing=True,
                executor="heartbeat" if job_id == "heartbeat" else "default",
                next_run_time=first,
            )
        return scheduler
