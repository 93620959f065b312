"""The start-up warm-up validates every data type's template (issue 13: no imports on the
first ingest after a start)."""

from __future__ import annotations

from connectbatch import schemas
from connectbatch.pipeline.validation.warm import warm_up


def test_the_warm_up_validates_every_data_type_template() -> None:
    assert warm_up() == list(schemas.REGISTRY)
