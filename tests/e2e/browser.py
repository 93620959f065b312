"""Real-browser harness: the app under `streamlit run` on a free port, driven by Debian's Chromium.

* `streamlit_app(home)` adds the browser's logins (LOGIN_NAME, an admin, and PARTNER_NAME, a
  partner manager) and loads the demo into a fresh data directory (in a subprocess, so this
  process holds no database handle), starts `streamlit run streamlit_asgi.py` (the app's server,
  as `make run` does; the app is streamlit_app.py) in its own process
  group with CONNECTBATCH_HOME pointing there and the hosted SFTP/FTP servers on free ports,
  waits for `/_stcore/health`, and stops the whole group at the end.
* `chromium()` launches /usr/bin/chromium through Playwright's Python package
  (`executable_path`): nothing is downloaded, `playwright install` is never needed.
* `open_path` (which logs in through the real form when the app asks), `wait_rendered` and
  `screenshot` are what a test or scripts/screenshots.py uses.

The pytest fixtures at the bottom (`streamlit_server`, `chromium_browser`, `app_page`) are
re-exported by the test module; every test's page is screenshotted into
test-artifacts/screenshots/ when the test ends, passed or failed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page, ViewportSize

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "tests") not in sys.path:  # `helpers` when scripts/ and bench/ import this harness
    sys.path.insert(0, str(REPO / "tests"))

from helpers.ports import free_port  # noqa: E402

CHROMIUM = Path(os.environ.get("CONNECTBATCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
STARTUP_SECONDS = 60
RENDER_MS = 30_000  # the first view of a page imports pyarrow, DuckDB and Great Expectations

APP_ROOT = '[data-testid="stApp"]'
EXCEPTION = '[data-testid="stException"]'
RUNNING_ICON = '[data-testid="stStatusWidgetRunningIcon"], [data-testid="stStatusWidgetRunningManIcon"]'

# The logins the browser uses (every page is behind the login form): an admin sees every page.
LOGIN_NAME = "browser"
PARTNER_NAME = "browser-partner"  # a partner manager: Call data and Pending actions only
LOGIN_PASSWORD = "browser test password"

# Run by a fresh interpreter: the demo's database is closed when it exits.
LOAD_DEMO = """
import sys
from pathlib import Path
from connectbatch import demo
from connectbatch.models import Role
from connectbatch.services import Services
from connectbatch.settings import Settings
services = Services(Settings(home=Path(sys.argv[1]), sftp_port=0, ftp_port=0))
for name, role in ((sys.argv[3], Role.ADMIN), (sys.argv[4], Role.PARTNER_MANAGER)):
    if services.current_user(name) is None:
        services.add_user(name, role, sys.argv[5])
if sys.argv[2] == "demo":
    demo.load(services)
"""


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is not installed: `make test` installs Debian's chromium package "
            "(or: scripts/ensure-debian-packages.sh chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright's Python package is not installed: pip install -e '.[dev]'"
    return None


def app_environment(home: Path, sftp_port: int = 0, ftp_port: int = 0) -> dict[str, str]:
    """The environment of the app (and of the demo loader): its own data directory, the hosted
    servers on the given ports (0: any free one), no mailbox to poll."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECTBATCH_")}
    env.update(
        CONNECTBATCH_HOME=str(home),
        CONNECTBATCH_SFTP_PORT=str(sftp_port),
        CONNECTBATCH_FTP_PORT=str(ftp_port),
        PYTHONUNBUFFERED="1",
    )
    return env


def load_demo(home: Path, demo: bool = True) -> None:
    """The browser's logins and (unless demo=False) the demo connections and runs, in `home`."""
    which = "demo" if demo else "no-demo"
    done = subprocess.run(
        [sys.executable, "-c", LOAD_DEMO, str(home), which, LOGIN_NAME, PARTNER_NAME, LOGIN_PASSWORD],
        cwd=REPO,
        env=app_environment(home),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"loading the demo failed:\n{done.stdout}\n{done.stderr}")


@dataclass
class StreamlitApp:
    url: str
    home: Path
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the app's process group (streamlit and anything it started), by its id."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _start(home: Path, log: Path, hosted_ports: bool) -> StreamlitApp:
    port = free_port()
    # The hosted SFTP/FTP servers on free ports we know, so that the provisioned credentials
    # the app shows name a port a test can log in to (with 0 they bind one it cannot tell).
    sftp, ftp = (free_port(), free_port()) if hosted_ports else (0, 0)
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "streamlit", "run", "streamlit_asgi.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # a page edited meanwhile must not prompt a rerun
        "--client.toolbarMode", "minimal",  # no Deploy button in the screenshots
    ]  # fmt: skip
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=app_environment(home, sftp, ftp),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
    app = StreamlitApp(url, home, process, log)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{app.log_tail()}")
        if _healthy(url):
            return app
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError(
        f"streamlit did not answer {url}/_stcore/health in {STARTUP_SECONDS} s:\n{app.log_tail()}"
    )


@contextlib.contextmanager
def streamlit_app(
    home: Path, *, demo: bool = True, hosted_ports: bool = True, log: Path | None = None
) -> Iterator[StreamlitApp]:
    """The app on 127.0.0.1:<free port> over `home`, with the demo loaded unless demo=False
    and its hosted SFTP/FTP servers on free ports (hosted_ports=False: on port 0)."""
    home.mkdir(parents=True, exist_ok=True)
    load_demo(home, demo)
    log = log or home.parent / "streamlit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"")
    app = None
    for attempt in range(3):  # a free port can be taken between asking and binding
        try:
            app = _start(home, log, hosted_ports)
            break
        except RuntimeError as exc:
            if attempt == 2 or "already in use" not in str(exc):
                raise
    assert app is not None
    try:
        yield app
    finally:
        _stop(app.process)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=60_000
        )
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, app: StreamlitApp) -> Page:
    context = browser.new_context(viewport=VIEWPORT, base_url=app.url)
    context.set_default_timeout(RENDER_MS)
    return context.new_page()


def wait_rendered(page: Page, timeout: float = RENDER_MS) -> None:
    """Until Streamlit is connected and its script run has finished drawing."""
    page.locator(f'{APP_ROOT}[data-test-connection-state="CONNECTED"]').wait_for(timeout=timeout)
    page.locator(f'{APP_ROOT}[data-test-script-state="notRunning"]').wait_for(timeout=timeout)
    page.locator(RUNNING_ICON).first.wait_for(state="hidden", timeout=timeout)
    page.wait_for_timeout(150)  # the last deltas of the run reach the DOM
    page.locator(f'{APP_ROOT}[data-test-script-state="notRunning"]').wait_for(timeout=timeout)


def log_in(page: Page, name: str = LOGIN_NAME, password: str = LOGIN_PASSWORD) -> None:
    """Log in through the app's login form (shown at every address until one logs in)."""
    from playwright.sync_api import expect

    page.locator(".st-key-login_name input").fill(name)
    field = page.locator(".st-key-login_password input")
    field.fill(password)
    field.press("Enter")  # submits the form with both values committed
    # Until the form is gone (logged in) or says why not.
    expect(
        page.locator('[data-testid="stSidebarNav"], [data-testid="stAlertContentError"]').first
    ).to_be_visible()
    wait_rendered(page)


LOGIN_FIELD = ".st-key-login_password input"


def login_shown(page: Page) -> bool:
    return page.locator(LOGIN_FIELD).count() > 0


def open_path(page: Page, path: str, name: str = LOGIN_NAME) -> None:
    """Open the page at url path `path` ("connections", "call-data", "" for the default),
    logging in as `name` through the form when it asks (a new address is a new session)."""
    from playwright.sync_api import expect

    page.goto("/" + path.lstrip("/"))
    wait_rendered(page)
    # The first script run may not have started yet: until the login form or a page shows.
    expect(page.locator(f'{LOGIN_FIELD}, [data-testid="stSidebarNav"]').first).to_be_visible()
    if login_shown(page):
        log_in(page, name)


def screenshot(page: Page, name: str, folder: Path = SCREENSHOTS) -> Path:
    """Save what the browser shows as <folder>/<name>.png."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')}.png"
    page.screenshot(path=str(path), animations="disabled")
    return path


def click(page: Page, key: str) -> None:
    """Press the button with Streamlit key `key` and wait for the rerun it starts."""
    page.locator(f".st-key-{key} button").click()
    wait_rendered(page)


def choose(page: Page, key: str, label: str) -> None:
    """Pick the option `label` of the radio with Streamlit key `key`."""
    page.locator(f".st-key-{key}").get_by_text(label, exact=True).click()
    wait_rendered(page)


def type_into(page: Page, key: str, text: str) -> None:
    """Replace the text of the input with Streamlit key `key` and submit it (Enter)."""
    field = page.locator(f".st-key-{key} input")
    field.fill(text)
    field.press("Enter")
    wait_rendered(page)


def connection_row(page: Page, name: str) -> Locator:
    """On the Connections list: search for `name` and return its (one) row."""
    from playwright.sync_api import expect

    type_into(page, "search", name)
    row = page.locator('[class*="st-key-row_"]').filter(has_text=name)
    expect(row).to_have_count(1)
    return row


def exception_texts(page: Page) -> list[str]:
    """The Streamlit exception boxes on the page (a traceback a user would see)."""
    return page.locator(EXCEPTION).all_inner_texts()


# --------------------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session")
def streamlit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    """One app for the session, on a demo data directory of its own."""
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("browser") / "home"
    # One log per pytest-xdist worker: each worker runs its own server.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    with streamlit_app(
        home, log=ARTIFACTS / (f"streamlit-{worker}.log" if worker else "streamlit.log")
    ) as app:
        yield app


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Browser]:
    reason = missing_browser()
    if reason:
        pytest.skip(reason)
    with chromium() as browser:
        yield browser


@pytest.fixture
def app_page(
    chromium_browser: Browser, streamlit_server: StreamlitApp, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A fresh browser context (own Streamlit session) per test; its screenshot at the end."""
    page = new_page(chromium_browser, streamlit_server)
    try:
        yield page
    finally:
        with contextlib.suppress(Exception):
            screenshot(page, request.node.name)
        page.context.close()
