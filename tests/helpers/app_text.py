"""What an AppTest page says in words: its Markdown, captions and alerts as one string, for
tests that look for a sentence wherever the page put it."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def texts(at: AppTest) -> str:
    """Everything the page says in Markdown, captions and alerts, as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [a.value for kind in (at.error, at.warning, at.info, at.success) for a in kind]
    return "\n".join(parts)
