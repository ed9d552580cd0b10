"""Scans and images through Azure AI Document Intelligence: the real SDK (azure-ai-documentintelligence)
against a local wire-level stub of the analyze operation (submit, poll ``Operation-Location``, result),
with a static test credential for the bearer token.

Covers the mapping into Folio's document model, the page cap, the pages quota (checked before the
service is paid), a failed operation, throttling (429 + Retry-After), and the refusal that says what
would enable OCR where it is not configured.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shared.errors import QuotaExceeded, Unavailable
from shared.ingest import CorruptDocument, EmptyDocument, TooLarge, UnsupportedType, chunk_document, parse_document
from shared.ingest.parsers.docintel import OcrRoute, count_pages
from tests.stubs.azure_rest import FakeCredential
from tests.stubs.docintel_server import DocumentIntelligenceStub, Item, layout_result

REALDOCS = Path(__file__).resolve().parents[3] / "shared" / "data" / "realdocs"
SCANNED_PDF = REALDOCS / "docling__ocr_test.pdf"  # a real scan: pages of image, no text layer
# ../shared/data sits beside the checkout on the team's machines; a clone elsewhere has no real scan.
needs_real_scan = pytest.mark.skipif(not SCANNED_PDF.is_file(), reason=f"{SCANNED_PDF} is not here")

CONTRACT: list[list[Item]] = [
    [
        ("pageHeader", "ACME Corp. - Confidential"),
        ("title", "Master Services Agreement"),
        ("paragraph", "This agreement is made between ACME Corp. and Globex Ltd."),
        ("sectionHeading", "1. Services"),
        ("paragraph", "The supplier provides the services described in Schedule A."),
        ("table", [["Service", "Fee"], ["Hosting", "100 EUR"], ["Support", "50 EUR"]]),
        ("pageNumber", "1"),
    ],
    [
        ("pageHeader", "ACME Corp. - Confidential"),
        ("sectionHeading", "2. Payment"),
        ("paragraph", "Invoices are payable within thirty days of receipt."),
        ("pageFooter", "Version 3 of 2024"),
        ("pageNumber", "2"),
    ],
]


@pytest.fixture
def stub() -> Iterator[DocumentIntelligenceStub]:
    with DocumentIntelligenceStub(result=layout_result(CONTRACT), running_polls=2) as running:
        yield running


def analyzer_for(stub: DocumentIntelligenceStub) -> Any:
    from shared.docintel import AzureDocumentAnalyzer

    return AzureDocumentAnalyzer(
        stub.url, FakeCredential(), polling_interval_s=0.02, timeout_s=30, connection_verify=stub.ca_path
    )


def image(fmt: str, frames: int = 1) -> bytes:
    pages = [Image.new("L", (64, 32), color=255 - 10 * n) for n in range(frames)]
    out = io.BytesIO()
    pages[0].save(out, format=fmt, save_all=frames > 1, append_images=pages[1:])
    return out.getvalue()


# --- mapping ------------------------------------------------------------------------------------


@needs_real_scan
def test_a_scanned_pdf_is_read_by_ocr_with_headings_tables_and_pages(stub: DocumentIntelligenceStub) -> None:
    data = SCANNED_PDF.read_bytes()
    doc = parse_document(data, ocr=OcrRoute(analyzer_for(stub), max_pages=50))
    assert doc.doc_type == "pdf" and doc.pages == 2 and doc.title == "Master Services Agreement"
    assert [(b.kind, b.text, b.level, b.page) for b in doc.blocks] == [
        ("heading", "Master Services Agreement", 1, 1),
        ("paragraph", "This agreement is made between ACME Corp. and Globex Ltd.", None, 1),
        ("heading", "1. Services", 2, 1),
        ("paragraph", "The supplier provides the services described in Schedule A.", None, 1),
        ("table", "Service | Fee\nHosting | 100 EUR\nSupport | 50 EUR", None, 1),
        ("heading", "2. Payment", 2, 2),
        ("paragraph", "Invoices are payable within thirty days of receipt.", None, 2),
    ]
    # Running headers, footers and page numbers are gone; the cells appear once, in the table.
    assert "Confidential" not in doc.text and "Version 3" not in doc.text and doc.text.count("Hosting") == 1
    chunks = chunk_document(doc)
    assert [(c.heading_path, c.page_start, c.page_end) for c in chunks] == [
        (["Master Services Agreement"], 1, 1),
        (["Master Services Agreement", "1. Services"], 1, 1),
        (["Master Services Agreement", "2. Payment"], 2, 2),
    ]
    # What went over the wire: the file's bytes, the app's bearer token, the page range of the file.
    (submit,) = stub.submits()
    assert submit.path == "/documentintelligence/documentModels/prebuilt-layout:analyze"
    assert submit.authorization == "Bearer fake" and submit.content_type == "application/octet-stream"
    assert submit.body_bytes == len(data)
    assert submit.query["pages"] == [f"1-{count_pages(data, 'pdf', parse_limits())}"]
    assert sum(1 for s in stub.seen if s.method == "GET") == 3  # running, running, succeeded


def parse_limits() -> Any:
    from shared.ingest import DEFAULT_LIMITS

    return DEFAULT_LIMITS


@pytest.mark.parametrize(("fmt", "frames"), [("PNG", 1), ("JPEG", 1), ("TIFF", 3)])
def test_images_are_read_by_ocr_and_their_pages_counted(stub: DocumentIntelligenceStub, fmt: str, frames: int) -> None:
    data = image(fmt, frames)
    admitted: list[int] = []
    doc = parse_document(data, ocr=OcrRoute(analyzer_for(stub), max_pages=10, admit=admitted.append))
    assert doc.doc_type == "image" and "Invoices are payable" in doc.text
    assert admitted == [frames]
    # A TIFF's page range caps what is analysed; a PNG or JPEG is one page and is sent without one.
    assert stub.submits()[0].query.get("pages") == ([f"1-{frames}"] if fmt == "TIFF" else None)


def test_a_document_over_the_page_cap_is_refused_before_anything_is_sent(stub: DocumentIntelligenceStub) -> None:
    with pytest.raises(TooLarge) as caught:
        parse_document(image("TIFF", 4), ocr=OcrRoute(analyzer_for(stub), max_pages=3))
    assert caught.value.limit == "document_intelligence_max_pages"
    assert "4 pages" in caught.value.detail and "DOCUMENT_INTELLIGENCE_MAX_PAGES" in caught.value.detail
    assert stub.seen == []


def test_a_workspace_over_its_pages_quota_pays_for_no_analysis(stub: DocumentIntelligenceStub) -> None:
    def over_quota(pages: int) -> None:
        raise QuotaExceeded(f"{pages} more pages would pass the plan's pages indexed per month.")

    with pytest.raises(QuotaExceeded):
        parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10, admit=over_quota))
    assert stub.seen == []


# --- the service's answers ----------------------------------------------------------------------


def test_an_operation_that_fails_on_the_file_is_a_permanent_rejection(stub: DocumentIntelligenceStub) -> None:
    stub.failure = {
        "code": "InvalidRequest",
        "message": "Invalid request.",
        "innererror": {"code": "InvalidContent", "message": "The file is corrupted or format is unsupported."},
    }
    with pytest.raises(CorruptDocument, match="corrupted or format is unsupported"):
        parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10))


def test_an_operation_that_fails_in_the_service_is_retried_later(stub: DocumentIntelligenceStub) -> None:
    stub.failure = {"code": "InternalServerError", "message": "An unexpected error occurred."}
    with pytest.raises(Unavailable, match="InternalServerError"):
        parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10))


def test_a_refused_submission_names_the_missing_role(stub: DocumentIntelligenceStub) -> None:
    stub.submit_error = (403, {"code": "PermissionDenied", "message": "Principal does not have access."})
    with pytest.raises(Unavailable, match="Cognitive Services User"):
        parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10))


def test_throttling_is_waited_out_as_retry_after_says(stub: DocumentIntelligenceStub) -> None:
    stub.throttle, stub.retry_after = 1, 1
    started = time.monotonic()
    doc = parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10))
    assert time.monotonic() - started >= 1.0
    assert "Master Services Agreement" in doc.text
    assert [s.status for s in stub.submits()] == [429, 202]


def test_throttling_that_does_not_end_leaves_the_job_for_a_later_delivery(stub: DocumentIntelligenceStub) -> None:
    stub.throttle, stub.retry_after = 100, 0
    with pytest.raises(Unavailable, match="throttling"):
        parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10))
    assert [s.status for s in stub.submits()] == [429] * 4  # the first try and the SDK's three retries


def test_an_analysis_with_no_text_is_empty(stub: DocumentIntelligenceStub) -> None:
    stub.result = layout_result([[("pageNumber", "1")]])
    with pytest.raises(EmptyDocument, match="OCR found no text"):
        parse_document(image("PNG"), ocr=OcrRoute(analyzer_for(stub), max_pages=10))


# --- not configured -----------------------------------------------------------------------------


def test_without_document_intelligence_scans_and_images_say_what_would_enable_them() -> None:
    with pytest.raises(EmptyDocument) as scan:
        parse_document(image("PDF", 2))  # pages that are only a picture, as a scanner writes them
    assert "scanned image" in scan.value.detail and "DOCUMENT_INTELLIGENCE_ENDPOINT" in scan.value.detail
    with pytest.raises(UnsupportedType) as picture:
        parse_document(image("PNG"))
    assert "DOCUMENT_INTELLIGENCE_ENDPOINT" in picture.value.detail


def test_the_composition_root_builds_the_analyzer_only_when_configured() -> None:
    import dataclasses

    from shared.bootstrap import Services
    from shared.config import load_settings
    from shared.docintel import AzureDocumentAnalyzer

    base = load_settings(environ={})
    assert Services(settings=lambda: base, credential=FakeCredential()).document_analyzer is None
    configured = dataclasses.replace(
        base, document_intelligence_endpoint="https://folio-di.cognitiveservices.azure.com/"
    )
    built = Services(settings=lambda: configured, credential=FakeCredential()).document_analyzer
    assert isinstance(built, AzureDocumentAnalyzer) and built.endpoint == "https://folio-di.cognitiveservices.azure.com"


def test_image_uploads_are_accepted_only_where_ocr_is_configured() -> None:
    from shared.documents import _check_upload
    from shared.errors import Invalid

    with pytest.raises(Invalid, match="DOCUMENT_INTELLIGENCE_ENDPOINT"):
        _check_upload("scan.png", "image/png", 1000, 10_000)
    assert _check_upload("scan.png", "image/png", 1000, 10_000, ocr=True) == "image/png"
    assert _check_upload("deck.pptx", "", 1000, 10_000) == "application/octet-stream"
    assert _check_upload("sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", 9, 99)
    assert _check_upload("rows.csv", "text/csv", 9, 99) == "text/csv"


# --- through the indexer: real PostgreSQL, Azurite, the local host --------------------------------


def test_a_scan_is_indexed_with_its_pages_counted_and_one_over_the_quota_costs_nothing(
    client: Any, pipeline: Any, billing: Any, admin_conn: Any, settings_override: Any, stub: DocumentIntelligenceStub
) -> None:
    from tests.helpers import using
    from tests.stripe_events import new_owner
    from tests.test_billing_quota import _upload

    settings_override(DOCUMENT_INTELLIGENCE_ENDPOINT=stub.url)  # image uploads are accepted from now on
    stub.result = layout_result(CONTRACT[:1])
    owner, _tenant = new_owner(client)
    collection = owner.post("/api/collections", {"name": f"scans-{uuid.uuid4().hex[:6]}"}).json()["id"]

    def index(name: str, data: bytes) -> str:
        # Through the Service Bus trigger as the host runs it, so the blueprint must hand the analyzer in.
        document = _upload(owner, collection, name, data)
        with using(document_analyzer=analyzer_for(stub)):
            pipeline.settle()
        return document

    scan = index("scan.png", image("PNG"))
    shown = owner.get(f"/api/documents/{scan}").json()
    assert shown["status"] == "ready" and shown["pages"] == 1
    rows = admin_conn.execute(
        "SELECT heading_path, page_start, body FROM chunks WHERE document_id = %s ORDER BY ordinal", (scan,)
    ).fetchall()
    assert [(r["heading_path"], r["page_start"]) for r in rows] == [
        (["Master Services Agreement"], 1),
        (["Master Services Agreement", "1. Services"], 1),
    ]
    assert "Hosting | 100 EUR" in rows[1]["body"]
    assert owner.get("/api/billing").json()["usage"]["pagesPerMonth"]["used"] == 1
    assert len(stub.submits()) == 1

    # 1 page used of 5: a 5-page TIFF would pass the quota, so it is refused before it is sent.
    big = index("big.tiff", image("TIFF", 5))
    refused = owner.get(f"/api/documents/{big}").json()
    assert refused["status"] == "failed" and "pages indexed per month" in (refused.get("error") or ""), refused
    assert len(stub.submits()) == 1  # nothing was analysed, so nothing was paid for
    assert owner.get("/api/billing").json()["usage"]["pagesPerMonth"]["used"] == 1
