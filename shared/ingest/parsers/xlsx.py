"""XLSX with openpyxl in read-only mode, after the Office package guard: each visible sheet's name is a
heading, its rows table blocks whose header row repeats at the top of every block, formulas as the
values Excel last calculated (the cached values the file holds)."""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from typing import Any

from shared.ingest.document import DocumentBuilder, ParsedDocument
from shared.ingest.errors import CorruptDocument
from shared.ingest.limits import (
    Limits,
    check_loaded_xml,
    check_zip,
    count_xml_elements,
    too_many_cells,
    verify_office_members,
)
from shared.ingest.parsers.office import MALFORMED, core_title
from shared.ingest.parsers.tables import TableBudget, TableWriter, cell_text

# openpyxl raises these (besides its own) on malformed parts; none is a bug of ours.
# A shared string's start tag (<si>, or <x:si> with a namespace prefix), in any XML part of the package.
_SHARED_STRING = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,31}:)?si[\s/>]")
# Parts openpyxl reads as a stream in read-only mode (worksheets) or that are capped otherwise (shared
# strings), by where they usually are and what their root element is: the workbook part may be put
# anywhere (its name comes from [Content_Types].xml), and it is parsed whole.
_STREAMED_NAME = re.compile(r"(?i)^xl/(?:worksheets/[^/]+\.xml|sharedStrings\.xml)$")
_STREAMED_ROOT = re.compile(
    rb"^(?:\s|<\?[^>]*\?>|<!--(?:(?!-->).)*-->)*<(?:[A-Za-z_][\w.-]{0,31}:)?(?:worksheet|sst)[\s/>]", re.S
)
_DAMAGED = (
    "This Excel workbook is damaged: parts of it are missing or unreadable. Open it in Excel, save it "
    "again as .xlsx, and upload the new copy."
)


def parse(data: bytes, limits: Limits) -> ParsedDocument:
    """Parse a workbook. The archive is measured and test-inflated (and refused if it declares
    XML entities) before openpyxl opens it."""
    deadline = limits.deadline()
    archive = check_zip(data, limits)
    verify_office_members(archive, limits, deadline)
    # openpyxl loads the whole shared-string table up front, whatever the cells use: 8 million short
    # strings (19 MB zipped) took 104 s and over 600 MB. No workbook needs more strings than cells.
    if count_xml_elements(archive, _SHARED_STRING, limits, deadline) > limits.max_cells:
        raise too_many_cells(limits)
    # Everything else openpyxl parses whole (the style sheet above all) is capped by size.
    check_loaded_xml(archive, limits, limit="xlsx_max_loaded_xml", streamed=_streamed_parts(archive))
    builder = DocumentBuilder("xlsx", limits)
    budget = TableBudget(limits, deadline)
    workbook = _open(data)
    try:
        title = core_title(lambda: workbook.properties.title)
        for sheet in workbook.worksheets:
            if getattr(sheet, "sheet_state", "visible") != "visible" or not hasattr(sheet, "iter_rows"):
                continue  # hidden sheets are not what readers see; chart sheets hold no cells
            deadline.check(f"sheet {sheet.title!r}")
            _sheet(builder, budget, sheet)
    except MALFORMED as exc:
        raise CorruptDocument(_DAMAGED) from exc
    finally:
        workbook.close()
    return builder.build(title=title, pages=None, empty_hint=" Every visible sheet is empty.")


def _streamed_parts(archive: zipfile.ZipFile) -> set[str]:
    """The worksheets and shared-string table: named like them and rooted like them (first 1 KiB read)."""
    streamed = set()
    for info in archive.infolist():
        if _STREAMED_NAME.match(info.filename):
            with archive.open(info) as part:  # verified above: inflates as declared
                head = part.read(1024).lstrip(b"\xef\xbb\xbf")
            if _STREAMED_ROOT.match(head):
                streamed.add(info.filename)
    return streamed


def _open(data: bytes) -> Any:
    from openpyxl import load_workbook  # type: ignore[import-untyped]
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Data Validation extension is not supported" and the like
            return load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except (InvalidFileException, *MALFORMED) as exc:
        raise CorruptDocument(_DAMAGED) from exc


def _sheet(builder: DocumentBuilder, budget: TableBudget, sheet: Any) -> None:
    """The sheet's name as a heading (only when the sheet has content), then its rows."""
    table: TableWriter | None = None
    where = f"sheet {sheet.title!r}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in sheet.iter_rows(values_only=True):
            budget.take(len(row), where)
            cells = [cell_text(value) for value in row]
            if not any(cells):
                continue
            if table is None:
                builder.add("heading", sheet.title, level=1)
                table = TableWriter(builder)
            table.add(cells)
    if table is not None:
        table.close()
