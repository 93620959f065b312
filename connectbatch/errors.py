"""The ConnectBatch exception hierarchy.

Every error a user can cause derives from ConnectBatchError and also from the builtin it
resembles, so callers may catch either (`except ValueError` keeps working for ParseError).
Messages are written for the person who sent or configured the file, not for a developer.
"""


class ConnectBatchError(Exception):
    """Base of every error ConnectBatch raises on purpose."""


class ParseError(ConnectBatchError, ValueError):
    """A file cannot be used as a whole (wrong header, unknown encoding, not CSV, ...)."""


class UnknownDataTypeError(ConnectBatchError, KeyError):
    """A data type key that the schema registry does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ConfigurationError(ConnectBatchError, ValueError):
    """A setting or option has a value ConnectBatch cannot use."""


class TransportError(ConnectBatchError, OSError):
    """A transfer to or from a partner's server or mailbox failed."""


class ListenError(ConnectBatchError, OSError):
    """A hosted SFTP/FTP server cannot listen on its address and port (in use, not an
    address of this machine): the message names the setting to change."""


class DataConnectionError(TransportError):
    """An FTP server that answered on its control connection refused the data connection of
    a listing or a download (its passive ports blocked by a firewall, a common set-up fault):
    the login worked, so it is not marked as failing."""


class RemoteFileChangedError(TransportError):
    """A listed remote file changed while it was fetched: the partner is still writing it.
    Nothing is wrong with the connection; the file waits for a later run (`reason`)."""

    @property
    def reason(self) -> str:
        """Why a run did not take the file, as its ledger line says."""
        return f"{self}; not taken now: a later run takes it once it stops changing"


class RemoteFileDamagedError(RemoteFileChangedError):
    """A file that arrived damaged (a mail cut off before its closing boundary, an attachment
    whose base64 has bad characters): what we could read is not what was sent. Never taken;
    a mail is marked processed like one too large (the sender must send it again)."""

    @property
    def reason(self) -> str:
        return f"{self}; not taken: ask the sender to send it again"


class RemoteFileTooLargeError(RemoteFileChangedError):
    """A remote file is (or grew, while fetched) larger than CONNECTBATCH_MAX_FILE_BYTES:
    the download stopped at the limit, so a partner server that never ends a download (or
    lists a huge file) cannot fill our disk. Not taken, like a file still changing; the
    files beside it go on."""

    @property
    def reason(self) -> str:
        return f"{self}; not taken: send it in smaller files"


class RemoteFileRefusedError(TransportError):
    """The partner's server refused one listed file (no read permission for our login, or
    gone since the listing) while the login itself works. Only that file is not taken: the
    files beside it go on, the credential stays Active, and later runs try it again, since
    a permission the partner fixes changes neither its size nor its time."""

    @property
    def reason(self) -> str:
        """Why a run did not take the file, as its ledger line says."""
        return f"{self}; not taken: the files beside it went on, and a later run tries it again"


class RunInProgressError(ConnectBatchError, RuntimeError):
    """A run for this connection is already going on (in this or another process)."""
