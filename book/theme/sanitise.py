"""HTML from a notebook's stored outputs (and raw HTML in Markdown), kept to a small allow-list:
no script, style element, frame, form or event handler survives, links keep http(s), mailto and
in-page targets only, and images only inline PNG, JPEG or GIF data."""
from __future__ import annotations

from html import escape
from html.parser import HTMLParser

TAGS = {"a", "b", "i", "em", "strong", "code", "pre", "kbd", "samp", "small", "sub", "sup",
        "span", "div", "p", "br", "hr", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead",
        "tbody", "tfoot", "tr", "td", "th", "caption", "details", "summary", "blockquote", "img",
        "figure", "figcaption"}
VOID = {"br", "hr", "img"}
# Headings in an output would break the page's outline: shown as bold paragraphs.
HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript",
                     "svg", "math", "form", "textarea", "select", "button", "input"}
ATTRS = {"href", "title", "class", "style", "colspan", "rowspan", "scope", "alt", "src",
         "target", "rel", "open", "start"}
SAFE_URL = ("http://", "https://", "mailto:", "#")
SAFE_IMAGE = ("data:image/png;base64,", "data:image/jpeg;base64,", "data:image/gif;base64,")


class _Sanitiser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.dropping = 0

    def handle_starttag(self, tag, attrs):
        if tag in DROP_WITH_CONTENT:
            self.dropping += tag not in VOID
            return
        if self.dropping:
            return
        if tag in HEADINGS:
            self.out.append('<p class="output-heading"><strong>')
            return
        if tag not in TAGS:
            return
        kept = []
        for name, value in attrs:
            value = value or ""
            if name not in ATTRS or (name == "style" and ("url(" in value
                                                          or "expression" in value)):
                continue
            if name == "href" and not value.strip().lower().startswith(SAFE_URL):
                continue
            if name == "src" and not value.startswith(SAFE_IMAGE):
                continue
            kept.append(f' {name}="{escape(value)}"')
        if tag == "a" and any(a.startswith(' target="') for a in kept):
            kept = [a for a in kept if not a.startswith(' rel="')] + [' rel="noopener"']
        self.out.append(f"<{tag}{''.join(kept)}>")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and tag in TAGS and not self.dropping:
            self.out.append(f"</{tag}>")

    def handle_endtag(self, tag):
        if tag in DROP_WITH_CONTENT:
            self.dropping = max(0, self.dropping - 1)
        elif self.dropping:
            return
        elif tag in HEADINGS:
            self.out.append("</strong></p>")
        elif tag in TAGS and tag not in VOID:
            self.out.append(f"</{tag}>")

    def handle_data(self, data):
        if not self.dropping:
            self.out.append(escape(data, quote=False))


def sanitise_html(html: str) -> str:
    """`html` with only allowed elements and attributes; all text re-escaped."""
    parser = _Sanitiser()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)
