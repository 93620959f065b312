"""A hosted FTPS server's certificate or key file that is no PEM (an operator audit): `serve`
stopped with "internal error: [('PEM routines', '', 'no start line'), ...]" instead of one
line naming the setting, as every other bad setting does."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectbatch.errors import ConfigurationError
from connectbatch.transfer.push.ftp.server import _ssl_context


def test_a_file_that_is_no_pem_certificate_names_its_setting(tmp_path: Path) -> None:
    junk = tmp_path / "x.pem"
    junk.write_text("hello\n")
    with pytest.raises(ConfigurationError) as raised:
        _ssl_context(junk, junk)
    assert (
        str(raised.value)
        == f"CONNECTBATCH_FTP_CERT_FILE: {junk} is not a PEM certificate (no start line; PEM lib)"
    )
