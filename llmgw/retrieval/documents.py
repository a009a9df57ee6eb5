"""Reading sources into documents: plain text, markdown, HTML and JSON lines.

A document keeps its structure as sections (a heading path and its text) so that chunking can
split where the author did: at markdown headings and HTML headings and blocks.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from llmgw.retrieval.collection import SourceSpec

FORMATS = {
    ".txt": "txt",
    ".text": "txt",
    ".md": "md",
    ".markdown": "md",
    ".html": "html",
    ".htm": "html",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(slots=True)
class Section:
    heading: str  # "Title > Subtitle", empty before the first heading
    text: str


@dataclass(slots=True)
class Document:
    id: str
    title: str
    sections: list[Section]
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Changes when anything that ends up in a chunk changes (text, title, metadata)."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.title, self.metadata], sort_keys=True, default=str).encode())
        for section in self.sections:
            digest.update(b"\0" + section.heading.encode() + b"\0" + section.text.encode())
        return digest.hexdigest()


class SourceError(Exception):
    pass


# --- markdown ---------------------------------------------------------------------------------

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def markdown_sections(text: str) -> tuple[str, list[Section]]:
    """Sections under their heading path; headings inside code fences are text."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False
    title = ""

    def flush() -> None:
        body = "\n".join(lines).strip()
        if body:
            sections.append(Section(" > ".join(h for _, h in path), body))
        lines.clear()

    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), match.group(2)
        title = title or heading
        path = [(lv, h) for lv, h in path if lv < level] + [(level, heading)]
    flush()
    return title, sections


# --- HTML -------------------------------------------------------------------------------------

BLOCKS = {"p", "div", "li", "pre", "blockquote", "table", "tr", "section", "article", "dd", "dt", "br", "ul", "ol"}
SKIPPED = {"script", "style", "noscript", "template", "svg", "nav", "footer"}


class _HtmlSections(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.heading: list[str] | None = None
        self.heading_level = 0
        self.skip = 0
        self.title = ""
        self.in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skip += 1
        elif tag == "title":
            self.in_title = True
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.end_block()
            self.flush()
            self.heading, self.heading_level = [], int(tag[1])
        elif tag in BLOCKS:
            self.end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skip = max(0, self.skip - 1)
        elif tag == "title":
            self.in_title = False
        elif self.heading is not None and len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            text = " ".join("".join(self.heading).split())
            self.heading = None
            if text:
                self.title = self.title or text
                self.path = [(lv, h) for lv, h in self.path if lv < self.heading_level] + [(self.heading_level, text)]
        elif tag in BLOCKS:
            self.end_block()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.in_title:
            self.title = self.title or data.strip()
        elif self.heading is not None:
            self.heading.append(data)
        else:
            self.current.append(data)

    def end_block(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(text)
        self.current = []

    def flush(self) -> None:
        if self.blocks:
            self.sections.append(Section(" > ".join(h for _, h in self.path), "\n\n".join(self.blocks)))
        self.blocks = []

    def finish(self) -> tuple[str, list[Section]]:
        self.close()
        self.end_block()
        self.flush()
        return self.title, self.sections


def html_sections(text: str) -> tuple[str, list[Section]]:
    parser = _HtmlSections()
    parser.feed(text)
    return parser.finish()


# --- reading sources --------------------------------------------------------------------------


def _format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(f"{path}: unknown file type (use .txt, .md, .html or .jsonl, or set format)")
    return fmt


def _expand(root: Path, pattern: str) -> list[Path]:
    base = Path(pattern) if Path(pattern).is_absolute() else root / pattern
    if base.is_dir():
        return sorted(p for p in base.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
    if base.is_file():
        return [base]
    matches = sorted(Path(p) for p in glob.glob(str(base), recursive=True) if Path(p).is_file())
    if not matches:
        raise SourceError(f"{pattern}: no such file or folder (relative to {root})")
    return matches


def source_id(path: Path, root: Path) -> str:
    """``path`` relative to the collection file's folder (``../docs/cache.md`` for a source
    ``../docs``), with ``/`` separators: it names the document in the store, in ``x-llmgw-sources``
    and in guard events, so it must be the same on every machine and for every way the file was
    named (a declared source or an explicit path), and it must not reveal where the server keeps it."""
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def read_file(path: Path, spec: SourceSpec, root: Path) -> Iterator[Document]:
    fmt = _format_of(path, spec.format)
    rel = source_id(path, root)
    text = path.read_text(encoding="utf-8", errors="replace")
    meta = {**spec.metadata, "source": rel}
    if fmt == "jsonl":
        yield from _jsonl(text, rel, spec, meta)
        return
    if fmt == "md":
        title, sections = markdown_sections(text)
    elif fmt == "html":
        title, sections = html_sections(text)
    else:
        title, sections = "", [Section("", text.strip())] if text.strip() else []
    yield Document(rel, title or path.stem, sections, rel, meta)


def _jsonl(text: str, rel: str, spec: SourceSpec, meta: dict[str, Any]) -> Iterator[Document]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SourceError(f"{rel}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(record, dict) or not isinstance(record.get(spec.text_field), str):
            raise SourceError(f"{rel}:{n}: expected an object with a string {spec.text_field!r}")
        found = record.get(spec.id_field)  # 0 and False are ids; only a missing or empty one is not
        doc_id = f"{rel}:{n}" if found is None or found == "" else str(found)
        extra = {
            k: v
            for k, v in record.items()
            if k not in (spec.id_field, spec.title_field, spec.text_field) and isinstance(v, str | int | float | bool)
        }
        title = str(record.get(spec.title_field) or "")
        yield Document(doc_id, title, [Section("", record[spec.text_field])], rel, {**meta, **extra})


def read_sources(sources: list[SourceSpec], root: Path, paths: list[str] | None = None) -> Iterator[Document]:
    """Every document of the collection's sources, or of ``paths`` when given (relative ones are
    taken from the working directory). Either way a file gets the same id (relative to ``root``)
    and, when a declared source holds it, that source's settings (metadata, format, jsonl fields):
    naming a file on the command line stores the very document a full ingest would."""
    if not paths:
        for spec in sources:
            for path in _expand(root, spec.path):
                yield from read_file(path, spec, root)
        return
    declared: dict[Path, SourceSpec] = {}
    for spec in sources:
        try:
            for path in _expand(root, spec.path):
                declared.setdefault(path.resolve(), spec)
        except SourceError:
            continue  # a declared source that is gone does not stop an explicit path
    for named in paths:
        for path in _expand(root, str(Path(named).resolve())):
            yield from read_file(path, declared.get(path.resolve(), SourceSpec(path=named)), root)
