"""A distributed worker's pull deadline (`tasks.pull_deadline`): CONNECTBATCH_PULL_DEADLINE,
kept under the broker's visibility timeout, past which Redis delivered the task again to
another worker while the first still ran it (the integration test shows it against real
servers: test_distributed_pull_deadline)."""

from __future__ import annotations

import pytest

from connectbatch.distributed.tasks import pull_deadline
from connectbatch.settings import Settings


@pytest.mark.parametrize(
    ("visibility", "deadline", "expected"),
    [(90, 7200.0, 60.0), (90, 30.0, 30.0), (6, 60.0, 4.0), (7300, 7200.0, 7200.0), (9000, 9000.0, 8940.0)],
)
def test_a_workers_pull_deadline_stays_under_the_visibility_timeout(
    visibility: int, deadline: float, expected: float
) -> None:
    """A third of the visibility timeout (at most a minute) is kept for the pull's end."""
    seconds, reason = pull_deadline(Settings(visibility_timeout=visibility, pull_deadline=deadline))
    assert seconds == expected
    assert reason.startswith(f"timed out: the pull was still going after {expected:g} s")
    assert ("CONNECTBATCH_VISIBILITY_TIMEOUT" in reason) is (expected < deadline)
