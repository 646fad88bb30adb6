"""One daemon per database: a lock row with the holder's host, pid and heartbeat.

A holder on this host whose process is gone (killed with SIGKILL, say) is taken over at once;
any holder whose heartbeat is older than ``stale_after_s`` is taken over too (another host's
crashed daemon, or a pid since reused).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from panoptes_sync.store import redact_url, session_scope
from prioritiser.errors import DaemonLockedError
from prioritiser.records import DaemonLock, utcnow

__all__ = ["acquire_lock", "heartbeat", "release_lock"]

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
    me = socket.gethostname(), os.getpid()
    try:
        with session_scope(engine) as session:
            holder = session.execute(
                select(DaemonLock).where(DaemonLock.name == LOCK_NAME).with_for_update()
            ).scalar()
            if holder is not None and (holder.hostname, holder.pid) != me:
                if _is_live(holder, me[0], now, stale_after_s):
                    raise DaemonLockedError(_locked_message(holder, engine))
                session.delete(holder)
                session.flush()
            if holder is None or (holder.hostname, holder.pid) != me:
                session.add(DaemonLock(name=LOCK_NAME, hostname=me[0], pid=me[1], heartbeat_at=now))
    except IntegrityError as error:
        raise DaemonLockedError(
            f"another prioritiser daemon took {redact_url(str(engine.url))} at the same moment; "
            "stop it first (SIGTERM), or point this one at another database"
        ) from error


def _is_live(holder: DaemonLock, hostname: str, now: datetime, stale_after_s: float) -> bool:
    heartbeat_at = holder.heartbeat_at
    if heartbeat_at.tzinfo is None:
        heartbeat_at = heartbeat_at.replace(tzinfo=now.tzinfo)
    fresh = now - heartbeat_at < timedelta(seconds=stale_after_s)
    return fresh and (holder.hostname != hostname or _alive(holder.pid))


def _locked_message(holder: DaemonLock, engine: Engine) -> str:
    return (
        f"another prioritiser daemon (pid {holder.pid} on {holder.hostname}, "
        f"last heartbeat {holder.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC) already runs on "
        f"{redact_url(str(engine.url))}; stop it first (SIGTERM), or point this one at another "
        "database"
    )


def heartbeat(engine: Engine, now: datetime | None = None) -> None:
    """Refresh this process's heartbeat."""
    with session_scope(engine) as session:
        lock = session.get(DaemonLock, LOCK_NAME)
        if lock is not None and lock.pid == os.getpid():
            lock.heartbeat_at = now or utcnow()


def release_lock(engine: Engine) -> None:
    """Give the database up, if this process holds it."""
    with session_scope(engine) as session:
        session.execute(
            delete(DaemonLock).where(DaemonLock.name == LOCK_NAME, DaemonLock.pid == os.getpid())
        )
