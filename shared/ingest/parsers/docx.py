"""DOCX with python-docx, after the ZIP guard: styles give headings and lists, Word's numbering
its clause numbers, tables come by row."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from typing import Any

import docx
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import OpcError
from docx.oxml.ns import qn

from shared.ingest.document import BlockKind, DocumentBuilder, ParsedDocument
from shared.ingest.errors import CorruptDocument, UnsupportedType
from shared.ingest.limits import Limits, check_loaded_xml, check_zip, verify_office_members
from shared.ingest.parsers.docx_numbering import Numbering, style_numbering
from shared.ingest.structure import reads_as_sentence, run_in_heading

_P, _TBL, _SDT, _SDT_CONTENT = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:sdtContent")
_TR, _TC = qn("w:tr"), qn("w:tc")
_T, _TAB, _BR, _CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_TYPE = qn("w:type")
_NUMBERING_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering"
_HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.I)
_OUTLINE = "./w:pPr/w:outlineLvl/@w:val"
_MAX_BASE_DEPTH = 8  # style inheritance chains are short; a loop must not hang us
_ELEMENTS_PER_CLOCK_CHECK = 256


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse a Word document. The archive is measured and test-inflated before python-docx."""
    deadline = limits.deadline()
    archive = check_zip(data, limits)
    verify_office_members(archive, limits, deadline)  # also refuses DTDs and entity declarations
    check_loaded_xml(archive, limits)  # python-docx parses every part into a tree as it opens the file
    document = _open(data)
    styles = _style_table(document)
    numbering = _numbering(document)
    body = document.element.body
    builder = DocumentBuilder("docx", limits)
    title_styled: str | None = None
    for count, element in enumerate(_block_elements(body)):
        if count % _ELEMENTS_PER_CLOCK_CHECK == 0:
            deadline.check("the document body")
        if element.tag == _TBL:
            builder.add("table", "\n".join(_table_rows(element)))
            continue
        kind, level, is_title = styles.classify(element)
        text = _paragraph_text(element)
        # An empty paragraph (often one that only carries a section break) draws no number.
        label = numbering.label(element, element.style) if text.strip() else None
        if label is not None:
            prefix, bullet = label
            if not bullet and kind == "list_item" and not styles.is_list_style(element.style):
                kind = "paragraph"  # "2.2 Processing Instructions. ..." is a clause, not a bullet
            text = prefix + text.lstrip()
        if kind == "heading" and reads_as_sentence(text):
            # A clause styled as a heading: its run-in title is the heading, the rest its body.
            split = run_in_heading(text)
            if split is not None:
                builder.add("heading", split[0], level=level)
                builder.add("paragraph", split[1])
            else:
                builder.add("paragraph", text)
            continue
        block = builder.add(kind, text, level=level)
        if block is not None and is_title and title_styled is None:
            title_styled = block.text
    title = _core_title(document) or title_styled or next((b.text for b in builder.blocks if b.kind == "heading"), None)
    # No pages: they come from Word's layout, which the file does not hold. Page breaks in the
    # file give only a lower bound, and a page number that is a guess must not be cited as real.
    return builder.build(title=title, pages=None)


def _numbering(document: Any) -> Numbering:
    """Word's numbering definitions; none when the part is missing or unreadable."""
    by_style = style_numbering(document.styles.element)
    try:
        part = document.part.package.main_document_part.part_related_by(_NUMBERING_REL)
    except (KeyError, AttributeError, ValueError):
        return Numbering(None, by_style)
    return Numbering(getattr(part, "element", None), by_style)


def _open(data: bytes) -> Any:
    try:
        return docx.Document(io.BytesIO(data))
    except ValueError as exc:  # python-docx: "... is not a Word file, content type is ..."
        raise UnsupportedType(
            "This file is an Office package but not a Word document (.docx); macro-enabled "
            "documents and templates are not supported. Save it as .docx and upload again."
        ) from exc
    except (OpcError, KeyError, SyntaxError, zipfile.BadZipFile, AttributeError, TypeError) as exc:
        # SyntaxError covers lxml's XMLSyntaxError: a part that is not well-formed XML.
        raise CorruptDocument(
            "This Word document is damaged: parts of it are missing or unreadable. Open it in "
            "Word, save it again, and upload the new copy."
        ) from exc


class _StyleTable:
    """Paragraph style id -> (kind, level), resolved once through ``basedOn`` chains."""

    def __init__(self, entries: dict[str, tuple[BlockKind, int | None, bool]]) -> None:
        self.entries = entries

    def is_list_style(self, style_id: str | None) -> bool:
        return self.entries.get(style_id or "", ("paragraph", None, False))[0] == "list_item"

    def classify(self, p: Any) -> tuple[BlockKind, int | None, bool]:
        style_id = p.style
        kind, level, is_title = self.entries.get(style_id or "", ("paragraph", None, False))
        if kind == "paragraph" and p.pPr is not None and p.pPr.numPr is not None:
            kind = "list_item"  # directly numbered/bulleted without a list style
        return kind, level, is_title


def _style_table(document: Any) -> _StyleTable:
    entries: dict[str, tuple[BlockKind, int | None, bool]] = {}
    for style in document.styles:
        if style.type == WD_STYLE_TYPE.PARAGRAPH and style.style_id:
            entries[style.style_id] = _classify_style(style)
    return _StyleTable(entries)


def _classify_style(style: Any) -> tuple[BlockKind, int | None, bool]:
    """Walk the style and its ancestors: "Heading N", "Title", outline levels, "List ..."."""
    current, depth = style, 0
    while current is not None and depth < _MAX_BASE_DEPTH:
        name = (current.name or "").strip()
        heading = _HEADING_STYLE.match(name)
        if heading:
            return "heading", int(heading.group(1)), False
        if name.lower() == "title":
            return "heading", 1, True
        outline = current.element.xpath(_OUTLINE)
        if outline and outline[0].isdigit() and int(outline[0]) < 9:
            return "heading", int(outline[0]) + 1, False
        if name.lower().startswith("list"):
            return "list_item", None, False
        current, depth = current.base_style, depth + 1
    return "paragraph", None, False


def _block_elements(body: Any) -> Iterator[Any]:
    """Paragraphs and tables in order, including those wrapped in content controls."""
    for child in body.iterchildren():
        if child.tag in (_P, _TBL):
            yield child
        elif child.tag == _SDT:
            content = child.find(_SDT_CONTENT)
            if content is not None:
                yield from _block_elements(content)


def _paragraph_text(element: Any) -> str:
    """Visible text, tracked insertions included, deletions (w:delText) not."""
    parts = []
    for node in element.iter(_T, _TAB, _BR, _CR):
        if node.tag == _T:
            parts.append(node.text or "")
        elif node.tag == _TAB:
            parts.append("\t")
        elif node.get(_TYPE) != "page":
            parts.append("\n")
    return "".join(parts)


def _table_rows(tbl: Any) -> list[str]:
    rows = []
    for tr in tbl.iter(_TR):
        if _enclosing_table(tr) is not tbl:
            continue  # a nested table's rows already appear inside their cell's text
        cells = [_cell_text(tc) for tc in tr.iter(_TC) if _enclosing_table(tc) is tbl]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows


def _cell_text(tc: Any) -> str:
    """A cell's paragraphs on one line, a space between them ("Purpose" + "How it may be used")."""
    return " ".join(" ".join(_paragraph_text(p).split()) for p in tc.iter(_P)).strip()


def _enclosing_table(element: Any) -> Any:
    parent = element.getparent()
    while parent is not None and parent.tag != _TBL:
        parent = parent.getparent()
    return parent


def _core_title(document: Any) -> str | None:
    try:
        title = document.core_properties.title
    except (KeyError, ValueError, AttributeError, SyntaxError):
        return None
    return title if isinstance(title, str) and title.strip() else None
