"""Run an iterator ahead in a background thread, so producing and consuming overlap.

Aggregating an export alternates Arrow CSV parsing with numpy counting; both release the GIL for
their heavy loops, so on two cores a reader thread hides most of one behind the other.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")

#: Seconds between checks, while waiting to hand over an item, whether the consumer stopped.
_POLL_S = 0.1


class _Done:
    """End of the items (``error`` is what the producer raised, if anything)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order while a background thread computes up to ``depth`` of them ahead.

    Args:
        items: the iterator to run ahead; it is advanced only in the background thread.
        depth: most items held ready (bounds the memory used).

    Yields:
        The items of ``items``.

    Raises:
        Exception: whatever ``items`` raised, re-raised in the consumer.
    """
    ready: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def hand_over(item: T | _Done) -> bool:
        while not stopped.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            hand_over(_Done(error))
            return
        hand_over(_Done())

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stopped.set()
        thread.join()
