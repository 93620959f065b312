"""Create connection: the Connector wizard, in the seed's steps with Next and Back.

1 name and direction, 2 data type, 3 method, methodology, wildcard pattern (live preview) and
for pulls folder, host and port, 4 credentials (new login details with *Test connection*, or
provisioned ones for push), 5 credential name, return e-mail and the advanced settings, then
Create. Provisioned credentials are shown once in a dialog.

Widgets vanish from session state when their step is not shown, so every value is also kept
in `wiz_values` and put back when its step comes round again.
"""

from __future__ import annotations

import zoneinfo
from typing import Any

import streamlit as st

from app_pages import _ui
from connectbatch import schemas, webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    Connection,
    Direction,
    Method,
    Methodology,
)
from connectbatch.services import CredentialInput, InvalidInputError, Services
from connectbatch.transfer.base import matches

STEP = "wiz_step"
VALUES = "wiz_values"
ERROR = "wiz_error"  # (field, message) shown next to the field it names
TESTED = "wiz_test_result"  # ("ok", rows) | ("error", message)
STEPS = ("Name and direction", "Data type", "Method", "Credentials", "Create")

DEFAULTS: dict[str, Any] = {
    "wiz_name": "",
    "wiz_direction": str(Direction.INBOUND),
    "wiz_data_type": "call_conversions",
    "wiz_method": str(Method.SFTP),
    "wiz_methodology": str(Methodology.PUSH),
    "wiz_pattern": "*.csv",
    "wiz_pattern_samples": "",
    "wiz_folder": "",
    "wiz_host": "",
    "wiz_port": None,
    "wiz_auth": "password",
    "wiz_username": "",
    "wiz_password": "",
    "wiz_cred_name": "",
    "wiz_return_email": "",
    "wiz_schedule": "",
    "wiz_lock_days": 30,
    "wiz_min_age": 0,
    "wiz_timezone": "UTC",
    "wiz_encoding": "",
    "wiz_delimiter": ",",
    "wiz_after_success": "leave",
    "wiz_archive_folder": "",
}
PRIVATE_KEY = "wiz_private_key"  # text of an uploaded key (not a widget value)
PRIVATE_KEY_NAME = "wiz_private_key_name"

# Which step shows the field an InvalidInputError names.
FIELD_STEP = {
    "name": 1, "direction": 1, "data_type": 2, "method": 3, "methodology": 3, "pattern": 3,
    "folder": 3, "host": 3, "port": 3, "username": 4, "password": 4, "private_key": 4,
}  # fmt: skip
ADVANCED_FIELDS = (
    "schedule",
    "lock_days",
    "min_age_seconds",
    "timezone",
    "encoding",
    "delimiter",
    "after_success",
    "archive_folder",
)
SAMPLE_NAMES = (
    "Conversions_2024_01.csv",
    "Conversions_2025_week2.csv",
    "conversions_2025_01.csv",
    "Conversions_2025_01.csv.part",
    "Calls_2025-01-31.csv",
    "calls_week1.csv",
    "Report.xlsx",
)


# --------------------------------------------------------------------------- state


def values() -> dict[str, Any]:
    found: dict[str, Any] = st.session_state.setdefault(VALUES, {})
    return found


def value(key: str) -> Any:
    """The current value of a wizard field, shown or not."""
    if key in st.session_state:
        return st.session_state[key]
    return values().get(key, DEFAULTS.get(key))


def seed(key: str, options: list[Any] | None = None, default: Any = None) -> None:
    """Put a field's kept value back before its widget is drawn (no value= then)."""
    if key in st.session_state:
        current = st.session_state[key]
    else:
        current = values().get(key, DEFAULTS.get(key) if default is None else default)
    if options is not None and current not in options:
        current = options[0]
    st.session_state[key] = current


def keep() -> None:
    """Copy the shown widgets' values into `wiz_values` (they outlive their step)."""
    kept = values()
    for key in DEFAULTS:
        if key in st.session_state:
            kept[key] = st.session_state[key]


def reset() -> None:
    for key in [k for k in st.session_state if str(k).startswith("wiz_")]:
        del st.session_state[key]


def step() -> int:
    current: int = st.session_state.setdefault(STEP, 1)
    return current


def direction() -> Direction:
    return Direction(value("wiz_direction"))


def method_options() -> list[str]:
    if direction() is Direction.OUTBOUND:
        return [str(Method.SFTP), str(Method.FTP)]  # partners collect over SFTP or FTP
    return [str(Method.EMAIL), str(Method.SFTP), str(Method.FTP)]


def methodology_options() -> list[str]:
    if direction() is Direction.OUTBOUND:
        return [str(Methodology.PULL_FROM_US)]
    return [str(Methodology.PUSH), str(Methodology.PULL)]


def method() -> Method:
    chosen = value("wiz_method")
    return Method(chosen if chosen in method_options() else method_options()[0])


def methodology() -> Methodology:
    chosen = value("wiz_methodology")
    return Methodology(chosen if chosen in methodology_options() else methodology_options()[0])


def is_pull() -> bool:
    return methodology() is Methodology.PULL


def draft() -> Connection:
    """The connection as entered so far (later steps at their defaults)."""
    pull, inbound = is_pull(), direction() is Direction.INBOUND
    port = value("wiz_port")
    after = str(value("wiz_after_success")) if pull else "leave"
    folder = str(value("wiz_folder") or "").strip()
    if pull and method() is Method.EMAIL:
        folder = folder or "INBOX"
    return Connection(
        name=str(value("wiz_name") or "").strip(),
        data_type=str(value("wiz_data_type")),
        direction=direction(),
        method=method(),
        methodology=methodology(),
        host=str(value("wiz_host") or "").strip() or None if pull else None,
        port=int(port) if pull and port else None,
        folder=folder or None if pull else None,
        pattern=str(value("wiz_pattern") or "").strip(),
        return_email=str(value("wiz_return_email") or "").strip() or None if inbound else None,
        schedule=str(value("wiz_schedule") or "").strip() or None if pull or not inbound else None,
        lock_days=int(value("wiz_lock_days") or 0),
        min_age_seconds=int(value("wiz_min_age") or 0) if pull else 0,
        timezone=str(value("wiz_timezone") or "UTC"),
        encoding=str(value("wiz_encoding") or "") or None,
        delimiter=str(value("wiz_delimiter") or ","),
        after_success=after,
        archive_folder=str(value("wiz_archive_folder") or "").strip() or None if after == "archive" else None,
    )


def credential() -> CredentialInput:
    use_key = method() is Method.SFTP and value("wiz_auth") == "key"
    return CredentialInput(
        name=str(value("wiz_cred_name") or "").strip() or f"{draft().name} login",
        username=str(value("wiz_username") or "").strip() or None,
        password=None if use_key else (str(value("wiz_password") or "") or None),
        private_key=st.session_state.get(PRIVATE_KEY) if use_key else None,
        return_email=str(value("wiz_return_email") or "").strip() or None,
    )


# --------------------------------------------------------------------------- checks & navigation


def problem(services: Services, upto: int) -> tuple[str, str] | None:
    """The first problem in steps 1..upto as (field, message), or None."""
    d = draft()
    if upto >= 3 and is_pull() and d.method is Method.EMAIL and not d.host:
        return "host", "the IMAP host of the mailbox to read, e.g. imap.example.com"
    if upto >= 4 and is_pull():
        given = credential()
        if not given.username:
            return "username", "is required to log in to the partner's server"
        if method() is Method.SFTP and value("wiz_auth") == "key":
            if not given.private_key:
                return "private_key", "upload the private key file (OpenSSH or PEM)"
        elif not given.password:
            return "password", "is required to log in to the partner's server"
    if upto >= 5 and not str(value("wiz_cred_name") or "").strip():
        return "credential_name", "is required"
    try:
        services.check_connection(d)
    except InvalidInputError as exc:
        if FIELD_STEP.get(exc.field, 5) <= upto:
            return exc.field, _ui.error_text(exc).split(": ", 1)[-1]
    except ConnectBatchError as exc:
        return "", str(exc)
    return None


def go_next() -> None:
    keep()
    st.session_state.pop(TESTED, None)
    found = problem(webapp.services(), step())
    st.session_state[ERROR] = found
    if found is None:
        st.session_state[STEP] = min(step() + 1, len(STEPS))


def clear_error() -> None:
    st.session_state.pop(ERROR, None)


def go_back() -> None:
    keep()
    st.session_state.pop(ERROR, None)
    st.session_state.pop(TESTED, None)
    st.session_state[STEP] = max(step() - 1, 1)


def field_error(*fields: str) -> None:
    found = st.session_state.get(ERROR)
    if found and found[0] in fields:
        st.error(error_line(found), icon=":material/error:")


def error_line(found: tuple[str, str]) -> str:
    field, message = found
    return f"{_ui.FIELD_LABELS.get(field, field)}: {message}" if field else message


# --------------------------------------------------------------------------- steps


def step_name() -> None:
    seed("wiz_name")
    st.text_input(
        "Name",
        key="wiz_name",
        max_chars=100,
        placeholder="Upload Aggregate Performance Data",
        help="A name that describes the connection.",
    )
    field_error("name")
    options = [str(d) for d in Direction]
    seed("wiz_direction", options)
    st.radio(
        "Direction",
        options,
        key="wiz_direction",
        format_func=lambda d: _ui.DIRECTION_CHOICES[Direction(d)],
        captions=[
            "Inbound: the partner's files come into ConnectBatch.",
            "Outbound: ConnectBatch's files go to the partner's platform.",
        ],
    )
    field_error("direction")


def step_data_type() -> None:
    options = list(schemas.REGISTRY)
    seed("wiz_data_type", options)
    st.radio(
        "Data type",
        options,
        key="wiz_data_type",
        format_func=lambda k: schemas.REGISTRY[k].label,
        captions=[schemas.REGISTRY[k].description for k in options],
    )
    chosen = schemas.get(str(value("wiz_data_type")))
    st.caption(f"{chosen.label}: {len(chosen.columns)} columns, {len(chosen.required_columns)} required.")
    st.page_link(
        "app_pages/parse_preview.py",
        label="See the file format and a template CSV",
        icon=":material/fact_check:",
    )
    field_error("data_type")


def step_method(services: Services) -> None:
    seed("wiz_method", method_options())
    st.radio(
        "Method",
        method_options(),
        key="wiz_method",
        format_func=lambda m: METHOD_LABELS[Method(m)],
        horizontal=True,
    )
    field_error("method")
    seed("wiz_methodology", methodology_options())
    st.radio(
        "Methodology",
        methodology_options(),
        key="wiz_methodology",
        format_func=lambda m: METHODOLOGY_LABELS[Methodology(m)],
        captions=[_methodology_caption(Methodology(m)) for m in methodology_options()],
    )
    field_error("methodology")
    pattern_with_preview()
    if is_pull():
        pull_location()
    elif methodology() is Methodology.PUSH and method() is Method.EMAIL:
        st.info(
            "Partners e-mail their files as attachments to the connection's own address, shown "
            f"after Create (like {services.inbound_address(draft())})."
        )
    else:
        st.info(
            f"The partner logs in to our {METHOD_LABELS[method()]} server; ConnectBatch "
            "provisions the login in the next steps."
        )


def _methodology_caption(m: Methodology) -> str:
    return {
        Methodology.PUSH: "The partner sends files to ConnectBatch; we provide the login or address.",
        Methodology.PULL: "ConnectBatch collects files from the partner's server or mailbox.",
        Methodology.PULL_FROM_US: "The partner collects files from our server.",
    }[m]


def pattern_with_preview() -> None:
    email = method() is Method.EMAIL
    seed("wiz_pattern")
    st.text_input(
        "Attachment file name pattern" if email else "File name pattern",
        key="wiz_pattern",
        placeholder="Conversions_202?_*.csv",
        help="`*` matches any sequence of characters, `?` any single character. "
        "Matching is case-sensitive; names ending in .part or .tmp never match.",
    )
    field_error("pattern")
    with st.expander("Preview: which file names match", expanded=True):
        seed("wiz_pattern_samples")
        st.text_area(
            "Try your own file names (one per line)",
            key="wiz_pattern_samples",
            height=80,
            placeholder="Conversions_2025_03.csv",
        )
        pattern = str(value("wiz_pattern") or "").strip()
        own = [n.strip() for n in str(value("wiz_pattern_samples") or "").splitlines() if n.strip()]
        rows = [
            {"File name": name, "Matches": bool(pattern) and matches(name, pattern), "Yours": name in own}
            for name in [*own, *SAMPLE_NAMES]
        ]
        st.dataframe(
            rows,
            hide_index=True,
            key="wiz_pattern_preview",
            column_config={
                "Matches": st.column_config.CheckboxColumn("Matches"),
                "Yours": st.column_config.CheckboxColumn("Typed by you"),
            },
        )


def pull_location() -> None:
    m = method()
    if m is Method.EMAIL:
        seed("wiz_folder", default="INBOX")
        st.text_input("Mailbox folder", key="wiz_folder", help="The IMAP folder to read, usually INBOX.")
    else:
        seed("wiz_folder")
        folder = st.text_input(
            "Folder",
            key="wiz_folder",
            placeholder="/home/AcmeAdvertiser/Conversions",
            help="The absolute directory path on the partner's server that holds the files.",
        )
        if folder and not folder.startswith("/"):
            st.warning("The folder must be an absolute path, starting with /.")
    field_error("folder")
    host, port = st.columns([3, 1])
    seed("wiz_host")
    host.text_input(
        "IMAP host" if m is Method.EMAIL else "Host",
        key="wiz_host",
        placeholder="imap.example.com" if m is Method.EMAIL else "sftp.example.com",
    )
    seed("wiz_port")
    port.number_input(
        "Port",
        key="wiz_port",
        min_value=1,
        max_value=65535,
        step=1,
        value=None,
        placeholder=f"{_ui.DEFAULT_PORTS[m]} (standard)",
    )
    field_error("host", "port")


def step_credentials(services: Services) -> None:
    d = draft()
    if not is_pull():
        st.subheader("Provisioned credentials")
        settings = services.settings
        if d.method is Method.EMAIL:
            where = f"the address {services.inbound_address(d)}"
        else:
            port = settings.sftp_port if d.method is Method.SFTP else settings.ftp_port
            where = f"our {METHOD_LABELS[d.method]} server {settings.bind}:{port or '(not running)'}"
        st.info(
            f"ConnectBatch provisions the credentials for this connection: {where}, a username "
            "and a password. They are shown once, after Create: copy them then."
        )
        return
    st.subheader("New credentials")
    st.caption(f"The login ConnectBatch uses on {d.host or 'the partner'}'s server. Stored encrypted.")
    if d.method is Method.SFTP:
        seed("wiz_auth", ["password", "key"])
        st.radio(
            "Log in with",
            ["password", "key"],
            key="wiz_auth",
            format_func=lambda a: _ui.LOGIN_WITH[a],
            horizontal=True,
        )
    seed("wiz_username")
    st.text_input("Username", key="wiz_username", autocomplete="off")
    field_error("username")
    if d.method is Method.SFTP and value("wiz_auth") == "key":
        upload = st.file_uploader("Private key (OpenSSH or PEM)", key="wiz_key_file")
        if upload is not None:
            st.session_state[PRIVATE_KEY] = upload.getvalue().decode("utf-8", "replace")
            st.session_state[PRIVATE_KEY_NAME] = upload.name
        if st.session_state.get(PRIVATE_KEY_NAME):
            st.caption(f"Key loaded: {st.session_state[PRIVATE_KEY_NAME]}")
        field_error("private_key")
    else:
        seed("wiz_password")
        st.text_input("Password", key="wiz_password", type="password", autocomplete="new-password")
        field_error("password")
    # The test says what is wrong now: an older field message would only confuse.
    if st.button("Test connection", key="wiz_test", icon=":material/network_check:", on_click=clear_error):
        keep()
        test_connection(services)
    show_test_result()


def test_connection(services: Services) -> None:
    d = draft()
    where = f"{d.host}{f':{d.port}' if d.port else ''}"
    with st.status(f"Connecting to {where}…", expanded=False) as status:
        try:
            found = services.test_connection(d, credential())
        except Exception as exc:
            status.update(label=f"Could not connect to {where}", state="error")
            message = _ui.error_text(exc) if isinstance(exc, ConnectBatchError) else None
            if message is None:
                _ui.log.error("test connection failed unexpectedly", exc_info=exc)
                message = f"The test failed unexpectedly ({type(exc).__name__}: {exc})."
            st.session_state[TESTED] = ("error", message)
            return
        status.update(label=f"Connected to {where}", state="complete")
    st.session_state[TESTED] = (
        "ok",
        [
            {"File": f.name, "Size": _ui.size(f.size), "Modified": _ui.when(f.mtime), "Path": f.path}
            for f in found
        ],
    )


def show_test_result() -> None:
    found = st.session_state.get(TESTED)
    if found is None:
        return
    kind, detail = found
    if kind == "error":
        st.error(f"Test connection failed: {detail}")
        return
    if not detail:
        st.success("Connected. No file matches the pattern in that folder right now.")
        return
    st.success(f"Connected. {len(detail)} file(s) match the pattern:")
    st.dataframe(detail, hide_index=True, key="wiz_test_files")


def step_create(services: Services) -> None:
    d = draft()
    seed("wiz_cred_name", default=f"{d.name} login")
    st.text_input("Credential name", key="wiz_cred_name")
    field_error("credential_name")
    if d.direction is Direction.INBOUND:
        seed("wiz_return_email")
        st.text_input(
            "Return e-mail address",
            key="wiz_return_email",
            placeholder="ops@partner.example",
            help="The results of every file are e-mailed here.",
        )
        field_error("return_email")
    error = st.session_state.get(ERROR)
    with st.expander("Advanced", expanded=bool(error and error[0] in ADVANCED_FIELDS)):
        advanced(d)
    st.markdown("**Review**")
    st.dataframe(review_rows(d), hide_index=True, key="wiz_review")


def advanced(d: Connection) -> None:
    pull, inbound = is_pull(), d.direction is Direction.INBOUND
    if pull or not inbound:
        seed("wiz_schedule")
        st.text_input(
            "Schedule (cron)",
            key="wiz_schedule",
            placeholder="0 6 * * *",
            help="When to "
            + ("collect files" if pull else "write the export")
            + ": minute hour day-of-month month day-of-week, in UTC. Empty: only Run now.",
        )
        field_error("schedule")
    if inbound:
        seed("wiz_lock_days")
        st.number_input(
            "Lock period (days)",
            key="wiz_lock_days",
            min_value=0,
            max_value=3650,
            step=1,
            help="Actions can be modified or reversed until they lock this many days after the event.",
        )
        field_error("lock_days")
    if pull:
        seed("wiz_min_age")
        st.number_input(
            "Minimum file age (seconds)",
            key="wiz_min_age",
            min_value=0,
            step=60,
            help="Files younger than this are left for the next run (still being written).",
        )
        field_error("min_age_seconds")
    if inbound:
        zones = sorted(zoneinfo.available_timezones())
        seed("wiz_timezone", zones, default="UTC")
        st.selectbox("Time zone of dates without an offset", zones, key="wiz_timezone")
        field_error("timezone")
        left, right = st.columns(2)
        seed("wiz_encoding", list(_ui.ENCODINGS))
        left.selectbox(
            "Encoding", list(_ui.ENCODINGS), key="wiz_encoding", format_func=lambda e: _ui.ENCODINGS[e]
        )
        seed("wiz_delimiter", list(_ui.DELIMITERS))
        right.selectbox(
            "Delimiter", list(_ui.DELIMITERS), key="wiz_delimiter", format_func=lambda d: _ui.DELIMITERS[d]
        )
        field_error("encoding", "delimiter")
    if pull:
        seed("wiz_after_success", list(_ui.AFTER_SUCCESS))
        st.selectbox(
            "After a successful run",
            list(_ui.AFTER_SUCCESS),
            key="wiz_after_success",
            format_func=lambda a: _ui.AFTER_SUCCESS[a],
        )
        if value("wiz_after_success") == "archive":
            seed("wiz_archive_folder")
            st.text_input("Archive folder", key="wiz_archive_folder", placeholder="/home/AcmeAdvertiser/done")
        field_error("after_success", "archive_folder")


def review_rows(d: Connection) -> list[dict[str, str]]:
    rows = [
        ("Name", d.name),
        ("Data type", _ui.data_type_label(d.data_type)),
        ("Direction", _ui.DIRECTION_CHOICES[d.direction]),
        ("Method", METHOD_LABELS[d.method]),
        ("Methodology", METHODOLOGY_LABELS[d.methodology]),
        ("File name pattern", d.pattern),
    ]
    if d.methodology is Methodology.PULL:
        rows += [("Host", f"{d.host or ''}{f':{d.port}' if d.port else ''}"), ("Folder", d.folder or "")]
    return [{"Setting": k, "Value": v} for k, v in rows]


# --------------------------------------------------------------------------- create


def create(services: Services) -> None:
    keep()
    found = problem(services, len(STEPS))
    if found is not None:
        st.session_state[ERROR] = found
        st.session_state[STEP] = FIELD_STEP.get(found[0], len(STEPS))
        st.rerun()
    d = draft()
    try:
        with st.spinner(f"Creating {d.name}…"):
            created, provisioned = services.create_connection(d, credential())
    except InvalidInputError as exc:
        st.session_state[ERROR] = (exc.field, _ui.error_text(exc).split(": ", 1)[-1])
        st.session_state[STEP] = FIELD_STEP.get(exc.field, len(STEPS))
        st.rerun()
    except Exception as exc:
        _ui.show_error("Creating the connection", exc)
        return
    _ui.sync_schedule()
    reset()
    _ui.flash("success", f"Connection {created.name} created.")
    if provisioned is None:
        st.switch_page(_ui.LIST_PAGE)
    st.session_state[_ui.PROVISIONED] = (created.name, provisioned)
    st.rerun()


def render() -> None:
    _ui.show_provisioned_once(after=_ui.LIST_PAGE)
    st.title("Create connection")
    services = webapp.services()
    current = step()
    st.progress(current / len(STEPS), text=f"Step {current} of {len(STEPS)}: {STEPS[current - 1]}")
    if current == 1:
        step_name()
    elif current == 2:
        step_data_type()
    elif current == 3:
        step_method(services)
    elif current == 4:
        step_credentials(services)
    else:
        step_create(services)
    found = st.session_state.get(ERROR)
    if found and found[0] not in _shown_fields(current):
        st.error(error_line(found))
    st.divider()
    back, cancel, forward = st.columns([1, 1, 4])
    if current > 1:
        back.button("Back", key="wiz_back", on_click=go_back, icon=":material/arrow_back:")
    if cancel.button("Cancel", key="wiz_cancel", type="tertiary"):
        reset()
        st.switch_page(_ui.LIST_PAGE)
    with forward:
        if current < len(STEPS):
            st.button(
                "Next", key="wiz_next", type="primary", on_click=go_next, icon=":material/arrow_forward:"
            )
        elif st.button("Create", key="wiz_create", type="primary", icon=":material/check:"):
            create(services)
    keep()


def _shown_fields(current: int) -> set[str]:
    """Fields whose errors the current step shows next to the field itself."""
    shown = {f for f, s in FIELD_STEP.items() if s == current}
    if current == len(STEPS):
        shown |= {"credential_name", "return_email", *ADVANCED_FIELDS}
    return shown


if __name__ == "__main__":
    render()
