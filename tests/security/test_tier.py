"""The security tier finds the integration tier's fixtures."""

from __future__ import annotations

from connectbatch.services import Services


def test_the_integration_fixtures_are_shared(services: Services) -> None:
    assert services.connections() == []
