"""MkDocs hook: the docstrings' Sphinx roles (``:func:`x```, ``:class:`~a.b.C```) shown as code.

mkdocstrings renders the docstrings as Markdown, where a role stays as text before its code
span; this keeps the code span (``~`` keeps the last name only, as Sphinx does).
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:func|class|meth|attr|data|mod|exc|obj|ref):<code>(~?)([^<]*)</code>")


def _code(match: re.Match[str]) -> str:
    name = match[2].rsplit(".", 1)[-1] if match[1] else match[2]
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub(_code, html)
