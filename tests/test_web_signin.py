"""The production sign-in path in headless Chromium: MSAL against a local OpenID Connect provider, bearer tokens
to the API on a separate origin (CORS preflights included), and a chat answer streamed across origins.

Three origins, as in Azure: the web app (what Static Web Apps serves, here devhost's static server with
``auth: entra`` in /config.json), the function app's API (the Functions HTTP server with CORS for the web
app's origin only), and the identity provider (tests/stubs/oidc_server.py over HTTPS, shaped like Entra's
multi-tenant v2.0 endpoints). The API runs with production's trust settings: the principal header is not
trusted, only bearer tokens validated against the provider's JWKS.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from devhost.frontend import DIST, StaticWebAppServer
from devhost.http_server import FunctionsHttpServer
from tests.helpers import Client
from tests.pipeline import Pipeline
from tests.stubs.oidc_server import OidcProvider
from tests.test_ingestion import upload
from tests.test_web_app import (
    CHROMIUM_FLAGS,
    WAIT_MS,
    Shots,
    _accessibility_problems,
    _chat_through,
    _pdf,
    _wait_ready,
    watched_tab,
)

CLIENT_ID = "4d7c1e2a-0c0f-4d6e-9a51-5f0d1e7a9b10"  # the SPA's application id (one registration: SPA + API)
API_SCOPE = f"api://{CLIENT_ID}/access_as_user"
CONTOSO = "11111111-2222-3333-4444-555555555555"
FABRIKAM = "66666666-7777-8888-9999-000000000000"


ROOT = Path(__file__).resolve().parent.parent


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
        if not (ROOT / "frontend" / "node_modules").exists():
            pytest.fail("frontend/dist is missing; `make test` builds it (npm ci && npm run build in frontend/).")
        subprocess.run(["npm", "run", "build"], cwd=ROOT / "frontend", check=True, capture_output=True)
    return DIST


@dataclass
class Seen:
    method: str
    path: str
    origin: str | None
    preflight_method: str | None
    preflight_headers: str | None
    authorization: str | None
    principal_header: bool
    status: int = 0


class RecordingApi(FunctionsHttpServer):
    """The Functions HTTP server, recording what reached it (preflights included) and what it answered."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[Seen] = []

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await super().app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = Seen(
            method=scope["method"],
            path=scope["path"],
            origin=headers.get("origin"),
            preflight_method=headers.get("access-control-request-method"),
            preflight_headers=headers.get("access-control-request-headers"),
            authorization=headers.get("authorization"),
            principal_header="x-ms-client-principal" in headers,
        )
        self.seen.append(seen)

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            await send(message)

        await super().app(scope, receive, recording_send)


@dataclass
class Stack:
    web: str
    api: RecordingApi
    idp: OidcProvider


@pytest.fixture(scope="module")
def stack(host: str, built_app: Path, running_pipeline: Pipeline, cosmos: str) -> Iterator[Stack]:
    import function_app
    from devhost.functions import registrations
    from shared.bootstrap import services
    from shared.storage import AzureBlobStore

    with OidcProvider(client_id=CLIENT_ID, api_scope=API_SCOPE, audience=CLIENT_ID, redirect_uris=[]) as idp:
        api = RecordingApi(("127.0.0.1", 0), registrations(function_app.app))
        api.start_in_thread()
        store = services().blobs
        assert isinstance(store, AzureBlobStore)
        blob = urlsplit(store.container.url)
        idp_host = urlsplit(idp.url).netloc
        web = StaticWebAppServer(
            ("127.0.0.1", 0),
            "http://127.0.0.1:9",  # nothing: the app calls the API on its own origin, never /api here
            dist=built_app,
            connect_sources=(f"{blob.scheme}://{blob.netloc}", api.base_url, idp.url),
            runtime_config={
                "apiBase": f"{api.base_url}/api",
                "auth": "entra",
                "entra": {
                    "clientId": CLIENT_ID,
                    "authority": idp.authority,
                    "apiScope": API_SCOPE,
                    "knownAuthorities": [idp_host],
                },
            },
        )
        web.start_in_thread()
        assert urlsplit(web.base_url).port != urlsplit(api.base_url).port  # two origins
        api.cors_origins = (web.base_url,)  # the function app's CORS: exactly the web app's origin
        idp.redirect_uris.append(f"{web.base_url}/")  # the SPA redirect URI of the app registration
        store.allow_browser_uploads((web.base_url,))
        try:
            yield Stack(web=web.base_url, api=api, idp=idp)
        finally:
            web.shutdown()
            api.shutdown()


@pytest.fixture
def production_auth(stack: Stack, settings_override: Any) -> Stack:
    """The API as in Azure: any work tenant (issuer per token tid), bearer tokens only, no trusted header."""
    settings_override(
        AUTH_ENTRA_TENANT_ID="",
        AUTH_ALLOWED_TENANTS="",
        AUTH_AUDIENCE=CLIENT_ID,
        AUTH_ISSUER=stack.idp.issuer_template,
        AUTH_JWKS_URL=stack.idp.jwks_url,
        FOLIO_DEV_MODE="false",
    )
    return stack


@pytest.fixture(scope="module")
def browser(chromium: str, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-signin-profile")),
            executable_path=chromium,
            headless=True,
            # Trust the provider's self-signed certificate, and only it.
            args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={stack.idp.spki_sha256}"],
            viewport={"width": 1280, "height": 860},
            reduced_motion="reduce",
        )
        context.set_default_timeout(WAIT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A tab whose uncaught errors, CSP violations and console errors fail the test."""
    yield from watched_tab(browser)


def _bearer_client(stack: Stack, email: str, tenant: str) -> Client:
    user = stack.idp.add_user(email, tenant)
    token = stack.idp.access_token_for(user, [API_SCOPE, "openid", "profile"])
    return Client(stack.api.base_url).with_headers(authorization=f"Bearer {token}")


def test_a_user_signs_in_with_msal_and_streams_a_chat_answer_from_the_api_on_another_origin(
    page: Any, production_auth: Stack, settings_override: Any
) -> None:
    from playwright.sync_api import expect

    from tests.stubs.llm_server import LlmStub, Reply

    stack = production_auth
    shot = Shots("signin")
    email = f"dana-{uuid.uuid4().hex[:8]}@fabrikam.example"
    # The user's documents, put there through the API with a token from the same provider.
    seeded = _bearer_client(stack, email, FABRIKAM)
    collection = seeded.post("/api/collections", {"name": "Agreements"}).json()["id"]
    _wait_ready(seeded, upload(seeded, collection, "supply-agreement.pdf", _pdf(), "application/pdf")["documentId"])
    stack.api.seen.clear()

    # Sign in: the app's button → the provider's page (authorization code + PKCE) → back, signed in.
    page.goto(stack.web + "/chat")
    expect(page.get_by_role("button", name="Sign in with Microsoft")).to_be_focused()
    shot(page, "sign-in")
    assert _accessibility_problems(page) == []
    page.get_by_role("button", name="Sign in with Microsoft").click()
    expect(page).to_have_url(re.compile("^" + re.escape(stack.idp.authority + "/oauth2/v2.0/authorize?")))
    authorize = parse_qs(urlsplit(page.url).query)
    assert authorize["code_challenge_method"] == ["S256"] and len(authorize["code_challenge"][0]) == 43
    assert authorize["client_id"] == [CLIENT_ID] and authorize["redirect_uri"] == [stack.web + "/"]
    assert API_SCOPE in authorize["scope"][0].split()
    shot(page, "provider")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Next").click()
    expect(page).to_have_url(stack.web + "/chat")  # MSAL redeemed the code and returned to the start page
    expect(page.locator(".account-user")).to_have_text(email)
    expect(page.get_by_role("heading", name="New conversation", level=1)).to_be_visible()
    redeemed = [r for r in stack.idp.token_requests if r.get("grant_type") == "authorization_code"]
    assert redeemed and len(redeemed[-1]["code_verifier"]) >= 43  # the verifier the challenge was made from
    shot(page, "signed-in")

    # Chat, streamed from the API's origin while the (stub) model still holds back the rest.
    with LlmStub() as llm:
        _chat_through(llm, settings_override)
        go = threading.Event()
        llm.script(Reply(text=["Each widget costs ", "ten euros [1]."], stall_after=1, gate=go))
        try:
            box = page.get_by_label("Ask a question about your documents")
            box.fill("How much does a widget cost?")
            box.press("Enter")
            answer = page.locator(".message-assistant").last
            expect(answer.locator(".answer-streaming")).to_have_text("Each widget costs ")
            assert not go.is_set()  # on screen while the model still writes: streamed, not buffered
            shot(page, "streaming")
            go.set()
            expect(answer.locator(".answer")).to_contain_text("ten euros")
            expect(answer.locator(".cite").first).to_be_visible()
        finally:
            go.set()
    shot(page, "answer")

    # What reached the API: CORS preflights from the web app's origin asking for Authorization, then
    # bearer-authenticated calls; never the principal header.
    seen = list(stack.api.seen)
    preflights = [s for s in seen if s.method == "OPTIONS" and s.preflight_method]
    assert any(
        s.path == "/api/chat" and s.preflight_method == "POST" and "authorization" in (s.preflight_headers or "")
        for s in preflights
    ), preflights
    assert all(s.origin == stack.web and s.status == 204 for s in preflights)
    calls = [s for s in seen if s.method != "OPTIONS"]
    assert {s.path for s in calls} >= {"/api/me", "/api/chat"}
    assert all((s.authorization or "").startswith("Bearer ") and not s.principal_header for s in calls), calls
    assert all(s.status < 400 for s in calls), [(s.method, s.path, s.status) for s in calls]

    # Signing out goes through the provider's end-session endpoint and back to the sign-in card.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in with Microsoft")).to_be_visible()


def _raw(base: str, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.netloc, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_the_api_allows_only_the_web_apps_origin_and_only_user_tokens(production_auth: Stack) -> None:
    stack = production_auth
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    status, headers, _ = _raw(stack.api.base_url, "OPTIONS", "/api/chat", {"Origin": stack.web, **preflight})
    assert status == 204 and headers["access-control-allow-origin"] == stack.web
    assert "authorization" in headers["access-control-allow-headers"]
    status, headers, _ = _raw(
        stack.api.base_url, "OPTIONS", "/api/chat", {"Origin": "https://evil.example", **preflight}
    )
    assert status == 403 and "access-control-allow-origin" not in headers

    # A user of any work tenant: 200. An app-only token from the same provider, same key: 401.
    user = _bearer_client(stack, f"erin-{uuid.uuid4().hex[:6]}@contoso.example", CONTOSO)
    assert user.get("/api/me").status == 200
    now = int(time.time())
    app_only = stack.idp.mint(
        {
            "iss": stack.idp.issuer_template.format(tenantid=CONTOSO),
            "aud": CLIENT_ID,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "tid": CONTOSO,
            "oid": str(uuid.uuid4()),
            "sub": "daemon",
            "azp": "daemon-app",
            "idtyp": "app",
            "roles": ["Folio.ReadWrite"],
            "ver": "2.0",
        }
    )
    refused = Client(stack.api.base_url).with_headers(authorization=f"Bearer {app_only}").get("/api/me")
    assert refused.status == 401 and "App-only" in refused.json()["detail"]
    # Production trust: the dev sign-in's header is refused outright.
    forged = Client(stack.api.base_url).as_user(f"mallory-{uuid.uuid4().hex[:6]}").get("/api/me")
    assert forged.status == 401 and "not trusted" in forged.json()["detail"]
    # PKCE: a code redeemed without the right verifier is refused by the provider (what MSAL relies on).
    assert json.loads(_token_without_verifier(stack))["error"] == "invalid_grant"


def _token_without_verifier(stack: Stack) -> bytes:
    """Walk the authorization endpoint by hand, then redeem the code with a wrong verifier."""
    import ssl
    from urllib.parse import urlencode

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the stub's self-signed certificate; nothing secret travels
    netloc = urlsplit(stack.idp.url).netloc
    form = {
        "client_id": CLIENT_ID,
        "redirect_uri": f"{stack.web}/",
        "response_type": "code",
        "scope": API_SCOPE,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "login": "pkce@contoso.example",
    }
    conn = http.client.HTTPSConnection(netloc, context=context, timeout=10)
    conn.request(
        "POST",
        "/organizations/oauth2/v2.0/authorize",
        body=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    location = conn.getresponse().getheader("Location") or ""
    conn.close()
    code = parse_qs(urlsplit(location).fragment)["code"][0]
    conn = http.client.HTTPSConnection(netloc, context=context, timeout=10)
    body = urlencode(
        {
            "client_id": CLIENT_ID,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{stack.web}/",
            "code_verifier": "not-the-verifier-" + "x" * 40,
        }
    )
    conn.request(
        "POST",
        "/organizations/oauth2/v2.0/token",
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": stack.web},
    )
    answer = conn.getresponse().read()
    conn.close()
    return answer


def _sign_in(page: Any, stack: Stack, email: str, start: str = "/") -> None:
    from playwright.sync_api import expect

    page.goto(stack.web + start)
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Next").click()
    expect(page.locator(".account-user")).to_have_text(email)


def _sideways_overflow(page: Any) -> list[str]:
    """Elements that stick out past the viewport's right edge (what makes a phone scroll sideways)."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        if (document.documentElement.scrollWidth <= width) return [];
        return [...document.querySelectorAll("body *")]
            .filter((el) => el.getBoundingClientRect().right > width + 0.5)
            .slice(0, 8)
            .map((el) => `${el.tagName.toLowerCase()}.${[...el.classList].join(".")} right=${Math.round(el.getBoundingClientRect().right)}`);
    }""")


def test_the_web_app_does_not_scroll_sideways_on_a_390px_phone(page: Any, production_auth: Stack) -> None:
    """#17: at 390 px the app scrolled sideways. Every view, signed in with a long address, fits the width."""
    from playwright.sync_api import expect

    stack = production_auth
    email = f"bartholomew.long-address-{uuid.uuid4().hex[:8]}@fabrikam-holdings.example"
    seeded = _bearer_client(stack, email, FABRIKAM)
    collection = seeded.post("/api/collections", {"name": "Supplier agreements and framework contracts"}).json()["id"]
    _wait_ready(seeded, upload(seeded, collection, "supply-agreement.pdf", _pdf(), "application/pdf")["documentId"])
    page.set_viewport_size({"width": 390, "height": 844})
    shot = Shots("phone")
    page.goto(stack.web + "/")
    expect(page.get_by_role("button", name="Sign in with Microsoft")).to_be_visible()
    assert _sideways_overflow(page) == [], "sign-in"
    _sign_in(page, stack, email)
    views = {
        "/": page.get_by_role("heading", name="Collections", level=1),
        f"/collections/{collection}": page.locator("tr", has_text="supply-agreement.pdf"),
        "/search?q=widget+price&mode=hybrid": page.locator(".result").first,
        "/chat": page.get_by_label("Ask a question about your documents"),
        "/billing": page.locator(".plan-name"),
    }
    problems = {}
    for path, ready in views.items():
        page.goto(stack.web + path)
        expect(ready).to_be_visible()
        shot(page, path.strip("/").split("/")[0].split("?")[0] or "collections")
        overflow = _sideways_overflow(page)
        if overflow:
            problems[path] = overflow
    assert problems == {}, json.dumps(problems, indent=1)


def test_a_cancelled_sign_in_shows_why_and_offers_to_try_again(page: Any, production_auth: Stack) -> None:
    from playwright.sync_api import expect

    stack = production_auth
    page.goto(stack.web + "/search")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_role("button", name="Cancel").click()  # the provider answers error=access_denied
    expect(page.get_by_role("alert")).to_contain_text("Signing in did not work")
    expect(page.get_by_role("alert")).to_contain_text("access_denied")
    assert _accessibility_problems(page) == []
    page.get_by_role("link", name="Try again").click()
    expect(page.get_by_role("button", name="Sign in with Microsoft")).to_be_visible()


def test_expiring_tokens_are_renewed_silently_with_the_refresh_token(page: Any, production_auth: Stack) -> None:
    """MSAL renews an access token within 5 minutes of expiry; with 4-minute tokens every call renews."""
    from playwright.sync_api import expect

    stack = production_auth
    stack.idp.token_lifetime_s = 240
    try:
        email = f"rene-{uuid.uuid4().hex[:8]}@contoso.example"
        stack.idp.add_user(email, CONTOSO)
        _sign_in(page, stack, email)
        renewals = len([r for r in stack.idp.token_requests if r.get("grant_type") == "refresh_token"])
        stack.api.seen.clear()
        page.get_by_role("link", name="Billing").click()
        expect(page.locator(".plan-name")).to_have_text("Free")
        page.get_by_role("link", name="Collections").click()
        expect(page.get_by_text("No collections yet")).to_be_visible()
        assert len([r for r in stack.idp.token_requests if r.get("grant_type") == "refresh_token"]) > renewals
        calls = [s for s in stack.api.seen if s.method != "OPTIONS"]
        assert calls and all(s.status == 200 and (s.authorization or "").startswith("Bearer ") for s in calls)
    finally:
        stack.idp.token_lifetime_s = 3600


def test_a_tenant_outside_the_allow_list_is_told_so_after_signing_in(
    page: Any, production_auth: Stack, settings_override: Any
) -> None:
    from playwright.sync_api import expect

    stack = production_auth
    settings_override(AUTH_ALLOWED_TENANTS=CONTOSO)
    email = f"fay-{uuid.uuid4().hex[:8]}@fabrikam.example"
    stack.idp.add_user(email, FABRIKAM)
    page.goto(stack.web + "/")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("alert")).to_contain_text("tenant is not allowed")
    expect(page.get_by_role("button", name="Sign in with Microsoft")).to_be_visible()
