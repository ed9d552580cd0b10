"""The web app end to end in headless Chromium against the real local stack, and the server that serves it.

The browser is Debian's Chromium driven by Playwright (Python), started with the flags this
machine needs (no background networking: the network is closed). Screenshots of each step go to
artifacts/e2e/. Waits are on conditions (Playwright's auto-waiting ``expect``), never sleeps.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devhost.frontend import DIST, StaticWebAppServer, global_headers
from tests.helpers import Client
from tests.ingest.fixtures import build_pdf
from tests.pipeline import Pipeline
from tests.stubs.stripe_server import StripeStub
from tests.test_ingestion import upload

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WAIT_MS = 60_000  # upper bound for a condition; normally met in well under a second


# --- the static web app server (no browser) --------------------------------------------------


@pytest.fixture(scope="module")
def fake_api() -> Iterator[str]:
    """An upstream that echoes what it received, and streams NDJSON without a Content-Length."""

    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/api/stream":
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Connection", "close")
                self.end_headers()
                for n in range(3):
                    self.wfile.write(json.dumps({"type": "delta", "text": str(n)}).encode() + b"\n")
                    self.wfile.flush()
                return
            echoed = json.dumps(
                {"path": self.path, "body": body.decode(), "principal": self.headers.get("x-ms-client-principal")}
            ).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Location", "/api/things/1")
            self.send_header("Content-Length", str(len(echoed)))
            self.end_headers()
            self.wfile.write(echoed)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def static_site(tmp_path_factory: pytest.TempPathFactory, fake_api: str) -> Iterator[str]:
    dist = tmp_path_factory.mktemp("dist")
    (dist / "assets").mkdir()
    (dist / "index.html").write_text("<!doctype html><title>app</title>")
    (dist / "assets" / "app-1234.js").write_text("console.log(1)")
    (dist / "staticwebapp.config.json").write_text(
        json.dumps(
            {
                "globalHeaders": {
                    "Content-Security-Policy": "default-src 'self'; connect-src 'self' https://*.blob.core.windows.net",
                    "X-Content-Type-Options": "nosniff",
                }
            }
        )
    )
    (dist.parent / "secret.txt").write_text("outside")
    server = StaticWebAppServer(("127.0.0.1", 0), fake_api, dist=dist, connect_sources=("http://127.0.0.1:10000",))
    server.start_in_thread()
    yield server.base_url
    server.shutdown()


def _get(
    base: str, path: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_web_server_serves_runtime_config_files_and_the_app_for_its_own_paths(static_site: str) -> None:
    status, headers, body = _get(static_site, "/config.json")
    assert status == 200 and json.loads(body) == {"apiBase": "/api", "auth": "dev"}
    assert headers["cache-control"] == "no-store"
    status, headers, body = _get(static_site, "/collections/abc?x=1")  # navigationFallback
    assert status == 200 and body.startswith(b"<!doctype html>") and headers["cache-control"] == "no-cache"
    assert headers["content-security-policy"] == (
        "default-src 'self'; connect-src 'self' https://*.blob.core.windows.net http://127.0.0.1:10000"
    )
    status, headers, _ = _get(static_site, "/assets/app-1234.js")
    assert (
        status == 200
        and headers["content-type"].startswith("text/javascript")
        and "immutable" in headers["cache-control"]
    )
    assert _get(static_site, "/assets/missing.js")[0] == 404
    assert _get(static_site, "/missing.png")[0] == 404
    assert _get(static_site, "/../secret.txt")[0] == 404
    assert _get(static_site, "/%2e%2e/secret.txt")[0] == 404
    assert _get(static_site, "/index.html", method="POST")[0] == 405


def test_web_server_passes_api_calls_through_on_the_same_origin(static_site: str) -> None:
    status, headers, body = _get(
        static_site,
        "/api/things?q=1",
        method="POST",
        body=b'{"a":1}',
        headers={"Content-Type": "application/json", "x-ms-client-principal": "abc"},
    )
    assert status == 201 and headers["location"] == "/api/things/1"
    assert json.loads(body) == {"path": "/api/things?q=1", "body": '{"a":1}', "principal": "abc"}
    assert "content-security-policy" not in headers  # the API's own headers only
    status, headers, body = _get(static_site, "/api/stream", method="POST", body=b"{}")
    assert status == 200 and headers["content-type"] == "application/x-ndjson"
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert [json.loads(line)["text"] for line in body.splitlines()] == ["0", "1", "2"]
    url = urlsplit(static_site)
    conn = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        conn.request("POST", "/api/things", body=b"{}")
        names = [k.lower() for k, _ in conn.getresponse().getheaders()]
    finally:
        conn.close()
    assert names.count("date") == 1 and names.count("server") == 1  # the upstream's are not repeated


def test_web_server_reports_an_unreachable_api_as_problem_json(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("x")
    server = StaticWebAppServer(("127.0.0.1", 0), "http://127.0.0.1:9", dist=tmp_path)
    server.start_in_thread()
    try:
        status, headers, body = _get(server.base_url, "/api/me")
    finally:
        server.shutdown()
    assert status == 502 and headers["content-type"] == "application/problem+json"
    assert "not answering" in json.loads(body)["detail"]


def test_web_app_calls_the_api_on_its_own_origin_and_forbids_inline_code() -> None:
    """The front door as built: Static Web Apps serves files only (no linked backend, no /api routes);
    the browser calls the function app on its own origin with MSAL bearer tokens (CORS)."""
    config = json.loads((ROOT / "frontend" / "public" / "staticwebapp.config.json").read_text())
    assert not [r for r in config["routes"] if r["route"].startswith("/api")]
    assert config["navigationFallback"]["rewrite"] == "/index.html"
    csp = global_headers(ROOT / "frontend" / "public")["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
    connect = csp.split("connect-src ", 1)[1].split(";", 1)[0].split()
    assert "https://*.blob.core.windows.net" in connect  # the browser PUTs uploads to Blob Storage
    assert "https://*.azurewebsites.net" in connect  # the function app's own origin: the API
    assert "https://login.microsoftonline.com" in connect  # MSAL's token requests
    # The checked-in config.json is for local runs only (`npm run dev` proxies /api to `make dev`'s host,
    # which serves its own {"auth": "dev"}: test_web_server_serves_runtime_config_files_...): same-origin
    # /api and no app registration in the repository.
    local = json.loads((ROOT / "frontend" / "public" / "config.json").read_text())
    assert local["apiBase"] == "/api" and local.get("auth") != "entra" and "entra" not in local
    # In Azure the web service's postbuild hook replaces dist/config.json with the function app's
    # origin and the Entra registration (what it writes: tests/test_bicep.py test_web_config_hook_...).
    import yaml  # type: ignore[import-untyped]

    web = yaml.safe_load((ROOT / "azure.yaml").read_text())["services"]["web"]
    assert web["dist"] == "dist" and web["hooks"]["postbuild"]["posix"]["run"] == "../bicep/hooks/web-config.sh"
    hook = (ROOT / "bicep" / "hooks" / "web-config.sh").read_text()
    assert '"$dist/config.json"' in hook and '"auth": "entra"' in hook


# --- the browser against the real stack --------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; `make test` installs it (apt-get install -y chromium).")
        pytest.skip("Chromium is not installed; `make test` installs it (apt-get install -y chromium).")
    return path


@pytest.fixture(scope="module")
def built_app() -> Path:
    """frontend/dist, built by `make dev`/`make test`; built here if missing and the npm packages are there."""
    if not (DIST / "index.html").exists():
        frontend = ROOT / "frontend"
        if not (frontend / "node_modules").exists():
            pytest.fail("frontend/dist is missing; `make test` builds it (npm ci && npm run build in frontend/).")
        subprocess.run(["npm", "run", "build"], cwd=frontend, check=True, capture_output=True)
    return DIST


@pytest.fixture(scope="module")
def web(host: str, built_app: Path, running_pipeline: Pipeline, cosmos: str) -> Iterator[str]:
    """The built app on its own origin with /api passed to the test host; Azurite accepts its uploads."""
    from shared.bootstrap import services
    from shared.storage import AzureBlobStore

    store = services().blobs
    assert isinstance(store, AzureBlobStore)  # the real adapter, against Azurite
    blob = urlsplit(store.container.url)
    server = StaticWebAppServer(
        ("127.0.0.1", 0), host, dist=built_app, connect_sources=(f"{blob.scheme}://{blob.netloc}",)
    )
    server.start_in_thread()
    store.allow_browser_uploads((server.base_url,))
    yield server.base_url
    server.shutdown()


@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 860},
            reduced_motion="reduce",
        )
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


def watched_tab(browser: Any) -> Iterator[Any]:
    """A tab whose uncaught errors, CSP violations and console errors fail the test (the body of a ``page`` fixture)."""
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield tab
    tab.close()
    assert problems == []


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A tab whose uncaught errors, CSP violations and console errors fail the test."""
    yield from watched_tab(browser)


class Shots:
    """Numbered full-page screenshots under artifacts/e2e/, replacing the previous run's of the same test."""

    def __init__(self, prefix: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob(f"{prefix}-*.png"):
            old.unlink()
        self.prefix, self.count = prefix, 0

    def __call__(self, page: Any, name: str) -> None:
        self.count += 1
        page.screenshot(path=str(ARTIFACTS / f"{self.prefix}-{self.count:02d}-{name}.png"), full_page=True)


def _docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("Travel Policy", level=1)
    document.add_heading("Booking", level=2)
    document.add_paragraph("Employees book flights through the travel desk at least two weeks ahead.")
    document.add_heading("Allowances", level=2)
    document.add_paragraph("The daily meal allowance abroad is forty euros; receipts are kept for a year.")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _pdf() -> bytes:
    return build_pdf(
        [
            ["Supply Agreement", "Section 1 Scope", "This agreement covers the supply of widgets."],
            ["Section 2 Price", "Each widget costs ten euros, payable within thirty days."],
            ["Section 3 Term", "The agreement lasts two years and renews once."],
        ]
    )


def _drop(page: Any, selector: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drag and drop files onto ``selector`` as a user does from the desktop (a real DataTransfer)."""
    transfer = page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer();
            for (const [name, b64, type] of files) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], name, { type }));
            }
            return transfer;
        }""",
        [[name, base64.b64encode(data).decode(), kind] for name, data, kind in files],
    )
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def _accessibility_problems(page: Any) -> list[str]:
    """Serious and critical WCAG 2 A/AA violations axe-core finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;0")  # through the devtools protocol: the page's CSP does not apply
    return page.evaluate("""async () => {
        const result = await axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] });
        return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")})`);
    }""")


def _focused(page: Any) -> str:
    return page.evaluate(
        "document.activeElement ? document.activeElement.tagName + ':' + "
        "(document.activeElement.textContent || '').trim().slice(0, 60) : ''"
    )


def test_a_user_signs_in_uploads_searches_and_sees_billing_in_the_browser(
    page: Any, web: str, host: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    shot = Shots("journey")
    email = f"ann-{uuid.uuid4().hex[:8]}@example.com"

    # Sign in (dev sign-in: sets the principal the local API trusts), with the keyboard only.
    page.goto(web + "/")
    expect(page.get_by_role("heading", name="Sign in to Folio")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_focused()
    shot(page, "sign-in")
    assert _accessibility_problems(page) == []
    page.keyboard.type(email)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Collections", level=1)).to_be_visible()
    expect(page.locator(".account-user")).to_have_text(email)
    expect(page.get_by_text("No collections yet")).to_be_visible()
    shot(page, "collections-empty")

    # Create a collection: the app opens it, ready for uploads.
    page.get_by_label("Name").fill("Contracts")
    page.get_by_label("Description (optional)").fill("Supplier agreements and policies")
    page.get_by_label("Name").press("Enter")
    expect(page.get_by_role("heading", name="Contracts", level=1)).to_be_focused()
    expect(page.get_by_text("No documents yet")).to_be_visible()

    # Upload: a PDF and an unsupported file dropped together, a DOCX through the file chooser.
    _drop(
        page,
        ".dropzone",
        [
            ("supply-agreement.pdf", _pdf(), "application/pdf"),
            ("prices.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/vnd.ms-excel"),
        ],
    )
    rejected = page.locator("tr", has_text="prices.xls")
    expect(rejected).to_have_attribute("data-status", "error")
    expect(rejected).to_contain_text("not supported")
    docx_path = tmp_path / "travel-policy.docx"
    docx_path.write_bytes(_docx())
    network = page.context.new_cdp_session(page)  # slow uploads down enough to see the progress bar move
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 12 * 1024},
    )
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Choose files").click()
    chooser.value.set_files(str(docx_path))
    pdf_row = page.locator("tr", has_text="supply-agreement.pdf")
    docx_row = page.locator("tr", has_text="travel-policy.docx")
    expect(docx_row.get_by_role("progressbar", name="Uploading travel-policy.docx")).to_have_attribute(
        "value", re.compile(r"^[1-9]\d?$")
    )  # part-way: between 1 and 99 %
    shot(page, "uploading")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    network.detach()
    expect(pdf_row).to_have_attribute("data-status", "ready")
    expect(docx_row).to_have_attribute("data-status", "ready")
    expect(pdf_row.locator("td").nth(1)).to_have_text("3")  # pages
    expect(page.locator("[data-announcer]")).to_contain_text("is ready")
    shot(page, "documents-ready")
    assert _accessibility_problems(page) == []
    page.get_by_role("button", name="Dismiss prices.xls").click()
    expect(rejected).to_have_count(0)

    # Search, open a result in context, close it with Escape: focus returns to the result.
    page.get_by_role("link", name="Search").click()
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_focused()
    shot(page, "search-empty")
    page.get_by_label("Search your documents").fill("widget price")
    page.get_by_label("Search your documents").press("Enter")
    first = page.locator(".result").first
    expect(first.locator(".result-title")).to_have_text("supply-agreement.pdf")
    expect(first.locator(".snippet mark").first).to_be_visible()
    expect(first.locator(".pages")).to_have_text("p. 2")
    expect(page.locator(".results-summary")).to_contain_text("result")
    shot(page, "search-results")
    assert _accessibility_problems(page) == []
    page.get_by_text("Keywords", exact=True).click()
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page).to_have_url(f"{web}/search?q=widget+price&mode=lexical")
    expect(first.locator(".result-title")).to_have_text("supply-agreement.pdf")
    opener = first.get_by_role("button", name="supply-agreement.pdf")
    opener.click()
    dialog = page.get_by_role("dialog", name="supply-agreement.pdf")
    expect(dialog).to_be_visible()
    expect(dialog.locator(".passage-target")).to_contain_text("ten euros")
    shot(page, "passage")
    assert _accessibility_problems(page) == []
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()
    page.get_by_label("Search your documents").fill("zeppelin")
    page.get_by_label("Search your documents").press("Enter")
    expect(page.get_by_text("No passages match")).to_be_visible()

    # Chat: a question, a streamed answer, a citation.
    page.get_by_role("link", name="Chat").click()
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    page.get_by_label("Ask a question about your documents").fill("How much does a widget cost?")
    page.get_by_label("Ask a question about your documents").press("Enter")
    citation = page.locator(".message-assistant .cite").first
    expect(citation).to_be_visible()
    shot(page, "chat-answer")
    assert _accessibility_problems(page) == []
    citation.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    shot(page, "chat-citation")
    page.keyboard.press("Escape")
    expect(page.locator(".chat-sessions li")).not_to_have_count(0)

    # Billing: the free plan and usage against every limit.
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing", level=1)).to_be_focused()
    expect(page.locator(".plan-name")).to_have_text("Free")
    expect(page.locator(".usage meter")).to_have_count(5)
    expect(page.locator(".usage", has_text="Documents")).to_contain_text("2 of 1,000")
    shot(page, "billing")
    assert _accessibility_problems(page) == []

    # Back to the collections: the new one lists its two documents; deleting asks first.
    page.get_by_role("link", name="Collections").click()
    card = page.locator(".collection-card", has_text="Contracts")
    expect(card).to_contain_text("2 documents")
    card.get_by_role("button", name="Delete collection Contracts").click()
    confirm = page.get_by_role("dialog", name="Delete “Contracts”?")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
    shot(page, "delete-confirm")
    confirm.get_by_role("button", name="Delete collection").click()
    expect(page.get_by_text("No collections yet")).to_be_visible()

    # Signing out forgets the dev principal.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Folio")).to_be_visible()


def _sign_in_as(page: Any, web: str, user: Client) -> None:
    """Start the browser signed in as ``user`` (the dev principal the sign-in page would store)."""
    page.goto(web + "/")
    page.evaluate(
        "p => localStorage.setItem('folio.devPrincipal', JSON.stringify(p))",
        json.loads(base64.b64decode(user.headers["x-ms-client-principal"])),
    )


def test_an_owner_upgrades_through_stripe_checkout_from_the_billing_page(
    page: Any, web: str, host: str, billing: StripeStub
) -> None:
    from playwright.sync_api import expect

    shot = Shots("billing")
    owner = Client(host).as_user(f"owner-{uuid.uuid4().hex[:8]}", email=f"owner-{uuid.uuid4().hex[:6]}@example.com")
    assert owner.get("/api/me").json()["role"] == "owner"
    # Checkout's page lives on Stripe; this machine has no way out, so the browser is shown a stand-in.
    page.route(
        "https://checkout.stripe.com/**",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>Stripe Checkout</title><h1>Pay</h1>"
        ),
    )
    _sign_in_as(page, web, owner)
    page.goto(web + "/billing")
    expect(page.locator(".plan-name")).to_have_text("Free")
    expect(page.locator(".usage", has_text="Documents")).to_contain_text("0 of 3")
    expect(page.get_by_role("button", name="Upgrade to Team")).to_be_enabled()
    shot(page, "plans")
    assert _accessibility_problems(page) == []
    page.get_by_role("button", name="Upgrade to Pro").click()
    expect(page).to_have_url(re.compile(r"^https://checkout\.stripe\.com/c/pay/cs_test_"))
    expect(page.get_by_role("heading", name="Pay")).to_be_visible()


def test_chat_view_streams_an_answer_and_opens_its_citation(page: Any, web: str, host: str) -> None:
    """The chat view against the real POST /api/chat (extractive answers): the citation opens the real passage."""
    from playwright.sync_api import expect

    shot = Shots("chat")
    user = Client(host).as_user(f"chat-{uuid.uuid4().hex[:8]}", email=f"chat-{uuid.uuid4().hex[:6]}@example.com")
    collection = user.post("/api/collections", {"name": "Agreements"}).json()["id"]
    created = upload(user, collection, "supply-agreement.pdf", _pdf(), "application/pdf")
    _wait_ready(user, created["documentId"])

    _sign_in_as(page, web, user)
    page.goto(web + "/chat")
    expect(page.get_by_role("heading", name="New conversation", level=1)).to_be_visible()
    box = page.get_by_label("Ask a question about your documents")
    box.fill("How much does a widget cost?")
    box.press("Enter")
    answer = page.locator(".message-assistant").last
    expect(answer.locator(".cite").first).to_be_visible()
    expect(answer.locator(".answer")).to_contain_text("ten euros")
    expect(answer.locator(".sources li")).not_to_have_count(0)
    expect(page).to_have_url(f"{web}/chat/" + (page.url.rsplit("/", 1)[-1]))
    expect(page.locator(".chat-sessions li").first).to_be_visible()
    shot(page, "answer")
    assert _accessibility_problems(page) == []
    answer.locator(".cite").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".passage-target")).to_contain_text("euros")
    shot(page, "citation")
    page.keyboard.press("Escape")
    expect(answer.locator(".cite").first).to_be_focused()


def test_chat_shows_the_answer_while_the_model_is_still_writing_and_stop_ends_it(
    page: Any, web: str, host: str, settings_override: Any
) -> None:
    """Browser → same-origin proxy → host → model, incrementally: the first words are on screen while the
    (stub) model holds back the rest; Stop ends a second answer mid-way and nothing of it is kept."""
    from playwright.sync_api import expect

    from blueprints._ndjson import open_streams
    from tests.stubs.llm_server import LlmStub, Reply

    shot = Shots("chat-stream")
    user = Client(host).as_user(f"stream-{uuid.uuid4().hex[:8]}", email=f"stream-{uuid.uuid4().hex[:6]}@example.com")
    collection = user.post("/api/collections", {"name": "Agreements"}).json()["id"]
    _wait_ready(user, upload(user, collection, "supply-agreement.pdf", _pdf(), "application/pdf")["documentId"])
    with LlmStub() as llm:
        _chat_through(llm, settings_override)
        first_go, second_go = threading.Event(), threading.Event()
        llm.script(
            Reply(text=["Each widget costs ", "ten euros [1]."], stall_after=1, gate=first_go),
            Reply(text=["Thirty ", "days [1]."], stall_after=1, gate=second_go),
        )
        try:
            _sign_in_as(page, web, user)
            page.goto(web + "/chat")
            box = page.get_by_label("Ask a question about your documents")
            box.fill("How much does a widget cost?")
            box.press("Enter")
            answer = page.locator(".message-assistant").last
            expect(answer.locator(".answer-streaming")).to_have_text("Each widget costs ")
            expect(page.get_by_role("button", name="Stop")).to_be_visible()
            assert not first_go.is_set()  # on screen while the model still holds the rest
            shot(page, "partial")
            first_go.set()
            expect(answer.locator(".answer")).to_contain_text("ten euros")
            expect(answer.locator(".cite").first).to_be_visible()
            session_id = page.url.rsplit("/", 1)[-1]

            box.fill("Within how many days must the buyer pay for the widgets?")  # standalone: no rewrite call
            box.press("Enter")
            expect(page.locator(".message-assistant").last.locator(".answer-streaming")).to_have_text("Thirty ")
            page.get_by_role("button", name="Stop").click()
            expect(page.locator(".message-assistant").last).to_contain_text("Stopped.")
            shot(page, "stopped")
            # The abort travels browser → proxy → host; the model resumes only once the host has let go.
            deadline = time.monotonic() + WAIT_MS / 1000
            while open_streams() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert open_streams() == 0
        finally:
            first_go.set()
            second_go.set()
    kept = user.get(f"/api/chat/sessions/{session_id}").json()
    assert kept["turns"] == 1 and [m["role"] for m in kept["messages"]] == ["user", "assistant"]


def _chat_through(llm: Any, settings_override: Any) -> None:
    """Point the API's chat at the stub model ``llm`` (OpenAI's API), with a minute to answer."""
    settings_override(
        CHAT_PROVIDER="openai",
        OPENAI_BASE_URL=llm.url + "/v1",
        OPENAI_API_KEY="sk-test-0123456789",
        OPENAI_CHAT_MODEL="gpt-stub",
        CHAT_TIMEOUT_SECONDS="60",
    )


def _wait_ready(user: Client, document_id: str) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        status = user.get(f"/api/documents/{document_id}").json()["status"]
        if status in ("ready", "failed"):
            assert status == "ready"
            return
        time.sleep(0.1)  # polling the API, as the app does
    raise AssertionError("the document did not become ready")
