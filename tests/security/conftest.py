"""The security tier: each test is an attack or a fault tried the way an attacker, a careless
partner or a full disk would, against real servers and a real data directory.

It reuses the integration tier's fixtures (a data directory reached through `Services`) and
its server helpers (`sshd`, `ftpd`, `dovecot` modules), so both tiers start servers one way.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS, TESTS / "integration"):  # `import helpers`, `import ftpd`, ...
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

_spec = importlib.util.spec_from_file_location("_integration_fixtures", TESTS / "integration" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
globals().update({name: value for name, value in vars(_fixtures).items() if not name.startswith("_")})


from helpers.app_login import PASSWORD  # noqa: E402 (after the path set-up)
from helpers.clock import Clock  # noqa: E402

from connectbatch.models import Role  # noqa: E402
from connectbatch.services import Services  # noqa: E402
from connectbatch.settings import Settings  # noqa: E402


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def timed(settings: Settings, clock: Clock) -> Services:
    """Services on a clock the test moves, with the analyst "ada" (logins, sessions)."""
    services = Services(settings, clock=clock)
    services.add_user("ada", Role.ANALYST, PASSWORD)
    return services
