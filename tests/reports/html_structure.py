"""Reading report.html back with the standard library's HTML parser: tags, attributes, text, balance."""

from html.parser import HTMLParser

VOID_TAGS = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and whether elements nest properly."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.open: list[str] = []
        self.nesting_errors: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        if tag not in VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.nesting_errors.append(f"</{tag}> closes {self.open[-3:]}")
        else:
            self.open.pop()

    def handle_data(self, data):
        self.text.append(data)

    def tags(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def all_text(self) -> str:
        return "".join(self.text)


def svg_bar_counts(html: str) -> dict[str, int]:
    """aria-label of each SVG -> number of rect.bar elements inside it."""
    counts: dict[str, int] = {}
    current = None
    for tag, attrs in Page(html).elements:
        if tag == "svg":
            current = attrs.get("aria-label", "")
            counts[current] = 0
        elif tag == "rect" and attrs.get("class") == "bar":
            counts[current] += 1
    return counts
