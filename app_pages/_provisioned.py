"""The login we provision for a push connection, shown once in a dialog: the wizard's Create
and the Credentials tab's Re-connect put it here (`offer`), the page shows it (`show_once`),
and it leaves the session at Copy all, at Done, or as soon as another page runs (the router's
`forget_elsewhere`), so it is never shown a second time.
"""

from __future__ import annotations

import functools

import streamlit as st
import streamlit.components.v2 as components_v2

from connectbatch.escaping import markdown_text
from connectbatch.services import Provisioned

PROVISIONED = "provisioned_once"  # (connection name, Provisioned) until the dialog is closed
PROVISIONED_PAGE = "provisioned_page"  # the url path of the page that shows it
PAGE_KEY = "current_page"  # the url path of the page running now (set by the router)


def hosted_port(p: Provisioned) -> str:
    """The port of one of our servers; 0 or None means it is not running here."""
    return str(p.port) if p.port else "(the hosted server is not running)"


def provisioned_lines(p: Provisioned) -> list[tuple[str, str]]:
    if p.email_address:  # the partner only mails to it: no login of ours is used by e-mail push
        return [("E-mail address", p.email_address)]
    lines = [("Host", p.host), ("Port", hosted_port(p)), ("Username", p.username), ("Password", p.password)]
    # What the partner pins before sending a password: our SFTP host key, our FTPS certificate.
    if p.host_key_fingerprint:
        lines.append(("SFTP host key", p.host_key_fingerprint))
    if p.certificate_fingerprint:
        lines.append(("FTPS certificate (SHA-256)", p.certificate_fingerprint))
    if p.connect_with:
        lines.append(("Connect with", p.connect_with))
    return lines


PROVISIONED_CLOSED = "provisioned_closed"  # the page to go to once Copy all closed the dialog

# Streamlit shows a code box's copy icon only while the pointer is over the box: in this
# dialog the icons are the point, so they stay in sight.
COPY_ICONS_STYLE = """
<style>
[data-testid="stDialog"] [data-testid="stCode"] > div,
[data-testid="stDialog"] [data-testid="stCode"] > div > div,
[data-testid="stDialog"] [data-testid="stCode"] button {
  opacity: 1 !important; visibility: visible !important;
}
</style>
"""

# A value a person copies by hand (a password, a fingerprint, an address) is wrapped to the
# box's width, breaking anywhere, and kept clear of the copy icon at the box's right. Before,
# the box scrolled sideways: the FTPS certificate's fingerprint (95 characters) ran under the
# icon and past the box's edge at 1280 px, as did the long lines of the Copy all box.
COPYABLE_STYLE = """
<style>
[data-testid="stCode"] pre { padding-right: 3rem !important; }
[data-testid="stCode"] pre code {
  white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: break-all;
}
</style>
"""


def copyable(value: str) -> None:
    """`value` in a code box with its copy icon, every character of it in sight."""
    st.html(COPYABLE_STYLE)
    st.code(value, language=None, wrap_lines=True)


# One button that copies every line and closes the dialog. It runs in the page (a Streamlit
# v2 component, no iframe), so the browser's clipboard API is reachable from the click.
COPY_ALL_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const button = parentElement.querySelector("button");
  button.onclick = async () => {
    try {
      await navigator.clipboard.writeText(data);
      setTriggerValue("copied", true);
    } catch (err) {
      button.textContent = "Copying was refused by the browser: copy the boxes above";
    }
  };
}
"""
COPY_ALL_CSS = """
button {
  background: var(--st-primary-color); color: white; border: none; border-radius: 0.5rem;
  padding: 0.4rem 0.9rem; font: inherit; cursor: pointer;
}
"""
_copy_all = components_v2.component(
    "connectbatch.copy_all",
    html='<button type="button">Copy all and close</button>',
    css=COPY_ALL_CSS,
    js=COPY_ALL_JS,
)


def provisioned_text(p: Provisioned) -> str:
    """Every line of the provisioned login as `Label: value`, what Copy all copies."""
    return "\n".join(f"{label}: {value}" for label, value in provisioned_lines(p))


def _copied(after: str | None) -> None:
    """Copy all's callback: the password leaves the session, the dialog is not drawn again."""
    st.session_state.pop(PROVISIONED, None)
    st.session_state[PROVISIONED_CLOSED] = after or ""


@st.dialog("Your provisioned credentials", dismissible=False, width="medium")
def provisioned_dialog(after: str | None = None) -> None:
    """Shows the login we created, once: after Copy all or Done the password is gone from the
    session."""
    found = st.session_state.get(PROVISIONED)
    if found is None:
        st.rerun()
        return
    name, p = found
    st.html(COPY_ICONS_STYLE)
    st.write(
        f"Give these to the partner of **{markdown_text(name)}**. This is the only time the password "
        "is shown: copy it now (**Copy all and close**, or the icon at the right of each box)."
    )
    for label, value in provisioned_lines(p):
        st.caption(label)
        copyable(value)
    st.caption("Copy all")
    copyable(provisioned_text(p))
    with st.container(horizontal=True):
        _copy_all(data=provisioned_text(p), key="provisioned_copy_all", width="content",
                  on_copied_change=functools.partial(_copied, after))  # fmt: skip
        if st.button("Done — I have copied them", key="provisioned_done"):
            st.session_state.pop(PROVISIONED, None)
            if after:
                st.switch_page(after)
            st.rerun()


def offer(name: str, provisioned: Provisioned) -> None:
    """Keep the login just made for this page's dialog (`show_once`), and only for
    this page: `forget_elsewhere` drops it as soon as another page runs."""
    st.session_state[PROVISIONED] = (name, provisioned)
    st.session_state[PROVISIONED_PAGE] = st.session_state.get(PAGE_KEY)


def forget_elsewhere(url_path: str) -> None:
    """The router's call before a page runs. A password is shown once: the dialog stays up
    while its page reruns, but leaving the page (the browser's Back, a link in the menu)
    drops it, so coming back never shows it again. Before, it stayed in the session and
    came back on every visit of its page until Done or Copy all was clicked."""
    st.session_state[PAGE_KEY] = url_path
    if PROVISIONED in st.session_state and st.session_state.get(PROVISIONED_PAGE) != url_path:
        st.session_state.pop(PROVISIONED, None)
        st.session_state.pop(PROVISIONED_PAGE, None)


def show_once(after: str | None = None) -> None:
    closed_to = st.session_state.pop(PROVISIONED_CLOSED, None)
    if closed_to:
        st.switch_page(closed_to)
    if PROVISIONED in st.session_state:
        provisioned_dialog(after)
