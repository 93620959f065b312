"""An HTML fragment the app draws (st.html: the reject-rate trend, the bar charts) read back
element by element, for tests that check what a chart shows without a browser."""

from __future__ import annotations

from html.parser import HTMLParser


class Parsed(HTMLParser):
    """The fragment's elements as (tag, attributes, text inside), in order."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], str]] = []
        self._open: list[int] = []
        self.feed(fragment)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}, ""))
        self._open.append(len(self.elements) - 1)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            tag, attrs, text = self.elements[self._open[-1]]
            self.elements[self._open[-1]] = (tag, attrs, text + data)

    def of_class(self, name: str) -> list[tuple[dict[str, str], str]]:
        return [(a, t) for _, a, t in self.elements if name in a.get("class", "").split()]
