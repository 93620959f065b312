"""The one settings layer: every CONNECTBATCH_* variable is read in `connectbatch/settings.py`
only, typed, with a ConfigurationError naming the variable for a malformed value, and every
variable is in the README's Configuration table (and every row there is a real variable)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from connectbatch import schemas
from connectbatch import settings as settings_module
from connectbatch.cli import main
from connectbatch.errors import ConfigurationError
from connectbatch.settings import MailboxSettings, Settings, SmtpSettings

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "connectbatch"
SETTINGS = PACKAGE / "settings.py"
README = REPO / "README.md"
NAME = re.compile(r"CONNECTBATCH_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_*])")  # not `CONNECTBATCH_SMTP_*`


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CONNECTBATCH_* variable of the machine running the tests leaks into these."""
    for name in [n for n in os.environ if n.startswith("CONNECTBATCH_")]:
        monkeypatch.delenv(name)


def variables_in_settings() -> set[str]:
    """Names the settings module reads: literal names and `f"{PREFIX}NAME"` spellings."""
    text = SETTINGS.read_text(encoding="utf-8")
    prefixed = {f"CONNECTBATCH_{m}" for m in re.findall(r'f"\{PREFIX\}([A-Z0-9_]+)"', text)}
    return prefixed | set(NAME.findall(text))


def readme_tables() -> list[set[str]]:
    """The variables named in the first cell of each table of the Configuration section."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    tables: list[set[str]] = []
    current: set[str] | None = None
    for line in section.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        if current is None:
            current = set()
            tables.append(current)
        first_cell = line.split("|")[1]
        current.update(NAME.findall(first_cell))
    return tables


# ------------------------------------------------------------------ one place, documented


def test_no_module_but_settings_reads_the_environment() -> None:
    """Drift guard: a second reader of the environment would bypass the typed settings."""
    reader = re.compile(r"\bos\.environ\b|\bgetenv\s*\(|\benviron\.get\s*\(|from os import .*environ")
    offenders = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py*"))
        if path.suffix in (".py", ".pyx", ".pxd", ".pyi") and path != SETTINGS
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if reader.search(line)
    ]
    assert offenders == [], "read CONNECTBATCH_* variables in connectbatch/settings.py"


def test_every_variable_is_in_the_readme_configuration_table_and_vice_versa() -> None:
    configuration = readme_tables()[0]
    read = variables_in_settings()
    assert sorted(read - configuration) == [], "variables read but not in the README table"
    assert sorted(configuration - read) == [], "README table rows that settings.py never reads"


def test_every_variable_used_anywhere_in_the_repository_is_documented() -> None:
    """Developer variables (tests, fuzzer, setup.py) go into the README's second table."""
    documented = set().union(*readme_tables())
    sources = [REPO / "setup.py", *[p for d in ("tests", "fuzz", "bench", "scripts", "app_pages")
                                    for p in (REPO / d).rglob("*.py")]]  # fmt: skip
    used = {name for path in sources for name in NAME.findall(path.read_text(encoding="utf-8"))}
    assert sorted(used - documented) == []


# ------------------------------------------------------------------ values


def test_defaults_without_any_variable() -> None:
    s = Settings.from_env()
    assert s == Settings()
    assert (s.home, s.database) == (Path("data"), Path("data/connectbatch.duckdb"))
    assert (s.sftp_port, s.ftp_port) == (2222, 2121)
    assert (s.smtp, s.mailbox, s.secret_key) == (None, None, None)
    assert s.inbound_mailbox == "inbox@connectbatch.local"
    assert (s.expectations_dir / "call_conversions.json").is_file()


def test_every_variable_reaches_its_field(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    values = {
        "HOME": str(tmp_path), "DB": str(tmp_path / "x.duckdb"), "BIND": "0.0.0.0",
        "SFTP_PORT": "0", "FTP_PORT": "2100", "MAX_FILE_BYTES": "1000", "LOCK_TIMEOUT": "2.5",
        "MAX_AGE_DAYS": "30", "MAX_REJECT_RATE": "0.1", "INBOUND_MAILBOX": "in@example.com",
        "SECRET_KEY": "k", "EXPECTATIONS_DIR": str(tmp_path / "exp"),
        "SMTP_HOST": "smtp.example.com", "SMTP_PORT": "587", "SMTP_USER": "u",
        "SMTP_PASSWORD": "p", "SMTP_STARTTLS": "yes", "SMTP_FROM": "r@example.com",
        "INBOUND_IMAP_HOST": "imap.example.com", "INBOUND_IMAP_PORT": "1143",
        "INBOUND_IMAP_USER": "iu", "INBOUND_IMAP_PASSWORD": "ip",
        "INBOUND_IMAP_SECURITY": "STARTTLS", "INBOUND_IMAP_FOLDER": "Partners",
    }  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    assert Settings.from_env() == Settings(
        home=tmp_path, db_path=tmp_path / "x.duckdb", bind="0.0.0.0", sftp_port=0, ftp_port=2100,
        max_file_bytes=1000, lock_timeout=2.5, validation_max_age_days=30, max_reject_rate=0.1,
        inbound_mailbox="in@example.com", secret_key="k", expectations_dir=tmp_path / "exp",
        smtp=SmtpSettings("smtp.example.com", 587, "u", "p", True, "r@example.com"),
        mailbox=MailboxSettings("imap.example.com", 1143, "iu", "ip", "starttls", "Partners"),
    )  # fmt: skip


def test_secrets_stay_out_of_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTBATCH_SECRET_KEY", "s3cret-key")
    monkeypatch.setenv("CONNECTBATCH_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("CONNECTBATCH_SMTP_PASSWORD", "s3cret-smtp")
    monkeypatch.setenv("CONNECTBATCH_INBOUND_IMAP_HOST", "imap.example.com")
    monkeypatch.setenv("CONNECTBATCH_INBOUND_IMAP_PASSWORD", "s3cret-imap")
    assert "s3cret" not in repr(Settings.from_env())


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SFTP_PORT", "abc", "CONNECTBATCH_SFTP_PORT must be a whole number, not 'abc'"),
        ("FTP_PORT", "70000", "CONNECTBATCH_FTP_PORT must be a whole number from 0 to 65535, not '70000'"),
        ("MAX_FILE_BYTES", "2GB", "CONNECTBATCH_MAX_FILE_BYTES must be a whole number, not '2GB'"),
        ("MAX_AGE_DAYS", "1.5", "CONNECTBATCH_MAX_AGE_DAYS must be a whole number, not '1.5'"),
        ("LOCK_TIMEOUT", "soon", "CONNECTBATCH_LOCK_TIMEOUT must be a number, not 'soon'"),
        ("MAX_REJECT_RATE", "5%", "CONNECTBATCH_MAX_REJECT_RATE must be a number, not '5%'"),
        ("INBOUND_MAILBOX", "inbox", "CONNECTBATCH_INBOUND_MAILBOX must be an e-mail address"),
        ("PARSE_THREADS", "0", "CONNECTBATCH_PARSE_THREADS must be a whole number from 1 to 64, not '0'"),
        ("VALIDATION_ENGINE", "fast", "CONNECTBATCH_VALIDATION_ENGINE must be one of columnar, gx"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env()
    assert str(err.value).startswith(message)
    assert err.value.__cause__ is None  # no chained ValueError traceback to read through


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SMTP_PORT", "twenty-five", "CONNECTBATCH_SMTP_PORT must be a whole number, not 'twenty-five'"),
        ("SMTP_PORT", "0", "CONNECTBATCH_SMTP_PORT must be a whole number from 1 to 65535, not '0'"),
        ("SMTP_STARTTLS", "maybe", "CONNECTBATCH_SMTP_STARTTLS must be true or false"),
    ],
)
def test_a_bad_smtp_value_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv("CONNECTBATCH_SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        SmtpSettings.from_env()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INBOUND_IMAP_PORT", "imaps", "CONNECTBATCH_INBOUND_IMAP_PORT must be a whole number, not 'imaps'"),
        ("INBOUND_IMAP_SECURITY", "tls", "CONNECTBATCH_INBOUND_IMAP_SECURITY must be one of ssl, starttls"),
    ],
)
def test_a_bad_mailbox_value_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv("CONNECTBATCH_INBOUND_IMAP_HOST", "imap.example.com")
    monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        MailboxSettings.from_env()


def test_smtp_and_mailbox_values_are_ignored_without_their_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """As before: the host switches the feature on, the other variables only shape it."""
    monkeypatch.setenv("CONNECTBATCH_SMTP_PORT", "587")
    monkeypatch.setenv("CONNECTBATCH_INBOUND_IMAP_PORT", "993")
    assert (SmtpSettings.from_env(), MailboxSettings.from_env()) == (None, None)


def test_the_cli_reports_a_bad_value_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path))
    monkeypatch.setenv("CONNECTBATCH_MAX_AGE_DAYS", "ninety")
    assert main(["demo"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "connectbatch: error: CONNECTBATCH_MAX_AGE_DAYS must be a whole number, not 'ninety'\n"
    )
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize(("name", "value"), [("PARSE_THREADS", "0"), ("VALIDATION_ENGINE", "fast")])
def test_a_bad_parser_or_validation_setting_refuses_the_command_not_the_partners_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    """Both are read per parse / per validation (those run without a Settings), so nothing
    checked them at start: `ingest` and every push or pull recorded the partner's file as
    rejected (or failed) with "CONNECTBATCH_PARSE_THREADS must be ..." as its message, in
    the results a partner is sent, and `serve` logged a traceback at its warm-up. Now the
    command stops at start with the one line, and records nothing."""
    monkeypatch.setenv("CONNECTBATCH_HOME", str(tmp_path))
    assert main(["partner", "add", "Acme", "--type", "vendor"]) == 0
    connection = ["--name", "c", "--partner", "Acme", "--type", "call_conversions", "--direction", "inbound"]
    assert main(["connection", "add", *connection, "--method", "sftp", "--methodology", "push"]) == 0
    sample = tmp_path / "calls.csv"
    sample.write_text(schemas.get("call_conversions").template_csv(), encoding="utf-8")
    capsys.readouterr()
    monkeypatch.setenv(f"CONNECTBATCH_{name}", value)

    assert main(["ingest", str(sample), "--connection", "c"]) == 2

    captured = capsys.readouterr()
    assert captured.err.startswith(f"connectbatch: error: CONNECTBATCH_{name} must be ")
    assert captured.err.count("\n") == 1 and captured.out == ""
    monkeypatch.delenv(f"CONNECTBATCH_{name}")
    assert main(["runs"]) == 0 and "no runs" in capsys.readouterr().out.lower()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_REJECT_RATE", "nan", "CONNECTBATCH_MAX_REJECT_RATE must be a number from 0 to 1, not 'nan'"),
        ("MAX_REJECT_RATE", "-1", "CONNECTBATCH_MAX_REJECT_RATE must be a number from 0 to 1, not '-1'"),
        ("MAX_REJECT_RATE", "5", "CONNECTBATCH_MAX_REJECT_RATE must be a number from 0 to 1, not '5'"),
        ("DB_LINGER", "inf", "CONNECTBATCH_DB_LINGER must be a number from 0 to 3600, not 'inf'"),
        ("LOCK_TIMEOUT", "-1", "CONNECTBATCH_LOCK_TIMEOUT must be a number from 0 to 86400, not '-1'"),
        ("PREAUTH_TIMEOUT", "nan", "CONNECTBATCH_PREAUTH_TIMEOUT must be a number from 0 to 86400"),
        ("PARTIAL_UPLOAD_GRACE_HOURS", "-24", "CONNECTBATCH_PARTIAL_UPLOAD_GRACE_HOURS must be a number"),
        ("SESSION_HOURS", "0", "CONNECTBATCH_SESSION_HOURS must be a number from 0.01 to 8760, not '0'"),
        ("SESSION_HOURS", "1e999", "CONNECTBATCH_SESSION_HOURS must be a number from 0.01 to 8760"),
        ("MAX_AGE_DAYS", "-1", "CONNECTBATCH_MAX_AGE_DAYS must be a whole number from 1 to 1000000"),
        ("MAX_FILE_BYTES", "-1", "CONNECTBATCH_MAX_FILE_BYTES must be a whole number from 1 to"),
    ],
)
def test_a_number_out_of_its_range_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    """float() takes "nan", "inf" and negatives: a NaN reject rate started every ingest and
    failed each file at validation, a negative age window failed every row, and
    CONNECTBATCH_DB_LINGER=inf crashed the thread that closes the database with a traceback.
    Each is refused at start with the variable and its range instead."""
    monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env()
    assert str(err.value).startswith(message)


def test_the_edges_of_each_range_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """0 keeps its documented meanings (no wait, closed at once, no pre-login limit)."""
    for name, value in {"LOCK_TIMEOUT": "0", "DB_LINGER": "0", "PREAUTH_TIMEOUT": "0",
                        "MAX_REJECT_RATE": "1", "MAX_AGE_DAYS": "100000"}.items():  # fmt: skip
        monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    s = Settings.from_env()
    assert (s.lock_timeout, s.db_linger, s.preauth_timeout) == (0, 0, 0)
    assert (s.max_reject_rate, s.validation_max_age_days) == (1, 100000)


def test_debug_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_module.debug_enabled() is False
    monkeypatch.setenv("CONNECTBATCH_DEBUG", "1")
    assert settings_module.debug_enabled() is True


def test_the_hosted_ftp_server_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    defaults = Settings.from_env()
    assert (defaults.ftp_cert_file, defaults.ftp_key_file, defaults.ftp_passive_ports) == (None, None, None)
    assert defaults.ftp_require_tls is True
    assert (defaults.max_connections_per_address, defaults.preauth_timeout) == (8, 30.0)
    assert defaults.partial_upload_grace_hours == 24.0
    values = {
        "FTP_CERT_FILE": str(tmp_path / "c.pem"), "FTP_KEY_FILE": str(tmp_path / "k.pem"),
        "FTP_PASSIVE_PORTS": "60000-60100", "FTP_REQUIRE_TLS": "no",
        "MAX_CONNECTIONS_PER_ADDRESS": "3", "PREAUTH_TIMEOUT": "7.5", "PARTIAL_UPLOAD_GRACE_HOURS": "2",
    }  # fmt: skip
    for name, value in values.items():
        monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
    s = Settings.from_env()
    assert (s.ftp_cert_file, s.ftp_key_file) == (tmp_path / "c.pem", tmp_path / "k.pem")
    assert (s.ftp_passive_ports, s.ftp_require_tls) == ((60000, 60100), False)
    assert (s.max_connections_per_address, s.preauth_timeout, s.partial_upload_grace_hours) == (3, 7.5, 2.0)
    monkeypatch.setenv("CONNECTBATCH_FTP_PASSIVE_PORTS", "60100-60000")
    with pytest.raises(ConfigurationError, match="CONNECTBATCH_FTP_PASSIVE_PORTS must be a port range"):
        Settings.from_env()


def test_the_hosted_servers_limits_per_login_and_per_push_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONNECTBATCH_MAX_SESSIONS_PER_LOGIN and CONNECTBATCH_PUSH_QUOTA_BYTES: defaults, values,
    and a range each (a login needs a session, a folder a byte; 0 is not "no limit")."""
    defaults = Settings.from_env()
    assert (defaults.max_sessions_per_login, defaults.push_quota_bytes) == (8, 10 * 1024**3)
    monkeypatch.setenv("CONNECTBATCH_MAX_SESSIONS_PER_LOGIN", "10000")
    monkeypatch.setenv("CONNECTBATCH_PUSH_QUOTA_BYTES", "1")
    s = Settings.from_env()
    assert (s.max_sessions_per_login, s.push_quota_bytes) == (10000, 1)
    monkeypatch.delenv("CONNECTBATCH_PUSH_QUOTA_BYTES")
    monkeypatch.setenv("CONNECTBATCH_MAX_FILE_BYTES", str(20 * 1024**3))  # files over the default quota
    assert Settings.from_env().push_quota_bytes == 20 * 1024**3  # a file the size limit allows fits
    monkeypatch.delenv("CONNECTBATCH_MAX_FILE_BYTES")
    for name, value, message in [
        ("MAX_SESSIONS_PER_LOGIN", "0", "must be a whole number from 1 to 10000, not '0'"),
        ("MAX_SESSIONS_PER_LOGIN", "10001", "must be a whole number from 1 to 10000"),
        ("MAX_SESSIONS_PER_LOGIN", "four", "must be a whole number, not 'four'"),
        ("PUSH_QUOTA_BYTES", "0", "must be a whole number from 1 to"),
        ("PUSH_QUOTA_BYTES", "-5", "must be a whole number from 1 to"),
        ("PUSH_QUOTA_BYTES", "10GiB", "must be a whole number, not '10GiB'"),
    ]:
        monkeypatch.delenv("CONNECTBATCH_MAX_SESSIONS_PER_LOGIN", raising=False)
        monkeypatch.delenv("CONNECTBATCH_PUSH_QUOTA_BYTES", raising=False)
        monkeypatch.setenv(f"CONNECTBATCH_{name}", value)
        with pytest.raises(ConfigurationError) as err:
            Settings.from_env()
        assert str(err.value).startswith(f"CONNECTBATCH_{name} {message}")


def test_a_data_directory_that_cannot_be_made_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It ended every command with a bare "[Errno 20] Not a directory: '.../home'"."""
    (tmp_path / "a-file").write_text("")
    home = tmp_path / "a-file" / "home"
    monkeypatch.setenv("CONNECTBATCH_HOME", str(home))
    assert main(["connection", "list"]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"connectbatch: error: the data directory {home} (CONNECTBATCH_HOME) cannot be used: "
        f"Not a directory: {home}\n"
    )
