"""The engine warms validation when it starts (`connectbatch serve` and the app both start
one), so the first file after a restart pays no imports (issue 13)."""

from __future__ import annotations

from connectbatch import schemas
from connectbatch.engine import Engine
from connectbatch.services import Services
from connectbatch.settings import Settings


def test_starting_the_engine_warms_validation_of_every_data_type(settings: Settings) -> None:
    engine = Engine(Services(settings))
    assert engine.warming is None and engine.warmed == []
    engine.start(servers=False)
    try:
        assert engine.warming is not None
        engine.warming.join(timeout=120)
        assert not engine.warming.is_alive()
        assert engine.warmed == list(schemas.REGISTRY)
        first = engine.warming
        engine.stop()
        engine.start(servers=False)  # the app restarts without servers after a bind error
        assert engine.warming is first  # once per engine
    finally:
        engine.stop()
