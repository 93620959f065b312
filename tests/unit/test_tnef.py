"""Files taken out of Outlook's winmail.dat (TNEF): the reader finds each file's long name
and bytes as an independent reader (tnefparse) does, and hostile wrappers end quickly with
NotReadable, never a hang or another exception."""

from __future__ import annotations

import struct
import time

import pytest
from helpers import tnef as build
from hypothesis import given, settings
from hypothesis import strategies as st
from imap_tools import MailMessage

from connectbatch.transfer.pull.imap import message, tnef

CSV = b"CampaignId,MediaId\r\n1,2\r\n"
HEAD = struct.pack("<IH", build.SIGNATURE, 1)
FILES = [("Calls_2026-03-01.csv", CSV), ("Ablauf \u00e9t\u00e9 \u65e5\u672c.csv", b"x,y\n1,2\n" * 50)]


def test_the_files_are_read_as_tnefparse_reads_them() -> None:
    tnefparse = pytest.importorskip("tnefparse")
    data = build.winmail(FILES)

    theirs = tnefparse.TNEF(data)
    ours = tnef.files(data)

    assert [(a.long_filename(), a.data) for a in theirs.attachments] == FILES
    assert [(f.name, f.data) for f in ours] == FILES


def test_without_a_long_name_the_short_title_is_the_name() -> None:
    [file] = tnef.files(build.winmail([("Calls_2026-03-01.csv", CSV)], short_names=True))
    assert (file.name, file.data) == ("CALLS_~1.CSV", CSV)


def test_a_long_name_in_8_bit_text_is_read_in_the_wrappers_codepage() -> None:
    name = "Übersicht.csv"
    data = build.winmail([(name, CSV)], short_names=True)
    props = build.mapi_props(build.mapi_string(0x3707, name, unicode=False))
    data += build.attribute(2, 0x9002, "byte", b"\0" * 20) + build.attribute(2, 0x800F, "byte", CSV)
    data += build.attribute(2, 0x9005, "byte", props)
    assert [f.name for f in tnef.files(data)] == ["ÜBERSI~1.CSV", name]


def test_bytes_in_the_data_object_are_read_as_tnefparse_reads_them() -> None:
    """Newer Outlook puts the bytes in PR_ATTACH_DATA_OBJ (seen in tnefparse's samples)."""
    tnefparse = pytest.importorskip("tnefparse")
    data = build.winmail(FILES, data_object=True)

    theirs = tnefparse.TNEF(data, do_checksum=False)

    assert [(a.long_filename(), a.data) for a in theirs.attachments] == FILES
    assert [(f.name, f.data) for f in tnef.files(data)] == FILES


def test_a_last_attribute_without_its_checksum_is_read_whole() -> None:
    """Some writers leave off the last checksum (tnefparse's bad_checksum sample, from a real
    mailer); tnefparse then drops the value's last two bytes, we keep them."""
    data = build.winmail(FILES, data_object=True, checksum_at_end=False)
    assert [(f.name, f.data) for f in tnef.files(data)] == FILES


def test_the_name_falls_back_to_the_file_name_property_then_the_title() -> None:
    with_filename = build.winmail([("x.csv", CSV)], short_names=True)
    props = build.mapi_props(build.mapi_string(0x3704, "calls.csv"), build.mapi_binary(0x3701, CSV))
    with_filename += build.attribute(2, 0x9002, "byte", b"\0" * 20) + build.attribute(
        2, 0x8010, "string", b"CALLS~1.CSV\0"
    )
    with_filename += build.attribute(2, 0x9005, "byte", props)
    assert [(f.name, f.data) for f in tnef.files(with_filename)] == [("X~1.CSV", CSV), ("calls.csv", CSV)]


def test_an_attached_mail_is_not_a_file() -> None:
    """An Outlook item attached to the mail (PR_ATTACH_DATA_OBJ starting with IID_IMessage)."""
    embedded = tnef.EMBEDDED_MESSAGE + build.winmail([("inner.csv", CSV)])
    data = build.winmail([("calls.csv", CSV)])
    data += build.attribute(2, 0x9002, "byte", b"\0" * 20)
    data += build.attribute(
        2, 0x9005, "byte", build.mapi_props(build.mapi_binary(0x3701, embedded, kind=0x000D))
    )
    assert [f.name for f in tnef.files(data)] == ["calls.csv"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "no TNEF signature"),
        (b"PK\x03\x04" + b"\0" * 40, "no TNEF signature"),
        (HEAD + build.attribute(2, 0x800F, "byte", CSV), "before its start"),
        (build.winmail(FILES)[:-40], "runs past the end"),
    ],
)  # fmt: skip
def test_what_is_not_a_readable_wrapper_says_so(data: bytes, why: str) -> None:
    with pytest.raises(tnef.NotReadable, match=why):
        tnef.files(data)


def test_a_wrapper_without_files_has_none() -> None:
    assert tnef.files(HEAD + b"\0" * 64) == []


def test_millions_of_tiny_attributes_end_at_the_bound_at_once() -> None:
    """A reader that copies the rest of the data per attribute is quadratic here (~25 MB)."""
    data = HEAD + build.attribute(1, 0x9006, "dword", b"") * 2_300_000
    started = time.perf_counter()
    with pytest.raises(tnef.NotReadable, match="attributes"):
        tnef.files(data)
    assert time.perf_counter() - started < 10  # generous: it is linear and stops at the bound


def test_a_huge_mapi_property_count_is_bounded_by_the_bytes() -> None:
    props = struct.pack("<I", 0xFFFFFFFF) + struct.pack("<HHI", 0x0003, 0x0E21, 7)
    data = build.winmail([("a.csv", CSV)], short_names=True) + build.attribute(2, 0x9005, "byte", props)
    assert [f.name for f in tnef.files(data)] == ["A~1.CSV"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=600))
def test_any_bytes_give_files_or_not_readable(noise: bytes, at: int) -> None:
    """Partner-controlled bytes: garbage spliced into a real wrapper never raises otherwise."""
    real = build.winmail(FILES)
    data = real[:at] + noise + real[at + len(noise) :]
    try:
        found = tnef.files(data)
    except tnef.NotReadable:
        return
    assert all(isinstance(f.name, str) and isinstance(f.data, bytes) for f in found)


def _mail(wrapper: bytes) -> MailMessage:
    return MailMessage.from_bytes(build.mail("data@connectbatch.example", wrapper).as_bytes())


def test_a_message_lists_the_files_inside_its_winmail_dat() -> None:
    found = message.attachments(_mail(build.winmail(FILES)))
    assert [(a.name, a.part.payload, a.forwarded) for a in found] == [
        (name, data, message.WINMAIL) for name, data in FILES
    ]
    assert not any(message.is_tnef(a) for a in found)


def test_a_winmail_dat_that_cannot_be_read_stays_one_attachment() -> None:
    [found] = message.attachments(_mail(b"\x78\x9f\x3e\x22\x01\x00" + b"\x00" * 64))
    assert found.name == "winmail.dat" and message.is_tnef(found)


def test_names_inside_the_wrapper_are_made_safe() -> None:
    found = message.attachments(_mail(build.winmail([("../../etc/\u202ecsv.exe", CSV)])))
    assert [a.name for a in found] == ["csv.exe"]
