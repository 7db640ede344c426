"""Sections of docs/benchmarks.md that separate benchmarks own, between HTML comment markers.

`bench/run.py` rewrites the whole document; it appends `kept(path)` so those sections survive.
A benchmark replaces its own section with `replace(path, name, text)`.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- section:(?P<name>[\w-]+) -->\n.*?<!-- /section:(?P=name) -->\n", re.S)


def _wrap(name: str, text: str) -> str:
    return f"<!-- section:{name} -->\n{text.rstrip()}\n<!-- /section:{name} -->\n"


def kept(path: Path) -> str:
    """Every marked section of the document at `path` (empty if none), to append after a rewrite."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    sections = [m.group(0) for m in _SECTION.finditer(text)]
    return ("\n" + "\n".join(sections)) if sections else ""


def replace(path: Path, name: str, text: str) -> None:
    """Put `text` as section `name` into the document (replacing the old one, else appending it)."""
    try:
        doc = path.read_text()
    except OSError:
        doc = ""
    block = _wrap(name, text)
    pattern = re.compile(rf"<!-- section:{re.escape(name)} -->\n.*?<!-- /section:{re.escape(name)} -->\n", re.S)
    found = pattern.search(doc)
    path.write_text(pattern.sub(lambda _: block, doc, count=1) if found else doc.rstrip("\n") + "\n\n" + block)
