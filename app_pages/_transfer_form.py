"""The connection's method settings (see connectbatch/transfer/specs.py) as a form the wizard
and the connection's Edit tab share: FTP TLS mode and certificates, IMAP security and flags,
the SFTP host key. Kept apart from app_pages/_forms.py (location, login, schedule, file
format): a different concept, and each module stays small enough to read in one go.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from app_pages._forms import FieldErrors, Keys, _no_errors, _text, seed
from connectbatch.transfer.specs import (
    DEFAULT_IMAP_FLAG,
    FtpSpec,
    FtpTls,
    ImapSecurity,
    ImapSpec,
    SftpSpec,
    TransferSpec,
)

FTP_TLS = {
    FtpTls.NONE: "None (plain FTP)",
    FtpTls.EXPLICIT: "Explicit (AUTH TLS, port 21)",
    FtpTls.IMPLICIT: "Implicit (TLS from the start, port 990)",
}
IMAP_SECURITY = {
    ImapSecurity.SSL: "SSL/TLS (port 993)",
    ImapSecurity.STARTTLS: "STARTTLS (port 143)",
    ImapSecurity.PLAIN: "Plain (a mail server on this machine only)",
}


def transfer_form(keys: Keys, spec: TransferSpec, errors: FieldErrors = _no_errors) -> TransferSpec:
    """The typed settings of the connection's method (see connectbatch/transfer/specs.py),
    as entered; the services check them."""
    if isinstance(spec, FtpSpec):
        return _ftp_form(keys, spec, errors)
    if isinstance(spec, ImapSpec):
        return _imap_form(keys, spec, errors)
    return _sftp_form(keys, spec, errors)


def _certificate(
    keys: Keys, verify: bool, ca_file: str | None, errors: FieldErrors
) -> tuple[bool, str | None]:
    left, right = st.columns([1, 2], vertical_alignment="bottom")
    seed(keys("verify"), verify)
    checked = left.checkbox(
        "Verify the server certificate",
        key=keys("verify"),
        help="Off only for a test server with a self-signed certificate.",
    )
    seed(keys("ca_file"), ca_file or "")
    path = right.text_input(
        "CA file (optional)",
        key=keys("ca_file"),
        placeholder="/etc/ssl/partner-ca.pem",
        help="A PEM bundle of the CA certificates to trust; empty: the system's.",
    )
    errors("verify", "ca_file")
    return checked, _text(path)


def _ftp_form(keys: Keys, spec: FtpSpec, errors: FieldErrors) -> FtpSpec:
    options = list(FTP_TLS)
    seed(keys("ftp_tls"), spec.tls, options)
    tls = st.radio("TLS", options, key=keys("ftp_tls"), format_func=lambda t: FTP_TLS[t], horizontal=True)
    errors("tls")
    verify, ca_file = _certificate(keys, spec.verify, spec.ca_file, errors)
    seed(keys("ftp_passive"), spec.passive)
    passive = st.checkbox(
        "Passive mode",
        key=keys("ftp_passive"),
        help="How nearly every server behind a firewall or NAT works; off: active mode.",
    )
    errors("passive")
    return replace(spec, tls=tls, verify=verify, ca_file=ca_file, passive=passive)


def _imap_form(keys: Keys, spec: ImapSpec, errors: FieldErrors) -> ImapSpec:
    options = list(IMAP_SECURITY)
    seed(keys("imap_security"), spec.security, options)
    security = st.radio(
        "Security",
        options,
        key=keys("imap_security"),
        format_func=lambda s: IMAP_SECURITY[s],
        horizontal=True,
    )
    errors("security")
    verify, ca_file = _certificate(keys, spec.verify, spec.ca_file, errors)
    flag, move = st.columns(2)
    seed(keys("imap_processed_flag"), spec.processed_flag)
    processed_flag = flag.text_input(
        "Mark read messages with the flag",
        key=keys("imap_processed_flag"),
        help=f"A keyword such as {DEFAULT_IMAP_FLAG}, or \\Seen, \\Answered, \\Flagged, \\Draft.",
    )
    seed(keys("imap_move_to"), spec.move_to or "")
    move_to = move.text_input(
        "…or move them to the folder",
        key=keys("imap_move_to"),
        placeholder="INBOX/Done",
        help="When given, read messages are moved here instead of flagged.",
    )
    errors("processed_flag", "move_to")
    seed(keys("imap_recipient"), spec.recipient or "")
    recipient = st.text_input(
        "Only mail addressed to (optional)",
        key=keys("imap_recipient"),
        placeholder="inbox+acme@example.com",
        help="Keep only messages sent to this address, e.g. a plus-address of a shared mailbox.",
    )
    errors("recipient")
    seed(keys("imap_allowed_senders"), ", ".join(spec.allowed_senders))
    senders = st.text_input(
        "Only mail from (optional)",
        key=keys("imap_allowed_senders"),
        placeholder="reports@partner.example, @partner.example",
        help="Addresses, or @domain for a whole domain, separated by commas. Mail from anyone "
        "else is not loaded: the run lists it as skipped. Empty: any sender.",
    )
    errors("allowed_senders")
    return replace(
        spec, security=security, verify=verify, ca_file=ca_file,
        processed_flag=processed_flag.strip() or DEFAULT_IMAP_FLAG, move_to=_text(move_to),
        recipient=_text(recipient),
        allowed_senders=tuple(x.strip() for x in senders.replace(",", " ").split() if x.strip()),
    )  # fmt: skip


def _sftp_form(keys: Keys, spec: SftpSpec, errors: FieldErrors) -> SftpSpec:
    seed(keys("sftp_fingerprint"), spec.host_key_fingerprint or "")
    fingerprint = st.text_input(
        "Host key fingerprint (optional)",
        key=keys("sftp_fingerprint"),
        placeholder="SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
        help="The server's key as `ssh-keygen -lf` prints it, from the partner: checked at the "
        "first login. Empty: the first login pins the key the server presents.",
    )
    errors("host_key_fingerprint")
    with st.expander("Advanced"):
        seed(keys("sftp_ciphers"), spec.ciphers or "")
        ciphers = st.text_input(
            "Ciphers (comma-separated)",
            key=keys("sftp_ciphers"),
            placeholder="aes256-gcm@openssh.com,aes128-ctr",
            help="Only for a server that needs particular ciphers; empty: the usual choice.",
        )
        seed(keys("sftp_request_size"), spec.request_size)
        request_size = st.number_input(
            "Request size (bytes)",
            key=keys("sftp_request_size"),
            min_value=4096,
            max_value=4 * 1024 * 1024,
            step=4096,
            value=None,
            placeholder="chosen from the server",
            help="The size of each read request; empty: chosen from the server's software.",
        )
        errors("ciphers", "request_size")
    return replace(
        spec, host_key_fingerprint=_text(fingerprint), ciphers=_text(ciphers),
        request_size=int(request_size) if request_size else None,
    )  # fmt: skip
