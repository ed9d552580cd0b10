"""PPTX with python-pptx, after the Office package guard: each slide's title is a heading (``Slide N``
when it has none), then its text frames, tables and speaker notes; the slide number is the page."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from shared.ingest.document import BlockKind, DocumentBuilder, ParsedDocument
from shared.ingest.errors import CorruptDocument, UnsupportedType
from shared.ingest.limits import Deadline, Limits, check_loaded_xml, check_zip, verify_office_members
from shared.ingest.parsers.office import MALFORMED, core_title
from shared.ingest.parsers.tables import TableBudget, TableWriter

_DAMAGED = (
    "This PowerPoint presentation is damaged: parts of it are missing or unreadable. Open it in "
    "PowerPoint, save it again as .pptx, and upload the new copy."
)
# Placeholders that repeat on every slide and say nothing about it.
_BOILERPLATE = frozenset({"DATE", "FOOTER", "HEADER", "SLIDE_NUMBER"})
_BULLETED = frozenset({"BODY", "OBJECT", "VERTICAL_BODY", "VERTICAL_OBJECT"})
_MAX_GROUP_DEPTH = 16


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse a presentation. The archive is measured and test-inflated (and refused if it declares
    XML entities) before python-pptx opens it."""
    deadline = limits.deadline()
    archive = check_zip(data, limits)
    verify_office_members(archive, limits, deadline)
    check_loaded_xml(archive, limits)  # python-pptx parses every part into a tree as it opens the deck
    presentation = _open(data)
    builder = DocumentBuilder("pptx", limits)
    budget = TableBudget(limits, deadline)
    try:
        slides = list(presentation.slides)
        for number, slide in enumerate(slides, start=1):
            deadline.check(f"slide {number}")
            if slide.element.get("show") in ("0", "false"):
                continue  # a hidden slide is not shown to the audience; not indexed either
            _slide(builder, budget, deadline, slide, number)
        title = core_title(lambda: presentation.core_properties.title)
    except MALFORMED as exc:
        raise CorruptDocument(_DAMAGED) from exc
    if title is None:
        title = next((b.text for b in builder.blocks if b.kind == "heading"), None)
    return builder.build(title=title, pages=len(slides), empty_hint=" Its slides hold no text.")


def _open(data: bytes) -> Any:
    import pptx
    from pptx.exc import PythonPptxError

    try:
        return pptx.Presentation(io.BytesIO(data))
    except ValueError as exc:  # "... is not a PowerPoint file, content type is ..."
        raise UnsupportedType(
            "This file is an Office package but not a PowerPoint presentation (.pptx); macro-enabled "
            "presentations and templates are not supported. Save it as .pptx and upload again."
        ) from exc
    except (PythonPptxError, *MALFORMED) as exc:
        raise CorruptDocument(_DAMAGED) from exc


def _slide(builder: DocumentBuilder, budget: TableBudget, deadline: Deadline, slide: Any, number: int) -> None:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    builder.add("heading", title or f"Slide {number}", level=1, page=number)
    title_id = title_shape.shape_id if title_shape is not None else None
    for shape in _shapes(slide.shapes, 0):
        if shape.shape_id == title_id:
            continue
        if getattr(shape, "has_table", False) and shape.has_table:
            _table(builder, budget, shape.table, number)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            kind: BlockKind = "list_item" if _placeholder_type(shape) in _BULLETED else "paragraph"
            for paragraph in shape.text_frame.paragraphs:
                builder.add(kind, _paragraph_text(paragraph), page=number)
        deadline.check(f"slide {number}")
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None:
            for paragraph in notes.paragraphs:
                builder.add("paragraph", _paragraph_text(paragraph), page=number)


def _shapes(shapes: Any, depth: int) -> Iterator[Any]:
    """Shapes top to bottom, then left to right; groups opened; repeated placeholders left out."""
    ordered = sorted(shapes, key=lambda s: ((s.top or 0), (s.left or 0)))
    for shape in ordered:
        if _placeholder_type(shape) in _BOILERPLATE:
            continue
        if hasattr(shape, "shapes") and depth < _MAX_GROUP_DEPTH:  # a group
            yield from _shapes(shape.shapes, depth + 1)
        else:
            yield shape


def _placeholder_type(shape: Any) -> str | None:
    if not getattr(shape, "is_placeholder", False):
        return None
    kind = shape.placeholder_format.type
    return getattr(kind, "name", None)


def _paragraph_text(paragraph: Any) -> str:
    """The paragraph's text (runs, fields, line breaks) on one line."""
    return " ".join(paragraph.text.split())


def _table(builder: DocumentBuilder, budget: TableBudget, table: Any, page: int) -> None:
    writer = TableWriter(builder, page=page)
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells]
        budget.take(len(cells), f"slide {page}")
        writer.add(cells)
    writer.close()
