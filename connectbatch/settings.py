"""Runtime configuration: one settings object read from CONNECTBATCH_* environment variables.

Defaults work on a laptop: everything lives under ./data and servers bind to 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from connectbatch.errors import ConfigurationError


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path("data"))
    db_path: Path | None = None
    bind: str = "127.0.0.1"
    sftp_port: int = 2222
    ftp_port: int = 2121
    max_file_bytes: int = 2 * 1024**3
    lock_timeout: float = 30.0  # seconds to wait for another process to release the DB
    validation_max_age_days: int = 90
    max_reject_rate: float = 0.05

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("CONNECTBATCH_HOME") or "data")
        db = os.environ.get("CONNECTBATCH_DB")
        return cls(
            home=home,
            db_path=Path(db) if db else None,
            bind=os.environ.get("CONNECTBATCH_BIND") or "127.0.0.1",
            sftp_port=_int("CONNECTBATCH_SFTP_PORT", 2222),
            ftp_port=_int("CONNECTBATCH_FTP_PORT", 2121),
            max_file_bytes=_int("CONNECTBATCH_MAX_FILE_BYTES", 2 * 1024**3),
            lock_timeout=_float("CONNECTBATCH_LOCK_TIMEOUT", 30.0),
            validation_max_age_days=_int("CONNECTBATCH_MAX_AGE_DAYS", 90),
            max_reject_rate=_float("CONNECTBATCH_MAX_REJECT_RATE", 0.05),
        )

    @property
    def database(self) -> Path:
        return self.db_path or self.home / "connectbatch.duckdb"

    @property
    def staging(self) -> Path:
        """Received bytes, stored once by sha256 before anything reads them."""
        return self.home / "staging"

    @property
    def runs_dir(self) -> Path:
        """Per-run staged results (accepted rows as Parquet) for quarantine and retry."""
        return self.home / "runs"

    @property
    def outbound(self) -> Path:
        """Results files and summaries for senders, one folder per connection."""
        return self.home / "outbound"

    @property
    def key_file(self) -> Path:
        return self.home / "secret.key"
