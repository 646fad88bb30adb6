"""One daemon per database: a lock row with the holder's host, pid and heartbeat.

A holder on this host whose process is gone (killed with SIGKILL, say) is taken over at once;
any holder whose heartbeat is older than ``stale_after_s`` is taken over too (another host's
crashed daemon, or a pid since reused). The holder keeps its heartbeat while any job runs,
shutdown included, and checks that it still holds the lock before every push write.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from panoptes_sync.store import redact_url
from prioritiser.errors import DaemonLockedError
from prioritiser.records import utcnow
from prioritiser.store import (
    LockHolder,
    claim_lock,
    lock_holder,
    release_lock_row,
    touch_lock,
)

__all__ = ["acquire_lock", "check_lock", "heartbeat", "release_lock"]

LOCK_NAME = "daemon"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(engine: Engine, stale_after_s: float = 120.0, now: datetime | None = None) -> None:
    """Take the database for this process.

    A holder counts as live while its heartbeat is fresh and, on this host, its process exists.

    Raises:
        DaemonLockedError: if a live instance holds it (or took it at the same moment), naming it.
    """
    now = now or utcnow()
    hostname = socket.gethostname()

    def is_live(holder: LockHolder) -> bool:
        return _is_live(holder, hostname, now, stale_after_s)

    try:
        holder = claim_lock(engine, LOCK_NAME, hostname, os.getpid(), now, is_live)
    except IntegrityError as error:
        raise DaemonLockedError(
            f"another prioritiser daemon took {redact_url(str(engine.url))} at the same moment; "
            "stop it first (SIGTERM), or point this one at another database"
        ) from error
    if holder is not None:
        raise DaemonLockedError(_locked_message(holder, engine))


def _is_live(holder: LockHolder, hostname: str, now: datetime, stale_after_s: float) -> bool:
    heartbeat_at = holder.heartbeat_at
    if heartbeat_at.tzinfo is None:
        heartbeat_at = heartbeat_at.replace(tzinfo=now.tzinfo)
    fresh = now - heartbeat_at < timedelta(seconds=stale_after_s)
    return fresh and (holder.hostname != hostname or _alive(holder.pid))


def _locked_message(holder: LockHolder, engine: Engine) -> str:
    return (
        f"another prioritiser daemon (pid {holder.pid} on {holder.hostname}, "
        f"last heartbeat {holder.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC) already runs on "
        f"{redact_url(str(engine.url))}; stop it first (SIGTERM), or point this one at another "
        "database"
    )


def heartbeat(engine: Engine, now: datetime | None = None) -> None:
    """Refresh this process's heartbeat."""
    touch_lock(engine, LOCK_NAME, os.getpid(), now or utcnow())


def check_lock(engine: Engine) -> None:
    """Check that this process still holds the database (before each push action).

    Raises:
        DaemonLockedError: if the lock is gone or another process holds it.
    """
    holder = lock_holder(engine, LOCK_NAME)
    if holder is None or (holder.hostname, holder.pid) != (socket.gethostname(), os.getpid()):
        taker = "nobody" if holder is None else f"pid {holder.pid} on {holder.hostname}"
        raise DaemonLockedError(
            f"this daemon (pid {os.getpid()}) no longer holds {redact_url(str(engine.url))} "
            f"({taker} does); stopping before the next write"
        )


def release_lock(engine: Engine) -> None:
    """Give the database up, if this process holds it."""
    release_lock_row(engine, LOCK_NAME, os.getpid())
