"""Names are data: partner-controlled text (file names, headers, mail subjects, rejected
values) shown to a person, logged, or written to a spreadsheet must not act as anything
else.

* `visible` turns control characters into visible escapes, so a file named
  ``"a.csv\\n2026-01-01 INFO forged"`` cannot forge a log line and ``"\\x1b]0;...\\x07"``
  cannot drive the operator's terminal. C0 and C1 controls, DEL and the Unicode bidi
  overrides (which reorder what a person reads) are escaped; everything else is kept.
* `EscapingFilter` / `install` apply `visible` to every log record's message where logging
  is configured, so one record is always one line.
* `markdown_text` shows such text literally where the app renders Markdown (titles, alerts,
  captions, labels): ``**``, ``[link](…)``, ``$…$`` (LaTeX) and ``:red[…]`` stay characters.
* `csv_cell` neutralises spreadsheet formulas (CSV injection, OWASP): a cell that a
  spreadsheet could run as something more than arithmetic gets a leading ``'`` so Excel and
  LibreOffice show it as text (`FORMULA_PATTERN`, the same rule in Python, Arrow and SQL).
"""

from __future__ import annotations

import html
import logging
import re

# C0 controls, DEL, C1 controls, bidi embeddings/overrides/isolates, line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character as a visible escape (``\\x1b``, ``\\n``)."""
    return _UNSAFE.sub(_escape, text)


# What Streamlit's Markdown would act on: emphasis, code, links, directives, HTML, headings,
# tables, LaTeX ($), strikethrough; escaped with a backslash, so each shows as itself.
# `&` too: an HTML character reference (`&period;`, `&rlm;`, `&colon;`) is decoded by Markdown,
# which made "www&period;evil&period;example" a link and `&rlm;` a real bidi mark.
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|$~&"})


# Streamlit acts on more than Markdown: `:smile:` shortcodes, `:material/home:` icons and
# `:red[...]` colours after a colon, and it links bare `http://...` and `www....` (GFM
# autolinks). A backslash stops the shortcodes and colours but not the icons or the links
# (tried in Chromium), so an invisible WORD JOINER goes after such a colon and after `www`:
# the text reads the same, and no partner's name becomes an icon, a colour or a link to click.
# Only there: a joiner in `host:22` or `12:30` would follow the text into a copy and paste.
_JOINER = "\u2060"
_ACTED_ON = re.compile(
    r"(?:(?<=:)(?=[\w+-]*[^\W\d_][\w+-]*[:\[])"  # :word: or :red[ (a letter in the word)
    r"|(?<=:)(?=material/)"  # :material/home:
    r"|(?<=\bhttp:)(?=//)|(?<=\bhttps:)(?=//)"  # http://...
    r"|(?<=\bwww)(?=\.))",  # www....
    re.IGNORECASE,
)
# A list item or a heading rule at the start (`- x`, `+ x`, `1. x`, `1) x`): escaped.
_LEADING_MARKER = re.compile(r"^(\s*)([-+=]|\d+(?=[.)]))")


def markdown_text(text: str | None) -> str:
    """`text` (a name, a reason, a note) to show literally inside the app's Markdown:
    control characters as `visible` escapes, Markdown and LaTeX marks backslash-escaped,
    Streamlit's icons, colours and links broken by an invisible joiner (`_ACTED_ON`)."""
    escaped = _ACTED_ON.sub(_JOINER, visible(text or "")).translate(_MARKDOWN)
    return _LEADING_MARKER.sub(_escape_marker, escaped, count=1)


def as_stored(text: str) -> str:
    """`text` copied from the page back as it was stored: without the invisible joiners
    `markdown_text` and `html_text` put in. A name like "www.acme.com calls" copied from the
    Delete tab's warning into its "type the name to confirm" box kept the joiner after
    "www", matched nothing, and the Delete button stayed disabled with no reason given."""
    return text.replace(_JOINER, "")


def html_text(text: str | None) -> str:
    """`text` to show literally inside HTML the app draws (the reject-rate chart, `st.html`):
    control characters as `visible` escapes, HTML escaped, and Streamlit's icons, colours and
    links broken by the invisible joiner as in `markdown_text`, since `st.markdown` rewrites
    `:material/home:` even inside raw HTML. No backslashes: HTML is not read as Markdown, so
    they would show."""
    return html.escape(_ACTED_ON.sub(_JOINER, visible(text or "")), quote=True)


def _escape_marker(found: re.Match[str]) -> str:
    marker = found.group(2)
    if marker[0].isdigit():  # `1.` -> `1\.`: the escape goes on the dot or parenthesis
        return found.group(1) + marker + "\\"
    return found.group(1) + "\\" + marker


# What csv_cell (and results_csv, vectorised, and the CSV DuckDB writes, store/csvsql.py)
# escapes: a cell starting with `=`, `@`, tab or CR (OWASP), and one starting with `+` or `-`
# that holds anything beyond letters, digits and `._/#:,+-` and spaces. Without `(` no
# function is called (HYPERLINK, WEBSERVICE), without `|` and `!` no DDE or other sheet is
# reached, without quotes no string is made: "+15551234567" (E.164), "-12.50" or a key
# "-abc" is at most arithmetic or an error in a cell, and comes back to the partner's system
# exactly as they sent it. Escaping those too put a `'` before every E.164 number and every
# such key in results, status and export files, which the partner's system then could not
# match. One RE2 pattern, read the same by Python's `re`, Arrow and DuckDB.
FORMULA_STARTS = "=+-@\t\r"
FORMULA_PATTERN = r"^(?s:[=@\t\r]|[+\-].*[^A-Za-z0-9 ._/#:,+\-])"
_FORMULA = re.compile(FORMULA_PATTERN)


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula: a leading `'` before a
    cell `FORMULA_PATTERN` matches (`=HYPERLINK(...)`, `@SUM(A1)`, `+cmd|' /C calc'!A0`), and
    the partner's values otherwise exactly as they are (`+15551234567`, `-12.50`)."""
    if not value or value[0] not in FORMULA_STARTS:
        return value
    return "'" + value if _FORMULA.match(value) else value


class EscapingFilter(logging.Filter):
    """Makes a record's message safe to write as one line: the message is formatted once
    with its arguments and control characters in it escaped (a traceback, added by the
    formatter after the message, keeps its own lines). String extras are escaped too."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_escaped", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it as usual
            return True
        record.msg, record.args = visible(message), None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, visible(value))
        record._escaped = True
        return True


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def install(logger: logging.Logger | None = None) -> None:
    """Add `EscapingFilter` to every handler of `logger` (the root logger by default): where
    logging is configured (`connectbatch` CLI, `serve`, the app)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, EscapingFilter) for f in handler.filters):
            handler.addFilter(EscapingFilter())
