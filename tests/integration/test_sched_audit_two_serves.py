"""Two `connectbatch serve` processes on one data folder (a second one started by mistake, or
`serve` beside the app's engine): only one of them schedules. Real processes, a real port
nothing listens on (each pull fails at once, a Failed run a person sees).

Both used to run every cron job: each scheduled time gave two runs (two listings of the
partner's server, two Failed runs a minute for a server that was down), and a connection
made by another process was never scheduled by either until a restart."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.clock import Clock
from helpers.ports import free_port

from connectbatch.models import Connection, Direction, Method, Methodology
from connectbatch.services import CredentialInput, Services
from connectbatch.settings import Settings
from connectbatch.transfer.specs import FtpSpec, FtpTls

REPO = Path(__file__).resolve().parents[2]


def ftp_pull(home: Path, name: str, port: int, schedule: str, made: dt.timedelta) -> Connection:
    """An FTP pull made `made` ago (an hourly one made hours ago missed a scheduled time: an
    engine that starts scheduling runs it once), to a port nothing listens on."""
    services = Services(Settings(home=home), clock=Clock(dt.datetime.now(dt.UTC) - made))
    draft = Connection(
        name, "call_conversions", Direction.INBOUND, Method.FTP, Methodology.PULL,
        host="127.0.0.1", port=port, folder="/", pattern="*.csv", schedule=schedule,
        transfer=FtpSpec(tls=FtpTls.NONE),
    )  # fmt: skip
    created, _ = services.create_connection(draft, CredentialInput("partner", "bob", "pw-never-used-1"))
    return created


class Serve:
    """One `connectbatch serve --no-servers` process, its output in files."""

    def __init__(self, home: Path, tag: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
        env.update(PYTHONPATH=str(REPO), CONNECTBATCH_HOME=str(home))
        self.out = home.parent / f"serve-{tag}.out"
        self.err = home.parent / f"serve-{tag}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "connectbatch", "serve", "--no-servers"],
                env=env,
                stdout=out,
                stderr=err,
            )

    def log(self) -> str:
        return self.err.read_text(errors="replace")

    def serving(self) -> bool:
        return "serving" in self.out.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def serves(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for s in started:
        s.stop()


def runs_of(home: Path, connection_id: int) -> int:
    return len(Services(Settings(home=home)).runs(connection_id))


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.25)
    return False


def test_only_one_of_two_serves_schedules_and_the_other_takes_over_when_it_stops(
    tmp_path: Path, serves: list[Serve]
) -> None:
    home = tmp_path / "home"
    port = free_port()
    while dt.datetime.now(dt.UTC).second > 45:  # the minute's run and the check fit before the next
        time.sleep(1)
    first = ftp_pull(home, "Partner FTP", port, "* * * * *", dt.timedelta(0))

    serves.extend([Serve(home, "a"), Serve(home, "b")])
    assert wait_for(lambda: all(s.serving() for s in serves), 60), [s.log() for s in serves]
    assert wait_for(lambda: runs_of(home, first.id) >= 1, 75)  # the next minute
    time.sleep(8)  # time for the other engine's run of that minute, had it scheduled too

    assert runs_of(home, first.id) == 1  # one run for the minute, not one per serve
    assert Services(Settings(home=home)).connection_events(first.id) == []  # no skipped trigger
    standing = [s for s in serves if "stands by" in s.log()]
    assert len(standing) == 1, [s.log()[-2000:] for s in serves]
    (leader,) = [s for s in serves if s is not standing[0]]

    second = ftp_pull(home, "Partner FTP 2", port, "0 * * * *", dt.timedelta(hours=3))
    leader.stop()  # the one standing by schedules from now on, missed times caught up once
    assert wait_for(lambda: runs_of(home, second.id) == 1, 30), standing[0].log()[-3000:]
    time.sleep(2)
    assert runs_of(home, second.id) == 1
    assert standing[0].process.poll() is None
