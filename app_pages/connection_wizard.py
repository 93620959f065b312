"""Create connection: the Connector wizard, in the seed's steps with Next and Back.

1 name and direction, 2 data type (and its template CSV), 3 method, methodology, wildcard
pattern (live preview) and for pulls folder, host, port and the method's settings (TLS,
certificates, IMAP flags, SFTP host key), 4 credentials (new login details with *Test
connection*, or provisioned ones for push), 5 credential name, return e-mail and the advanced
settings, then Create. Provisioned credentials are shown once in a dialog.

The state (step, draft connection and login, the problem to show) is a `WizardState`
(app_pages/_wizard_state.py) kept in the session; this page draws a step with the shared
forms (app_pages/_forms.py) and hands what they hold to the state on every run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st

from app_pages import _auth, _credential_reuse, _forms, _provisioned, _transfer_form, _ui, _wizard_summary
from app_pages._menu import PAGES
from app_pages._wizard_state import (
    CREDENTIAL_NAME,
    FIELD_STEP,
    LAST_STEP_FIELDS,
    NEW_PARTNER,
    STEPS,
    WizardState,
)
from connectbatch import mail_address, schemas, webapp
from connectbatch.errors import ConnectBatchError
from connectbatch.escaping import markdown_text, visible
from connectbatch.models import (
    METHOD_LABELS,
    METHODOLOGY_LABELS,
    PARTNER_TYPE_LABELS,
    Direction,
    Method,
    Methodology,
    PartnerType,
    User,
)
from connectbatch.services import Services
from connectbatch.transfer.naming import matches
from connectbatch.transfer.specs import AuthKind

STATE = "wiz_state"
FILE_FORMAT_PAGE = "app_pages/parse_preview.py"  # the data types' columns, template and dry run
KEYS = _forms.Keys("wiz_")
SAMPLE_NAMES = (
    "Conversions_2024_01.csv",
    "Conversions_2025_week2.csv",
    "conversions_2025_01.csv",
    "Conversions_2025_01.csv.part",
    "Calls_2025-01-31.csv",
    "calls_week1.csv",
    "Report.xlsx",
)


def state() -> WizardState:
    found: WizardState = st.session_state.setdefault(STATE, WizardState())
    return found


def reset() -> None:
    for key in [k for k in st.session_state if str(k).startswith("wiz_")]:
        del st.session_state[key]


def field_error(*fields: str) -> None:
    found = state().error
    if found and found[0] in fields:
        st.error(error_line(found), icon=":material/error:")


def error_line(found: tuple[str, str]) -> str:
    field, message = found  # the message may quote what was typed: shown as text
    message = markdown_text(message)
    return f"{_ui.field_label(field)}: {message}" if field else message


def clear_error() -> None:
    state().error = None


# --------------------------------------------------------------------------- steps


def step_name(s: WizardState, services: Services) -> dict[str, Any]:
    _forms.seed("wiz_name", s.draft.name)
    name = st.text_input(
        "Name",
        key="wiz_name",
        max_chars=100,
        placeholder="Upload Aggregate Performance Data",
        help="A name that describes the connection.",
    )
    field_error("name")
    options = list(Direction)
    _forms.seed("wiz_direction", s.draft.direction, options)
    chosen = st.radio(
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
    return {"name": name, "direction": Direction(chosen)} | step_partner(s, services)


def step_partner(s: WizardState, services: Services) -> dict[str, Any]:
    """The partner the connection belongs to: an existing one, or a new one (named after the
    connection unless another name is typed)."""
    options = [NEW_PARTNER, *(p.name for p in services.partners())]
    _forms.seed("wiz_partner", s.partner if s.partner in options else NEW_PARTNER, options)
    chosen = st.selectbox(
        "Partner",
        options,
        key="wiz_partner",
        format_func=lambda n: "New partner…" if n == NEW_PARTNER else visible(n),
        help="Every connection belongs to a partner: outbound exports carry only its own data.",
    )
    entered: dict[str, Any] = {"partner": chosen}
    if chosen == NEW_PARTNER:
        left, right = st.columns([2, 1])
        _forms.seed("wiz_new_partner_name", s.new_partner_name)
        entered["new_partner_name"] = left.text_input(
            "New partner's name", key="wiz_new_partner_name", max_chars=100,
            placeholder="the connection's name",
        )  # fmt: skip
        types = list(PartnerType)
        _forms.seed("wiz_new_partner_type", s.new_partner_type, types)
        entered["new_partner_type"] = right.selectbox(
            "Type", types, key="wiz_new_partner_type",
            format_func=lambda t: PARTNER_TYPE_LABELS[PartnerType(t)],
        )  # fmt: skip
    field_error("partner")
    return entered


def step_data_type(s: WizardState, services: Services) -> dict[str, Any]:
    options = list(schemas.REGISTRY)
    _forms.seed("wiz_data_type", s.draft.data_type, options)
    chosen = st.radio(
        "Data type",
        options,
        key="wiz_data_type",
        format_func=lambda k: schemas.REGISTRY[k].label,
        captions=[schemas.REGISTRY[k].description for k in options],
    )
    data_type = schemas.get(chosen)
    st.caption(
        f"{data_type.label}: {len(data_type.columns)} columns, {len(data_type.required_columns)} required."
    )
    # The template is offered here to everyone: the File format page that documents it is a
    # reviewer's page, and an analyst sent there would only read "Not allowed".
    _ui.template_download(data_type, "wiz_template_download")
    if may_open(services.user, FILE_FORMAT_PAGE):
        st.page_link(
            FILE_FORMAT_PAGE, label="See the file format and try a file", icon=":material/fact_check:"
        )
    field_error("data_type")
    return {"data_type": chosen}


def may_open(user: User | None, path: str) -> bool:
    """Whether `user` may open the page at `path`, by the menu's own rules (app_pages/_menu.py),
    so that the wizard never links to a page that answers "Not allowed". No user is the local
    operator (tests, scripts), who has every right."""
    if user is None:
        return True
    spec = next((spec for specs in PAGES.values() for spec in specs if spec.path == path), None)
    return spec is not None and _auth.may_open(user, spec)


def step_method(s: WizardState, services: Services) -> dict[str, Any]:
    methods, methodologies = s.method_options(), s.methodology_options()
    _forms.seed("wiz_method", s.method(), methods)
    method = Method(
        st.radio(
            "Method",
            methods,
            key="wiz_method",
            format_func=lambda m: METHOD_LABELS[Method(m)],
            horizontal=True,
        )
    )
    field_error("method")
    _forms.seed("wiz_methodology", s.methodology(), methodologies)
    methodology = Methodology(
        st.radio(
            "Methodology",
            methodologies,
            key="wiz_methodology",
            format_func=lambda m: METHODOLOGY_LABELS[Methodology(m)],
            captions=[_methodology_caption(Methodology(m)) for m in methodologies],
        )
    )
    field_error("methodology")
    entered: dict[str, Any] = {"method": method, "methodology": methodology}
    entered["pattern"] = _forms.pattern_input(KEYS, method, s.draft.pattern, field_error)
    entered["samples"] = pattern_preview(s, entered["pattern"])
    if methodology is Methodology.PULL:
        entered |= _forms.location_form(KEYS, method, s.draft, field_error)
        s.apply({"method": method})  # the settings shown are the chosen method's
        st.markdown(f"**{METHOD_LABELS[method]} settings**")
        entered["transfer"] = _transfer_form.transfer_form(KEYS, s.transfer(), field_error)
    elif methodology is Methodology.PUSH and method is Method.EMAIL:
        shape = mail_address.draft_address(services.settings.inbound_mailbox, s.draft.name)
        st.info(
            "Partners e-mail their files as attachments to the connection's own address, shown "
            f"after Create ({shape}: its random ending keeps it to the partners it is given to)."
        )
    else:
        st.info(
            f"The partner logs in to our {METHOD_LABELS[method]} server; ConnectBatch "
            "provisions the login in the next steps."
        )
    return entered


def _methodology_caption(m: Methodology) -> str:
    return {
        Methodology.PUSH: "The partner sends files to ConnectBatch; we provide the login or address.",
        Methodology.PULL: "ConnectBatch collects files from the partner's server or mailbox.",
        Methodology.PULL_FROM_US: "The partner collects files from our server.",
    }[m]


def pattern_preview(s: WizardState, pattern: str) -> str:
    """Which of some typical names (and the person's own) the pattern takes."""
    with st.expander("Preview: which file names match", expanded=True):
        _forms.seed("wiz_pattern_samples", s.samples)
        samples = st.text_area(
            "Try your own file names (one per line)",
            key="wiz_pattern_samples",
            height=80,
            placeholder="Conversions_2025_03.csv",
        )
        pattern = pattern.strip()
        own = [n.strip() for n in samples.splitlines() if n.strip()]
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
    return samples


def step_credentials(s: WizardState, services: Services) -> dict[str, Any]:
    d = s.connection()
    reused = _credential_reuse.reuse_choice(s, services, field_error)
    if reused is not None:
        return reused
    if not s.is_pull():
        st.subheader("Provisioned credentials")
        settings = services.settings
        if d.method is Method.EMAIL:  # an address is all a partner needs: no login to show
            shape = mail_address.draft_address(settings.inbound_mailbox, d.name)
            st.info(
                f"ConnectBatch gives this connection an address of its own, {shape}, with a random "
                "ending: the partner e-mails its files there. It is shown after Create."
            )
            return {"reuse_credential": None}
        port = settings.sftp_port if d.method is Method.SFTP else settings.ftp_port
        # The host partners are given with the login (CONNECTBATCH_PUBLIC_HOST), as the
        # dialog after Create shows it: the bind address (0.0.0.0, an internal address)
        # named a server no partner can reach.
        host = markdown_text(settings.partner_host)
        where = f"our {METHOD_LABELS[d.method]} server {host}:{port or '(not running)'}"
        st.info(
            f"ConnectBatch provisions the credentials for this connection: {where}, a username "
            "and a password. They are shown once, after Create: copy them then."
        )
        return {"reuse_credential": None}
    st.subheader("New credentials")
    st.caption(
        f"The login ConnectBatch uses on {markdown_text(d.host or 'the partner')}'s server. Stored encrypted."
    )
    login, file_name = _forms.credential_form(KEYS, d.method, s.login, field_error)
    entered: dict[str, Any] = {"login": login, "reuse_credential": None}
    if file_name is not None:
        entered["key_file_name"] = file_name
    if login.private_key and login.auth is AuthKind.KEY:
        shown = file_name or s.key_file_name
        st.caption(f"Key loaded: {shown}" if shown else "Key loaded.")
    # The test says what is wrong now: an older field message would only confuse.
    if st.button("Test connection", key="wiz_test", icon=":material/network_check:", on_click=clear_error):
        s.apply(entered)
        test_connection(s, services)
    show_test_result(s)
    return entered


def test_connection(s: WizardState, services: Services) -> None:
    d = s.connection()
    where = markdown_text(f"{d.host}{f':{d.port}' if d.port else ''}")
    with st.status(f"Connecting to {where}…", expanded=False) as status:
        try:
            found = services.test_connection(d, s.credential_input())
        except Exception as exc:
            status.update(label=f"Could not connect to {where}", state="error")
            message = _ui.error_text(exc) if isinstance(exc, ConnectBatchError) else None
            if message is None:
                _ui.log.error("test connection failed unexpectedly", exc_info=exc)
                message = f"The test failed unexpectedly ({type(exc).__name__}: {exc})."
            s.tested = ("error", message)
            return
        status.update(label=f"Connected to {where}", state="complete")
    s.tested = (
        "ok",
        [
            {"File": f.name, "Size": _ui.size(f.size), "Modified": _ui.when(f.mtime), "Path": f.path}
            for f in found
        ],
    )


def show_test_result(s: WizardState) -> None:
    if s.tested is None:
        return
    kind, detail = s.tested
    if kind == "error":
        st.error(f"Test connection failed: {markdown_text(detail)}")
        return
    if not detail:
        st.success("Connected. No file matches the pattern in that folder right now.")
        return
    st.success(f"Connected. {len(detail)} file(s) match the pattern:")
    st.dataframe(_ui.shown_rows(detail), hide_index=True, key="wiz_test_files")  # the partner's names


def step_create(s: WizardState) -> dict[str, Any]:
    d = s.connection()
    name = s.login.name
    if s.reuse_credential is None:  # a reused set keeps its name
        _forms.seed("wiz_cred_name", s.credential_name())
        name = st.text_input("Credential name", key="wiz_cred_name")
        field_error(CREDENTIAL_NAME)
    entered: dict[str, Any] = {}
    if d.direction is Direction.INBOUND:
        entered["return_email"] = _forms.return_email_input(KEYS, s.draft.return_email, field_error)
    error = s.error
    with st.expander("Advanced", expanded=bool(error and error[0] in LAST_STEP_FIELDS - {CREDENTIAL_NAME})):
        entered |= _forms.run_settings_form(
            KEYS,
            s.draft,
            pull=s.is_pull(),
            inbound=d.direction is Direction.INBOUND,
            live=True,
            errors=field_error,
        )
    st.markdown("**Review**")
    # What the widgets above hold now, not only what the draft had when the step opened.
    shown = replace(s, draft=replace(s.draft, **entered))
    reused = "" if s.reuse_credential is None else f"#{s.reuse_credential}"
    rows = _wizard_summary.review_rows(shown.connection(), s.login, partner=s.partner_name(), reused=reused)
    st.dataframe(rows, hide_index=True, key="wiz_review")
    entered["login"] = replace(s.login, name=name)
    return entered


# --------------------------------------------------------------------------- create


def create(s: WizardState, services: Services) -> None:
    try:
        with st.spinner(f"Creating {markdown_text(s.connection().name)}…"):
            done = s.create(services)
    except Exception as exc:
        _ui.show_error("Creating the connection", exc)
        return
    if done is None:
        st.rerun()
        return
    created, provisioned = done
    _ui.sync_schedule()
    reset()
    _ui.flash("success", f"Connection {markdown_text(created.name)} created.")
    if provisioned is None:
        st.switch_page(_ui.LIST_PAGE)
    _provisioned.offer(created.name, provisioned)
    st.rerun()


def draw_step(s: WizardState, services: Services) -> dict[str, Any]:
    if s.step == 1:
        return step_name(s, services)
    if s.step == 2:
        return step_data_type(s, services)
    if s.step == 3:
        return step_method(s, services)
    if s.step == 4:
        return step_credentials(s, services)
    return step_create(s)


def render() -> None:
    _provisioned.show_once(after=_ui.LIST_PAGE)
    st.title("Create connection")
    services = webapp.services()
    s = state()
    current = s.step
    st.progress(current / len(STEPS), text=f"Step {current} of {len(STEPS)}: {STEPS[current - 1]}")
    s.apply(draw_step(s, services))  # kept on every run: values outlive their step's widgets
    if s.error and s.error[0] not in _shown_fields(current):
        st.error(error_line(s.error))
    st.divider()
    back, cancel, forward = st.columns([1, 1, 4])
    if current > 1 and back.button("Back", key="wiz_back", icon=":material/arrow_back:"):
        s.back()
        st.rerun()
    if cancel.button("Cancel", key="wiz_cancel", type="tertiary"):
        reset()
        st.switch_page(_ui.LIST_PAGE)
    with forward:
        if current < len(STEPS):
            if st.button("Next", key="wiz_next", type="primary", icon=":material/arrow_forward:"):
                s.next(services)
                st.rerun()
        elif st.button("Create", key="wiz_create", type="primary", icon=":material/check:"):
            create(s, services)


def _shown_fields(current: int) -> set[str]:
    """Fields whose errors the current step shows next to the field itself."""
    shown = {f for f, step in FIELD_STEP.items() if step == current}
    if current == len(STEPS):
        shown |= LAST_STEP_FIELDS
    return shown


if __name__ == "__main__":
    render()
