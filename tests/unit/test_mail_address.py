"""The address of an e-mail push connection: its name and a random ending (mail_address)."""

from __future__ import annotations

import re

from connectbatch import mail_address
from connectbatch.models import Connection, Direction, Method, Methodology

BOX = "inbox@connectbatch.local"


def test_a_new_tag_is_the_names_tag_and_a_random_ending() -> None:
    tags = {mail_address.new_tag(BOX, "Acme Calls") for _ in range(50)}
    assert len(tags) == 50
    assert all(re.fullmatch(r"acme-calls-[a-z0-9]{8}", t) for t in tags), tags


def test_a_new_tag_of_a_long_name_leaves_room_for_the_dry_run_address() -> None:
    name = "Leadwave Media call conversions for the spring campaign, east coast region"
    tag = mail_address.new_tag(BOX, name)
    connection = Connection(name, "call_conversions", Direction.INBOUND, Method.EMAIL, Methodology.PUSH,
                            mail_tag=tag)  # fmt: skip
    local = mail_address.dryrun_address(BOX, connection).partition("@")[0]
    assert len(local) <= mail_address.MAX_LOCAL_PART
    assert re.fullmatch(r"leadwave-media-call-[a-z0-9-]*-[a-z0-9]{8}", tag), tag


def test_a_name_with_no_letter_still_gets_an_address() -> None:
    assert re.fullmatch(r"[a-z0-9]{8}", mail_address.new_tag(BOX, "🎉 ✓"))
    assert mail_address.draft_address(BOX, "🎉 ✓") == "inbox+…@connectbatch.local"


def test_a_draft_is_shown_the_shape_of_its_address() -> None:
    assert mail_address.draft_address(BOX, "Acme Calls") == "inbox+acme-calls-…@connectbatch.local"


def test_a_new_tag_is_ascii_whatever_the_name() -> None:
    """An address in UTF-8 needs SMTPUTF8 of every mail server on the way (an operator audit:
    "Réseau été / calls" was given inbox+réseau-été---calls-...@)."""
    assert re.fullmatch(r"reseau-ete---calls-[a-z0-9]{8}", mail_address.new_tag(BOX, "Réseau été / calls"))
    assert re.fullmatch(r"muller-media-[a-z0-9]{8}", mail_address.new_tag(BOX, "Müller Media"))
    assert re.fullmatch(r"[a-z0-9]{8}", mail_address.new_tag(BOX, "日本の通話"))
    assert mail_address.draft_address(BOX, "Müller Media") == "inbox+muller-media-…@connectbatch.local"
