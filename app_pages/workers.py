"""Workers: distributed mode's workers, queue depth and tasks in flight (admin only).

The same view as `connectbatch workers`: which workers answered Celery's inspect, what each
runs, how many tasks wait in Redis and how many a worker took without acknowledging yet, and
which coordinator holds the scheduling lock. In embedded mode there is nothing to show.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from connectbatch import escaping, webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.models import Role


def worker_rows(workers: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "Worker": escaping.visible(w.name),
            "Running": w.active,
            "Reserved": w.reserved,
            "Tasks": ", ".join(escaping.visible(t) for t in w.tasks) or "-",
        }
        for w in workers
    ]


def render() -> None:
    st.title("Workers")
    services = webapp.services()
    if services.user is None or services.user.role is not Role.ADMIN:
        st.error("Only an admin may see the workers.")
        return
    settings = services.settings
    if settings.mode != "distributed":
        st.info("Embedded mode (CONNECTBATCH_MODE=embedded): this process does all the work; no workers.")
        return
    from connectbatch.distributed.workers import overview

    st.caption("Celery workers on Redis, as `connectbatch workers` shows them.")
    try:
        view = overview(settings, timeout=1.0)
    except ConnectBatchError as exc:  # Redis down: say so, the page must not crash
        st.error(escaping.visible(str(exc)))
        return
    cols = st.columns(3)
    cols[0].metric("Workers", len(view.workers))
    cols[1].metric("Queue depth", view.queue_depth)
    cols[2].metric("In flight", view.in_flight)
    st.write(f"Coordinator: {escaping.visible(view.coordinator or 'none running')}")
    if view.workers:
        st.dataframe(worker_rows(view.workers), hide_index=True, width="stretch")
    else:
        st.warning("No worker answered within a second.")


if __name__ == "__main__":
    render()
