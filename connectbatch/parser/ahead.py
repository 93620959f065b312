"""Items produced ahead on a thread of their own, handed over in order through a bounded
queue: the read-ahead of a one-thread parse (`decode.read_ahead`) and the streamed batches
(`batches`), which each had their own copy of this hand-over."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

__all__ = ["produced_ahead"]

T = TypeVar("T")


def produced_ahead(make: Callable[[threading.Event], Iterator[T]], depth: int, name: str) -> Iterator[T]:
    """The items of `make(stop)`, produced up to `depth` ahead on a thread named `name`; an
    error there is raised here, in order. The producer ends with its items, or within 0.1 s
    of the consumer giving up (an error, a closed generator: `stop` is set, and `make`'s
    iterator may watch it too), and is waited for: never left blocked."""
    handoff: queue.Queue[T | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: T | BaseException | None) -> bool:
        """Hand `item` over; False once the consumer gave up."""
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in make(stop):
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(None)

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while (got := handoff.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            yield got
            del got
    finally:
        stop.set()
        producer.join()
