"""Pull files from a partner's FTP or FTPS server (ftplib), registered as method ``"ftp"``.

`transport` logs in, lists, downloads and tidies up (its docstring says what it assumes of
partners' servers); `listing` reads MLSD facts and LIST lines; `probe` asks
SIZE (in binary mode) and CWD about a listed name LIST did not describe; `names` is the wire encoding
that reads any file name (UTF-8 or not) and sends it back unchanged; `tls` holds the FTP_TLS
variants that resume the TLS session on data connections and speak implicit FTPS.

Importing this package registers the transport (`transfer.base.open_transport`).
"""

from connectbatch.transfer.pull.ftp.listing import parse_list_line
from connectbatch.transfer.pull.ftp.transport import FtpTransport

# The name the LIST-parser tests have always imported.
_parse_list_line = parse_list_line

__all__ = ["FtpTransport", "parse_list_line"]
