"""paramiko's own log, kept under ours and quiet.

paramiko logs every failed handshake (a host that never answers, a port scanner, a partner's
client that gives up) with a full traceback at ERROR. Our transports already report each
failure in one line (a run's reason, the hosted server's rate-limited log), so paramiko's
records are lowered to DEBUG and shown only where DEBUG logging is on (CONNECTBATCH_DEBUG):
`connectbatch serve` logs at INFO and printed eight tracebacks in three minutes for one
unreachable pull. The NullHandler keeps Python's last-resort handler from printing them to
stderr where no logging is set up at all.
"""

from __future__ import annotations

import logging


class _AtMostDebug(logging.Filter):
    """A paramiko record becomes DEBUG, and passes only when DEBUG is wanted: relabelling
    alone is not enough, since a propagated record meets only the handlers' levels (NOTSET
    under `basicConfig`), not the root logger's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger().isEnabledFor(logging.DEBUG)


def quiet(name: str) -> str:
    """Make `name` (the channel paramiko's transports log to, `set_log_channel`) quiet as
    above; returns the name."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _AtMostDebug) for f in logger.filters):
        logger.addHandler(logging.NullHandler())
        logger.addFilter(_AtMostDebug())
    return name
