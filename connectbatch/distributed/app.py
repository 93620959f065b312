"""The Celery application both sides share: broker and result backend in Redis.

Delivery settings, and why:
- `task_acks_late` + `task_reject_on_worker_lost`: a task is acknowledged when it finished,
  so a worker killed mid-task (its pool child, or the whole worker) leaves it to run again;
- `worker_prefetch_multiplier=1`: a worker holds one task beyond those it runs, so a killed
  worker strands little and a busy one does not hoard the queue;
- broker `visibility_timeout` = CONNECTBATCH_VISIBILITY_TIMEOUT (600 s by default, not
  Redis' one hour): a task a dead worker had taken is delivered again after that long plus
  the sweep interval (at most 10 s, not kombu's default 100 s). As a worker's pull is cut
  under it, it is also the longest pull in this mode (90 s, the default before, cut every
  download longer than a minute).
  It must stay above the longest task, or a slow task runs twice at once: a parse is
  harmless (its output is rewritten the same and loaded once, but wasted work); a pull is
  cut before it (`tasks.pull_deadline`), as one held by a trickling server was delivered
  again and again until it held every worker;
- JSON only: payloads are sealed tokens (`sealed`), never pickles of secrets in Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectbatch.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

QUEUE = "connectbatch"
PULL_TASK = "connectbatch.pull"
PARSE_TASK = "connectbatch.parse"


def make_app(settings: Settings) -> Celery:
    """A Celery app for this installation's Redis (imported here only: embedded mode never)."""
    from celery import Celery

    app = Celery("connectbatch", broker=settings.redis_url, backend=settings.redis_url)
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        # kombu sweeps for expired unacknowledged tasks every interval x throttle seconds,
        # 10 x 10 by default: at most 10 s here, so redelivery waits the timeout plus <= 10 s
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
    }
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        task_default_queue=QUEUE,
        result_expires=24 * 3600,
        task_track_started=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        worker_send_task_events=False,
        include=["connectbatch.distributed.tasks"],
    )
    return app
