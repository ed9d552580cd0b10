"""Citations open the original, in headless Chromium against the real local stack (see test_web_app.py).

A chat citation of a four-page PDF opens pdf.js at the cited page with the passage highlighted on the
page's text layer; a search result in an HTML page opens the page's text with the passage marked, and
nothing of the file's markup or script reaches the app.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers import Client
from tests.ingest.fixtures import build_pdf
from tests.test_ingestion import upload
from tests.test_web_app import (  # noqa: F401  (pytest fixtures, used by name)
    Shots,
    _accessibility_problems,
    _focused,
    _sign_in_as,
    _wait_ready,
    browser,
    built_app,
    chromium,
    page,
    web,
)

PAGES = [
    ["Supply Agreement", "Section 1 Scope", "This agreement covers the supply of widgets to the buyer."],
    ["Section 2 Delivery", "Widgets are delivered to the warehouse of the buyer every Monday morning."],
    ["Section 3 Price", "Each widget costs ten euros, payable within thirty days of delivery."],
    ["Section 4 Term", "The agreement lasts two years and renews once unless cancelled."],
]

HTML = b"""<!doctype html><html><head><title>Travel policy</title>
<script>window.__pwned = "head script ran";</script>
<style>body { display: none }</style></head>
<body><h1>Travel policy</h1>
<h2>Booking</h2><p>Employees book flights through the travel desk at least two weeks ahead.</p>
<h2>Allowances</h2><p>The daily meal allowance abroad is forty euros; receipts are kept for a year.</p>
<img src="/api/never-requested" onerror="window.__pwned = 'img handler ran'">
<script>window.__pwned = "body script ran";</script>
</body></html>"""


def _user(host: str, name: str) -> Client:
    return Client(host).as_user(f"{name}-{uuid.uuid4().hex[:8]}", email=f"{name}-{uuid.uuid4().hex[:6]}@example.com")


def test_a_chat_citation_opens_the_pdf_at_the_cited_page_with_the_passage_highlighted(
    page: Any,  # noqa: F811 - the browser fixtures imported above
    web: str,  # noqa: F811
    host: str,
) -> None:
    from playwright.sync_api import expect

    shot = Shots("viewer-pdf")
    user = _user(host, "viewer")
    collection = user.post("/api/collections", {"name": "Agreements"}).json()["id"]
    created = upload(user, collection, "supply-agreement.pdf", build_pdf(PAGES), "application/pdf")
    _wait_ready(user, created["documentId"])

    _sign_in_as(page, web, user)
    page.goto(web + "/chat")
    box = page.get_by_label("Ask a question about your documents")
    box.fill("How much does a widget cost?")
    box.press("Enter")
    answer = page.locator(".message-assistant").last
    expect(answer.locator(".answer")).to_contain_text("ten euros")
    answer.locator(".cite").first.click()

    passage = page.get_by_role("dialog", name="supply-agreement.pdf")
    expect(passage.locator(".passage-target")).to_contain_text("ten euros")
    opener = passage.get_by_role("button", name="Open original at p. 3")
    opener.click()

    viewer = page.locator(".viewer-dialog")
    expect(viewer).to_be_visible()
    expect(viewer.locator(".viewer-page")).to_have_text("Page 3 of 4")
    expect(viewer.locator(".pdf-page")).to_have_attribute("data-page", "3")
    expect(viewer.locator(".pdf-page canvas")).to_be_visible()
    hits = viewer.locator(".textLayer .viewer-hit")
    expect(hits.first).to_be_visible()
    expect(hits.first).to_be_in_viewport()
    expect(viewer.locator(".viewer-status")).to_have_text("The cited passage is highlighted on page 3.")
    highlighted = " ".join(hits.all_text_contents())
    assert "ten euros" in highlighted and "thirty days" in highlighted, highlighted
    # Only the passage: the page's other text stays unmarked, and the text layer holds the page's own words.
    layer = viewer.locator(".textLayer").inner_text()
    assert "Each widget costs ten euros" in " ".join(layer.split()) and "Delivery" not in highlighted
    # The highlighted spans lie over the page's canvas, where the words are drawn.
    canvas = viewer.locator(".pdf-page canvas").bounding_box()
    box_of_hit = hits.first.bounding_box()
    assert canvas and box_of_hit and canvas["y"] < box_of_hit["y"] < canvas["y"] + canvas["height"]
    download = viewer.get_by_role("link", name="Download")
    assert (download.get_attribute("href") or "").startswith("http://127.0.0.1:")  # Azurite, with the read SAS
    shot(page, "cited-page")
    assert _accessibility_problems(page) == []

    # Paging on: the next page has no highlight and says where the passage is.
    viewer.get_by_role("button", name="Next page").click()
    expect(viewer.locator(".viewer-page")).to_have_text("Page 4 of 4")
    expect(viewer.locator(".viewer-status")).to_have_text("The cited passage is on page 3.")
    expect(hits).to_have_count(0)
    expect(viewer.get_by_role("button", name="Next page")).to_be_disabled()
    viewer.get_by_role("button", name="Previous page").click()
    expect(viewer.locator(".viewer-page")).to_have_text("Page 3 of 4")
    expect(hits.first).to_be_visible()

    # Escape closes the viewer, then the passage; focus returns each time.
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)
    expect(opener).to_be_focused()
    page.keyboard.press("Escape")
    expect(passage).to_have_count(0)
    assert _focused(page).startswith("BUTTON:")


def test_a_search_result_opens_an_html_original_as_text_with_the_passage_marked(
    page: Any,  # noqa: F811 - the browser fixtures imported above
    web: str,  # noqa: F811
    host: str,
) -> None:
    from playwright.sync_api import expect

    shot = Shots("viewer-html")
    user = _user(host, "viewer-html")
    collection = user.post("/api/collections", {"name": "Policies"}).json()["id"]
    created = upload(user, collection, "travel-policy.html", HTML, "text/html")
    _wait_ready(user, created["documentId"])
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    _sign_in_as(page, web, user)
    page.goto(web + "/search?q=meal+allowance&mode=lexical")
    first = page.locator(".result").first
    expect(first.locator(".result-title")).to_have_text("travel-policy.html")
    first.get_by_role("button", name="travel-policy.html").click()
    passage = page.get_by_role("dialog", name="travel-policy.html")
    expect(passage.locator(".passage-target")).to_contain_text("forty euros")
    passage.get_by_role("button", name="Open original").click()

    viewer = page.locator(".viewer-dialog")
    mark = viewer.locator(".viewer-text mark.viewer-hit")
    expect(mark.first).to_be_visible()
    expect(mark.first).to_contain_text("The daily meal allowance abroad is forty euros")
    expect(viewer.locator(".viewer-status")).to_have_text("The cited passage is highlighted.")
    text = viewer.locator(".viewer-text").inner_text()
    assert "Employees book flights" in text  # the whole page's text, not just the passage
    assert "<" not in text and "__pwned" not in text and "display: none" not in text  # no markup, script or style
    # Nothing of the file became DOM: no image, no script; nothing it names was fetched; none of it ran.
    assert viewer.locator("img, script, style, h1").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    assert not [url for url in requested if "never-requested" in url]
    shot(page, "html-original")
    assert _accessibility_problems(page) == []
    page.keyboard.press("Escape")
    expect(viewer).to_have_count(0)


CASES: list[tuple[str, list[str], str]] = [
    (
        "split across text items and a line-end hyphen",
        ["Each wid", "get costs ten eu-", "ros, payable within", " thirty days."],
        "Each widget costs ten euros, payable within thirty days.",
    ),
    ("a ligature in the PDF's text", ["The ﬁnal term is binding on both parties."], "The final term is binding."),
    (
        "the page where the passage starts",
        ["Section 3 Price", "Each widget costs ten euros, payable within"],
        "Each widget costs ten euros, payable within thirty days of delivery, by bank transfer.",
    ),
    (
        "the page where it ends",
        ["thirty days of delivery, by bank transfer.", "Section 4 Term"],
        "Each widget costs ten euros, payable within thirty days of delivery, by bank transfer.",
    ),
    (
        "Markdown markup in the file",
        ["# Travel\n\nThe **daily** meal allowance is _forty_ euros.\n\nReceipts are kept."],
        "The daily meal allowance is forty euros.",
    ),
    ("a page without the passage", ["Completely unrelated text on this page."], "Each widget costs ten euros."),
]


def test_the_passage_is_found_across_items_hyphens_ligatures_markup_and_page_breaks(
    page: Any,  # noqa: F811 - the browser fixtures imported above
    web: str,  # noqa: F811
) -> None:
    """The matcher the viewer highlights with, run in the browser from the built chunk."""
    from devhost.frontend import DIST

    (chunk,) = (DIST / "assets").glob("viewer-*.js")
    page.goto(web + "/")
    found = page.evaluate(
        "async ([src, cases]) => { const m = await import(src);"
        " return cases.map(([, parts, passage]) => m.matchPassage(parts, passage)); }",
        [f"/assets/{chunk.name}", CASES],
    )
    marked = {
        name: [parts[r["part"]][r["start"] : r["end"]] for r in ranges]
        for (name, parts, _), ranges in zip(CASES, found, strict=True)
    }
    assert marked == {
        "split across text items and a line-end hyphen": [
            "Each wid",
            "get costs ten eu",
            "ros, payable within",
            "thirty days.",
        ],
        "a ligature in the PDF's text": ["The ﬁnal term is binding"],
        "the page where the passage starts": ["Each widget costs ten euros, payable within"],
        "the page where it ends": ["thirty days of delivery, by bank transfer."],
        "Markdown markup in the file": ["The **daily** meal allowance is _forty_ euros."],
        "a page without the passage": [],
    }
