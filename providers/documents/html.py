"""HTML to text, without the page's boilerplate: scripts, styles, navigation, headers, footers,
asides, forms and cookie banners.

The standard library's event parser builds no tree, and this one keeps a depth counter only,
so 100,000 nested elements cost what 100,000 siblings cost: linear time, constant memory.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements dropped with everything inside them.
_DROPPED = frozenset(
    {
        "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
        "button", "select", "svg", "canvas", "iframe", "object", "head", "dialog",
    }
)  # fmt: skip
# id, class, role or aria-label words that mark boilerplate on any element.
_BOILERPLATE = re.compile(
    r"cookie|consent|gdpr|banner|newsletter|navbar|breadcrumb|menu|sidebar|footer|header|"
    r"skip-link|social|share",
    re.I,
)
_BOILERPLATE_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "dialog"})
# Elements without an end tag: they never open a level.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr", "param"}
)  # fmt: skip
# Elements that end a line of text.
_BLOCKS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
        "tr", "table", "section", "article", "main", "blockquote", "pre", "hr", "address",
        "figcaption", "title",
    }
)  # fmt: skip


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.dropping = 0  # depth inside a dropped element; 0 when the text is kept
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _VOID:
            if tag in _BLOCKS and not self.dropping:
                self.pieces.append("\n")
            return
        if self.dropping:
            self.dropping += 1
        elif tag in _DROPPED or _is_boilerplate(attrs):
            self.dropping = 1
        elif tag in _BLOCKS:
            self.pieces.append("\n")
        elif tag in ("td", "th"):  # cells of a row stay apart on its line
            self.pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _VOID:
            return
        if self.dropping:
            self.dropping -= 1
        elif tag in _BLOCKS:
            self.pieces.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is None:
            self.title = " ".join(data.split()) or None
        if not self.dropping:
            # A line break in the source is a space on the page; block ends make the lines.
            self.pieces.append(data.replace("\n", " ").replace("\r", " "))


def _is_boilerplate(attrs: list[tuple[str, str | None]]) -> bool:
    for name, value in attrs:
        if not value:
            continue
        if name == "role" and value.lower() in _BOILERPLATE_ROLES:
            return True
        if name in ("id", "class", "aria-label") and _BOILERPLATE.search(value):
            return True
    return False


def html_text(source: str) -> tuple[str, str | None]:
    """The readable text of an HTML document, and its title (None if it has none)."""
    parser = _TextParser()
    parser.feed(source)
    parser.close()
    # Inline whitespace collapses as a browser renders it; block ends become line breaks.
    lines = (" ".join(line.split()) for line in "".join(parser.pieces).split("\n"))
    return "\n".join(line for line in lines if line), parser.title
