"""Where a push connection's partner sends files, on its Credentials tab at any time: the
mailbox address, or our server's host, port and what the partner pins (SFTP host key, FTPS
certificate). The one-time dialog after Create showed them once with the password, and a
partner who asked again months later could not be told where to connect. Only the password
is a secret; it stays shown once (`_provisioned`)."""

from __future__ import annotations

import streamlit as st

from app_pages import _provisioned, _ui
from connectbatch.escaping import markdown_text
from connectbatch.models import Connection, Method
from connectbatch.services import Services

SECRET_LINES = ("Username", "Password")  # a login's own: each credential card names its account


def where_partners_send(services: Services, c: Connection) -> None:
    if c.method is Method.EMAIL:
        st.markdown("**The partner sends files to**")
        _provisioned.copyable(services.inbound_address(c))
        st.caption(
            f"Mail to {markdown_text(services.dryrun_address(c))} is a dry run: its files are checked "
            "as this connection would load them, a report goes back, nothing is stored."
        )
        return
    ok, found = _ui.safely("Reading our server's address", lambda: services.push_endpoint(c.id))
    if not ok or found is None:
        return
    st.markdown("**The partner connects to**")
    for label, value in _provisioned.provisioned_lines(found):
        if label not in SECRET_LINES:
            st.caption(label)
            _provisioned.copyable(value)
