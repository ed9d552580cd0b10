"""Scans and images through OCR with layout (Azure AI Document Intelligence, ``prebuilt-layout``):
page counting and the page cap before anything is sent, then the service's ``analyzeResult`` mapped
into Folio's document model, so chunking, heading paths and page provenance work as for
born-digital files.

Mapping: paragraphs in reading order; the roles ``title`` and ``sectionHeading`` become headings
(levels 1 and 2); ``pageHeader``, ``pageFooter`` and ``pageNumber`` are dropped, as the PDF parser
drops running lines; tables become table blocks (one row a line, the header row repeated at the
top of every block), in place of the paragraphs inside them; each block keeps the page number of
its first bounding region.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.ingest.document import DocType, DocumentBuilder, ParsedDocument
from shared.ingest.errors import CorruptDocument, TooLarge, UnsupportedType
from shared.ingest.limits import Limits
from shared.ingest.parsers.tables import TableBudget, TableWriter

if TYPE_CHECKING:
    from shared.ports import DocumentAnalyzer

NOT_CONFIGURED = (
    "Scanned documents and images are read with Azure AI Document Intelligence (OCR), which this "
    "deployment has not set up: an operator enables it by setting DOCUMENT_INTELLIGENCE_ENDPOINT "
    "(see docs/ingestion.md)."
)
_DROPPED_ROLES = frozenset({"pageHeader", "pageFooter", "pageNumber"})
_HEADING_LEVELS = {"title": 1, "sectionHeading": 2}
_MAX_TIFF_IFDS = 100_000


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Without an analyzer an image cannot be read: the refusal says what would enable it."""
    raise UnsupportedType(f"This file is an image (PNG, JPEG or TIFF). {NOT_CONFIGURED}")


@dataclass(frozen=True)
class OcrRoute:
    """What the dispatcher needs to send a scan or image to OCR.

    ``admit(pages)`` runs after the page cap and before the service is called (and paid): the
    indexer checks the plan's pages quota there, so a workspace over its quota costs nothing.
    """

    analyzer: DocumentAnalyzer
    max_pages: int
    admit: Callable[[int], None] | None = None

    def read(self, data: bytes, doc_type: DocType, limits: Limits) -> ParsedDocument:
        pages = count_pages(data, doc_type, limits)
        if pages > self.max_pages:
            raise TooLarge(
                f"This {'scanned PDF' if doc_type == 'pdf' else 'image file'} has {pages:,} pages; documents "
                f"read by OCR may have at most {self.max_pages:,} (DOCUMENT_INTELLIGENCE_MAX_PAGES). Split it "
                "into smaller files.",
                limit="document_intelligence_max_pages",
                value=self.max_pages,
            )
        if self.admit is not None:
            self.admit(pages)
        # For paged formats the page range caps what the service analyses (and bills) even if our
        # count were low; a PNG or JPEG is one page and gets no range.
        paged = doc_type == "pdf" or _is_tiff(data)
        result = self.analyzer.analyze(data, pages=f"1-{pages}" if paged else None)
        return layout_document(result, doc_type, limits)


def count_pages(data: bytes, doc_type: DocType, limits: Limits) -> int:
    """Pages the service would analyse: a PDF's pages, a TIFF's images, else one."""
    if doc_type == "pdf":
        return _pdf_pages(data, limits)
    if _is_tiff(data):
        return _tiff_images(data)
    return 1


def _is_tiff(data: bytes) -> bool:
    return data[:4] in (b"II*\x00", b"MM\x00*")


def _pdf_pages(data: bytes, limits: Limits) -> int:
    import pypdf
    from pypdf.errors import PyPdfError

    try:
        return len(pypdf.PdfReader(io.BytesIO(data), strict=False).pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise CorruptDocument("This PDF's page tree is damaged, so its pages cannot be counted for OCR.") from exc


def _tiff_images(data: bytes) -> int:
    """Images in a TIFF: the chain of image file directories (IFDs), followed by hand."""
    order = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        seen: set[int] = set()
        while offset and offset not in seen and len(seen) < _MAX_TIFF_IFDS:
            seen.add(offset)
            (entries,) = struct.unpack_from(order + "H", data, offset)
            (offset,) = struct.unpack_from(order + "I", data, offset + 2 + 12 * entries)
    except struct.error as exc:
        raise CorruptDocument("This TIFF image is damaged: its image directory runs past the end of the file.") from exc
    return max(1, len(seen))


def layout_document(result: Mapping[str, Any], doc_type: DocType, limits: Limits) -> ParsedDocument:
    """Folio's document from an ``analyzeResult`` (the REST shape, camelCase keys)."""
    deadline = limits.deadline()
    builder = DocumentBuilder(doc_type, limits)
    budget = TableBudget(limits, deadline)
    tables = list(result.get("tables") or [])
    covered = _Ranges([_span_range(table.get("spans") or []) for table in tables])
    items: list[tuple[int, int, str, Mapping[str, Any]]] = []
    for index, table in enumerate(tables):
        items.append((_span_range(table.get("spans") or [])[0], index, "table", table))
    for index, paragraph in enumerate(result.get("paragraphs") or []):
        start, _ = _span_range(paragraph.get("spans") or [])
        if covered.contains(start):
            continue  # a cell's text: the table block carries it
        items.append((start, index, "paragraph", paragraph))
    items.sort(key=lambda item: (item[0], item[2] != "table", item[1]))
    title: str | None = None
    for _, _, kind, item in items:
        deadline.check("the recognised layout")
        page = _page(item)
        if kind == "table":
            _table(builder, budget, item, page)
            continue
        role = item.get("role")
        if role in _DROPPED_ROLES:
            continue
        text = " ".join(str(item.get("content") or "").split())
        level = _HEADING_LEVELS.get(str(role))
        block = builder.add("heading" if level else "paragraph", text, level=level, page=page)
        if block is not None and role == "title" and title is None:
            title = block.text
    if title is None:
        title = next((b.text for b in builder.blocks if b.kind == "heading"), None)
    pages = len(result.get("pages") or []) or None
    return builder.build(title=title, pages=pages, empty_hint=" OCR found no text on its pages.")


def _table(builder: DocumentBuilder, budget: TableBudget, table: Mapping[str, Any], page: int | None) -> None:
    rows = int(table.get("rowCount") or 0)
    columns = int(table.get("columnCount") or 0)
    grid: dict[int, dict[int, str]] = {}
    for cell in table.get("cells") or []:
        row, column = int(cell.get("rowIndex", 0)), int(cell.get("columnIndex", 0))
        grid.setdefault(row, {})[column] = " ".join(str(cell.get("content") or "").split())
    writer = TableWriter(builder, page=page)
    for row in range(max(rows, max(grid, default=-1) + 1)):
        cells = grid.get(row, {})
        width = max(columns, max(cells, default=-1) + 1)
        budget.take(width, "the recognised tables")
        writer.add([cells.get(column, "") for column in range(width)])
    writer.close()


def _span_range(spans: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    if not spans:
        return (1 << 62, 1 << 62)  # no position: after everything that has one
    starts = [int(span.get("offset", 0)) for span in spans]
    ends = [int(span.get("offset", 0)) + int(span.get("length", 0)) for span in spans]
    return min(starts), max(ends)


def _page(item: Mapping[str, Any]) -> int | None:
    regions = item.get("boundingRegions") or []
    number = regions[0].get("pageNumber") if regions else None
    return int(number) if isinstance(number, int) and number > 0 else None


class _Ranges:
    """Sorted, merged [start, end) ranges with a bisect lookup."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(r for r in ranges if r[1] > r[0]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self.starts = [start for start, _ in merged]
        self.ends = [end for _, end in merged]

    def contains(self, offset: int) -> bool:
        at = bisect.bisect_right(self.starts, offset) - 1
        return at >= 0 and offset < self.ends[at]
