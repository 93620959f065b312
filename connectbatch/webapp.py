"""The app's one engine per process: Streamlit reruns scripts, this object stays.

Pages get `services()` from here and call nothing else of the core. The engine (scheduler,
hosted servers, mailbox polling) starts with the first page view; a server that cannot
start (port taken) is reported on the page instead of breaking the app.

The login: `log_in` keeps the user and the moment in the session (server side: a browser
cannot set Streamlit session state), `session_user` gives them back while the session lasts
(CONNECTBATCH_SESSION_HOURS), and `services()` is bound to that user, so every call a page
makes is checked against the user's role in the service layer. Without a login it refuses.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from connectbatch import escaping
from connectbatch.engine import Engine
from connectbatch.models import User
from connectbatch.services import PermissionDeniedError, Services

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

log = logging.getLogger("connectbatch.webapp")


def app_logging() -> logging.Handler:
    """The app's log: ConnectBatch's records on stderr (the terminal of `make run`), one line
    each whatever partners put in file names (Streamlit configures only its own loggers, so
    without this our records would reach Python's last-resort handler unescaped)."""
    logger = logging.getLogger("connectbatch")
    for handler in logger.handlers:
        if any(isinstance(f, escaping.EscapingFilter) for f in handler.filters):
            return handler
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(escaping.EscapingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a record comes (as logging's last-resort
    handler does), not to the stream that was current when the app first started."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


# What the screens import that the router and the login form do not (about a second together):
# imported in the background while the first visitor logs in, so that the first view of
# Validation, Call data or a connection's history after the app starts does not pay for it.
# (Altair is no longer one: the charts are HTML drawn on the server, app_pages/_charts.py.)
WARM_IMPORTS = ("pandas", "connectbatch.pipeline.review", "connectbatch.triage")


def warm_imports(modules: tuple[str, ...] = WARM_IMPORTS) -> threading.Thread:
    """Import `modules` in a daemon thread (Python's import lock makes a page that imports one
    meanwhile wait for it rather than import it twice); a failure is only logged."""

    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the page that needs it will say what is wrong
                log.exception("warming up: importing %s failed", name)

    thread = threading.Thread(target=run, name="connectbatch-app-warm-imports", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def engine() -> tuple[Engine, str | None]:
    """(the engine, a problem to show or None)."""
    app_logging()
    warm_imports()
    services = Services()
    # as every command and `serve` do at start: a data directory that cannot be written, a
    # secret key that is no key, a missing expectations folder, named now in words
    # (streamlit_app.py) instead of a DuckDB error or a failed credential save later
    services.settings.check_usable()
    eng = Engine(services, services.settings.mailbox)
    if services.settings.mode == "distributed":  # `serve --coordinator` schedules and serves
        return eng, None
    try:
        eng.start()
        return eng, None
    except OSError as exc:
        log.exception("engine start failed")
        eng.stop()
        eng.start(servers=False)
        return eng, f"the hosted SFTP/FTP servers did not start: {exc}"


USER_KEY = "auth_user"  # the logged-in User, re-read from the database on every page view
SINCE_KEY = "auth_since"  # time.time() of the login
OWNER_KEY = "auth_owner"  # the name of the last person logged in to this tab: whose state it holds


def operator_services() -> Services:
    """The services with no user bound: only for logging in and re-reading who is logged in."""
    return engine()[0].services


def services() -> Services:
    """The services acting for the logged-in user; PermissionDeniedError without a login."""
    user = session_user()
    if user is None:
        raise PermissionDeniedError("log in first: your session ended or you are not logged in")
    return engine()[0].services.as_user(user)


def log_in(user: User, now: float | None = None) -> None:
    """Log `user` in to this browser tab's session. What another person left in it (a wizard
    draft with the partner's password they typed, forms, filters, picks) is dropped first: log
    out and a session's end keep the state, so that the same person finds their work again."""
    state = st.session_state
    if state.get(OWNER_KEY, user.name) != user.name:
        for key in list(state.keys()):
            del state[key]
    state[OWNER_KEY] = user.name
    st.session_state[USER_KEY] = user
    st.session_state[SINCE_KEY] = time.time() if now is None else now


def log_out() -> None:
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(SINCE_KEY, None)


def session_expired() -> bool:
    since = st.session_state.get(SINCE_KEY)
    if not isinstance(since, float | int):
        return True
    hours = engine()[0].services.settings.session_hours
    return time.time() - float(since) > hours * 3600


def session_user() -> User | None:
    """The logged-in user while the session lasts, else None."""
    user = st.session_state.get(USER_KEY)
    if not isinstance(user, User) or session_expired():
        return None
    return user


# ------------------------------------------------------------------ the server's page addresses

# Put in front of Streamlit's own script in index.html: the backend is the folder the page's
# address is in (http://host/validation -> http://host/; behind a proxy that serves the app
# under /cb/, http://host/cb/validation -> http://host/cb/). That is the second of the two
# addresses Streamlit's browser code would try; it asks the page's own address first
# (/validation/_stcore/health: 404), then waits 100 ms before it asks that one.
BACKEND_SCRIPT = (
    '<script>window.__streamlit = {BACKEND_BASE_URL: new URL(".", window.location.href).href};</script>'
)

# Streamlit's browser code fetches an element's code (a JavaScript module and the modules it
# imports, one level of imports after another) the first time a page shows such an element,
# after the script run that sent it. In a new browser session the login form's text field (19
# modules) came 150-300 ms after the form's run had ended, and the sidebar's Log out button
# after the login's run. index.html names these modules next to Streamlit's own, so the browser
# fetches and compiles them while it starts Streamlit. (The screens' tables and pickers, 1.5 MB,
# were tried too: fetched while the login form was drawn or submitted they slowed the login
# more than they sped up the screen on this 2-core machine.)
PRELOADED_ELEMENTS = ("TextInput", "Button")
_IMPORT = re.compile(r'(?:from|import)\s*"\./([\w.$-]+\.js)"')  # static; import("...") is not one


def element_modules(js_dir: Path, elements: tuple[str, ...], known: set[str]) -> list[str]:
    """The file names of the modules the `elements` (Streamlit's names: "TextInput") need, in
    js_dir: each element's own module and what it imports, recursively, except `known` (those
    index.html names already). An element this Streamlit does not have is left out."""
    found: list[str] = []
    todo = [m.name for e in elements for m in sorted(js_dir.glob(f"{e}.*.js")) if m.name.count(".") == 2]
    seen = set(known)
    while todo:
        name = todo.pop(0)
        if name in seen or not (js_dir / name).is_file():
            continue
        seen.add(name)
        found.append(name)
        todo += _IMPORT.findall((js_dir / name).read_text(encoding="utf-8", errors="replace"))
    return found


def index_html() -> str:
    """Streamlit's index.html with BACKEND_SCRIPT at the start of its head and the modules of
    PRELOADED_ELEMENTS at its end."""
    static = Path(st.__file__).parent / "static"
    html = (static / "index.html").read_text(encoding="utf-8")
    known = set(re.findall(r"\./static/js/([\w.$-]+\.js)", html))
    modules = element_modules(static / "static" / "js", PRELOADED_ELEMENTS, known)
    links = "".join(f'<link rel="modulepreload" crossorigin href="./static/js/{m}">\n' for m in modules)
    head, end = html.index("<head>") + len("<head>"), html.index("</head>")
    return html[:head] + BACKEND_SCRIPT + html[head:end] + links + html[end:]


def page_routes(url_paths: list[str]) -> list[Route]:
    """Routes that answer the app's root and page addresses (/, /validation, ...) with
    index_html(), for streamlit_asgi.py; none when Streamlit serves under a base path of its
    own, whose addresses these would not match anyway. Everything else stays Streamlit's."""
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    if str(st.config.get_option("server.baseUrlPath") or "").strip("/"):
        return []
    body = index_html()

    async def page(_request: Request) -> HTMLResponse:
        # As Streamlit serves index.html: never cached, so a new Streamlit is picked up.
        return HTMLResponse(body, headers={"Cache-Control": "no-cache"})

    return [Route(f"/{path}", page, methods=["GET", "HEAD"]) for path in ["", *url_paths]]


# ------------------------------------------------------------------ framing

# Every answer of the app's server says it may be shown in a frame of its own pages only
# (Streamlit's components are same-origin frames). Without it another site could show the app
# in an invisible frame, have a person log in there and click its buttons for them.
FRAME_HEADERS = (
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
)


class FrameGuard:
    """ASGI middleware (streamlit_asgi.py) adding FRAME_HEADERS to every HTTP answer: the
    screens' addresses, Streamlit's own index.html fallback and its files alike."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def framed(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                names = {bytes(name).lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in FRAME_HEADERS if n not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, framed)


# ------------------------------------------------------------------ the login's cookie

SESSION_COOKIE = "connectbatch_session"
SESSION_ROUTE = "/_session"  # the handoff's image asks here (services/sessions.py)


def session_routes(services: Callable[[], Services]) -> list[Route]:
    """The route that trades a handoff token (`?h=`, shown by the logged-in page as an
    invisible image) for the session cookie: HttpOnly (no script reads it), SameSite=Strict
    (no other site's page sends it), Secure over https. Only a same-origin request (its
    Sec-Fetch-Site, which browsers set and pages cannot) is answered. None under a base path,
    like `page_routes`."""
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response
    from starlette.routing import Route

    if str(st.config.get_option("server.baseUrlPath") or "").strip("/"):
        return []

    async def trade(request: Request) -> Response:
        no_store = {"Cache-Control": "no-store"}
        token = request.query_params.get("h", "")
        if request.headers.get("sec-fetch-site", "same-origin") != "same-origin" or not token:
            return Response(status_code=404, headers=no_store)
        try:
            traded = await run_in_threadpool(services().redeem_handoff, token)
        except Exception:  # the database is busy, ...: the page stays logged in, this tab only
            log.exception("a browser session could not be started")
            traded = None
        if traded is None:
            return Response(status_code=404, headers=no_store)
        session, seconds = traded
        answer = Response(status_code=204, headers=no_store)
        answer.set_cookie(
            SESSION_COOKIE, session, max_age=seconds, path="/", httponly=True, samesite="strict",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return answer

    return [Route(SESSION_ROUTE, trade, methods=["GET"])]
