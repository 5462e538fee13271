"""Read pages as parsed HTML, so tests check elements, attributes, roles and text rather than markup strings."""

from __future__ import annotations

import re
from typing import Protocol

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString

_SPACES = re.compile(r"\s+")
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_TEXTBOX_TYPES = frozenset({"text", "email", "tel", "url", "password"})
_BUTTON_TYPES = frozenset({"button", "submit", "reset", "image"})
_INPUT_ROLES = {"search": "searchbox", "checkbox": "checkbox", "radio": "radio", "number": "spinbutton"}
_ELEMENT_ROLES = {
    "button": "button",
    "dialog": "dialog",
    "table": "table",
    "tr": "row",
    "td": "cell",
    "th": "columnheader",
    "form": "form",
    "textarea": "textbox",
    "option": "option",
    "nav": "navigation",
    "main": "main",
    "header": "banner",
    "footer": "contentinfo",
    "aside": "complementary",
    "section": "region",
    "ul": "list",
    "ol": "list",
    "li": "listitem",
    "progress": "progressbar",
}


class HasText(Protocol):
    """What an HTTP response offers (httpx and the test client alike)."""

    @property
    def text(self) -> str: ...


def parse_html(source: HasText | str) -> Page:
    """Parse a response's body, or markup, into a Page."""
    markup = source if isinstance(source, str) else source.text
    return Page(BeautifulSoup(markup, "html.parser"))


def squash(text: str) -> str:
    """Collapse runs of whitespace, as a browser does when it shows text."""
    return _SPACES.sub(" ", text).strip()


def text_of(element: Tag) -> str:
    """The element's text content (as the DOM's textContent), whitespace collapsed."""
    return squash(element.get_text())


def attr(element: Tag, name: str) -> str:
    """An attribute's value; an AssertionError names the element when it has none."""
    value = element.get(name)
    assert value is not None, f"<{element.name}> has no {name!r} attribute: {element}"
    return value if isinstance(value, str) else " ".join(value)


def classes(element: Tag) -> list[str]:
    """The element's class names."""
    value = element.get("class")
    if value is None:
        return []
    return value.split() if isinstance(value, str) else list(value)


def has_attr(element: Tag, name: str) -> bool:
    """Whether the element carries the attribute (boolean attributes such as `disabled` included)."""
    return element.get(name) is not None


def role_of(element: Tag) -> str | None:
    """The element's ARIA role: its role attribute, else the implicit role of common elements."""
    explicit = element.get("role")
    if isinstance(explicit, str) and explicit.strip():
        return explicit.split()[0]
    name = element.name
    if name == "input":
        return _input_role(_input_type(element))
    if name in {"a", "area"}:
        return "link" if has_attr(element, "href") else None
    if name == "select":
        return "listbox" if has_attr(element, "multiple") else "combobox"
    if name == "img":
        return "presentation" if element.get("alt") == "" else "img"
    return "heading" if name in _HEADINGS else _ELEMENT_ROLES.get(name)


def _input_role(kind: str) -> str | None:
    if kind in _BUTTON_TYPES:
        return "button"
    return "textbox" if kind in _TEXTBOX_TYPES else _INPUT_ROLES.get(kind)


def _input_type(element: Tag) -> str:
    kind = element.get("type")
    return kind.lower() if isinstance(kind, str) else "text"


def form_fields(form: Tag) -> dict[str, str]:
    """The name → value pairs the form would submit (checked boxes only, first value of a repeated name)."""
    fields: dict[str, str] = {}
    for control in form.select("input[name], select[name], textarea[name]"):
        name = attr(control, "name")
        if control.name == "input":
            kind = _input_type(control)
            if kind in _BUTTON_TYPES or (kind in {"checkbox", "radio"} and not has_attr(control, "checked")):
                continue
            value = control.get("value")
            missing = "on" if kind in {"checkbox", "radio"} else ""  # what a browser sends for a box without one
            fields.setdefault(name, value if isinstance(value, str) else missing)
        elif control.name == "select":
            chosen = control.select_one("option[selected]") or control.select_one("option")
            fields.setdefault(name, _option_value(chosen) if chosen else "")
        else:
            fields.setdefault(name, control.get_text())
    return fields


def _option_value(option: Tag) -> str:
    value = option.get("value")
    return value if isinstance(value, str) else text_of(option)


class Page:
    """A parsed page or HTMX fragment."""

    def __init__(self, soup: BeautifulSoup) -> None:
        self.soup = soup

    def select(self, css: str) -> list[Tag]:
        """Every element matching the CSS selector."""
        return list(self.soup.select(css))

    def select_one(self, css: str) -> Tag | None:
        """The first element matching the CSS selector, or None."""
        return self.soup.select_one(css)

    def one(self, css: str) -> Tag:
        """The first element matching the CSS selector; an AssertionError names the selector when none does."""
        found = self.soup.select_one(css)
        assert found is not None, f"nothing matches {css!r}"
        return found

    def texts(self, css: str) -> list[str]:
        """The whitespace-collapsed text of every element matching the CSS selector."""
        return [text_of(element) for element in self.soup.select(css)]

    def text(self) -> str:
        """All of the page's text, whitespace collapsed, without script and style bodies."""
        return squash(" ".join(self.soup.find_all(string=_is_shown_text)))

    def attr(self, css: str, name: str) -> str:
        """An attribute of the first element matching the CSS selector."""
        return attr(self.one(css), name)

    def by_role(self, role: str, name: str | re.Pattern[str] | None = None) -> list[Tag]:
        """Elements with the ARIA role, and with the accessible name when one is given (exact, or a pattern)."""
        found = [element for element in self.soup.find_all(True) if role_of(element) == role]
        if name is None:
            return found
        return [element for element in found if _name_matches(self.accessible_name(element), name)]

    def accessible_name(self, element: Tag) -> str:
        """aria-label, else aria-labelledby, else a <label>, else the text, else alt, title or value."""
        label = element.get("aria-label")
        if isinstance(label, str) and label.strip():
            return squash(label)
        labelled_by = element.get("aria-labelledby")
        if isinstance(labelled_by, str):
            parts = [self.soup.find(id=ref) for ref in labelled_by.split()]
            return squash(" ".join(text_of(part) for part in parts if isinstance(part, Tag)))
        if element.name in {"input", "select", "textarea"}:
            labelled = self._label_of(element)
            if labelled:
                return labelled
        own_text = text_of(element)
        if own_text and element.name not in {"input", "select", "textarea"}:
            return own_text
        for fallback in ("alt", "title", "value", "placeholder"):
            value = element.get(fallback)
            if isinstance(value, str) and value.strip():
                return squash(value)
        return ""

    def _label_of(self, control: Tag) -> str:
        control_id = control.get("id")
        if isinstance(control_id, str):
            label = self.soup.find("label", attrs={"for": control_id})
            if isinstance(label, Tag):
                return text_of(label)
        wrapping = control.find_parent("label")
        return text_of(wrapping) if wrapping is not None else ""

    def is_full_document(self) -> bool:
        """Whether this is a whole page (it has an <html> element) rather than an HTMX fragment."""
        return self.soup.find("html") is not None

    def roots(self) -> list[Tag]:
        """The top-level elements: for an HTMX fragment, what it swaps in."""
        return [child for child in self.soup.children if isinstance(child, Tag)]

    def forms(self, css: str = "form") -> list[dict[str, str]]:
        """The fields of every form matching the CSS selector."""
        return [form_fields(form) for form in self.soup.select(css)]


def _is_shown_text(string: object) -> bool:
    # Comments, doctypes and CDATA are NavigableString subclasses; only plain text is shown.
    if type(string) is not NavigableString:
        return False
    parent = string.parent
    return parent is None or parent.name not in {"script", "style", "template"}


def _name_matches(actual: str, wanted: str | re.Pattern[str]) -> bool:
    if isinstance(wanted, re.Pattern):
        return wanted.search(actual) is not None
    return actual == squash(wanted)
