"""The app's one engine per process: Streamlit reruns scripts, this object stays.

Pages get `services()` from here and call nothing else of the core. The engine (scheduler,
hosted servers, mailbox polling) starts with the first page view; a server that cannot
start (port taken) is reported on the page instead of breaking the app.
"""

from __future__ import annotations

import logging

import streamlit as st

from connectbatch.engine import Engine
from connectbatch.services import Services

log = logging.getLogger("connectbatch.webapp")


@st.cache_resource(show_spinner=False)
def engine() -> tuple[Engine, str | None]:
    """(the engine, a problem to show or None)."""
    services = Services()
    eng = Engine(services, services.settings.mailbox)
    try:
        eng.start()
        return eng, None
    except OSError as exc:
        log.exception("engine start failed")
        eng.stop()
        eng.start(servers=False)
        return eng, f"the hosted SFTP/FTP servers did not start: {exc}"


def services() -> Services:
    return engine()[0].services
