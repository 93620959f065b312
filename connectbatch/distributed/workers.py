"""What the workers are doing: names, queue depth and tasks in flight (CLI and admin screen).

Workers answer Celery's `inspect` broadcast (`active`, `reserved`); the queue depth is the
length of the broker's Redis list. A worker that does not answer within the timeout is not
listed: it is busy beyond reach or gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from connectbatch.distributed.app import QUEUE, make_app
from connectbatch.errors import TransportError
from connectbatch.settings import Settings


@dataclass
class WorkerInfo:
    name: str
    active: int  # tasks running now
    reserved: int  # tasks taken but not started (prefetch)
    tasks: list[str] = field(default_factory=list)  # names of the running tasks


@dataclass
class Overview:
    workers: list[WorkerInfo]
    queue_depth: int  # tasks waiting in Redis for a worker
    in_flight: int  # tasks a worker has taken and not acknowledged
    coordinator: str | None  # who holds the coordinator lock

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": [vars(w) for w in self.workers],
            "queue_depth": self.queue_depth,
            "in_flight": self.in_flight,
            "coordinator": self.coordinator,
        }


def redis_address(url: str) -> str:
    """host:port of a Redis URL, without the password it may hold."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def overview(settings: Settings, timeout: float = 1.0) -> Overview:
    """Ask Redis, then the workers (TransportError, readable, when Redis is unreachable)."""
    import redis

    from connectbatch.distributed.coordinator import LOCK_KEY

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:  # Redis first: Celery would retry an unreachable broker for a long while
        depth = int(client.llen(QUEUE))
        in_flight = int(client.hlen("unacked"))
        holder = client.get(LOCK_KEY)
    except redis.RedisError as exc:
        raise TransportError(
            f"Redis cannot be reached at {redis_address(settings.redis_url)}: {exc}"
        ) from None
    finally:
        client.close()
    app = make_app(settings)
    try:
        inspector = app.control.inspect(timeout=timeout)
        active: dict[str, list[dict[str, Any]]] = inspector.active() or {}
        reserved: dict[str, list[dict[str, Any]]] = inspector.reserved() or {}
    finally:
        app.close()
    names = sorted(set(active) | set(reserved))
    workers = [
        WorkerInfo(
            name,
            len(active.get(name, [])),
            len(reserved.get(name, [])),
            [str(t.get("name", "")) for t in active.get(name, [])],
        )
        for name in names
    ]
    return Overview(workers, depth, in_flight, holder.decode() if isinstance(holder, bytes) else None)
