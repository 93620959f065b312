"""A change's outcome on Pending actions quotes what was typed (an amount, a reason) as text:
`*5*` typed as an amount read as an italic 5 in the message that refused it."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page() -> None:
    import sys

    sys.path.insert(0, ".")  # the app's folder: app_pages is imported as the app does
    from app_pages.actions import show_outcomes
    from connectbatch.explorer import ActionOutcome

    show_outcomes(
        [
            ActionOutcome(1, False, "amount '*5*' is not a number"),
            ActionOutcome(2, True, "amount is now **7**"),
        ]
    )


def test_outcome_messages_are_shown_as_typed() -> None:
    at = AppTest.from_function(_page, default_timeout=30).run()
    assert not at.exception
    assert at.error[0].value == r"A-000001 was not changed: amount '\*5\*' is not a number"
    assert r"A-000002 amount is now \*\*7\*\*" in at.success[0].value
