"""A local OpenID Connect provider shaped like Microsoft Entra ID's v2.0 endpoints, for MSAL in a real browser.

What MSAL.js (``@azure/msal-browser``) and Folio's token validation talk to, on this machine:

- discovery: ``/{tenant}/v2.0/.well-known/openid-configuration`` (and without ``v2.0``), Entra's
  multi-tenant shape: the issuer is ``https://<stub>/{tenantid}/v2.0``, filled in per token;
- the authorization endpoint: a sign-in page (an email, or Cancel: ``access_denied``); only
  registered redirect URIs and ``code_challenge_method=S256`` are accepted; the code goes back in the
  fragment or the query as ``response_mode`` asks, with ``client_info`` (uid/utid) as Entra sends it;
- the token endpoint: ``authorization_code`` with the PKCE verifier checked against the challenge,
  single-use codes bound to client id and redirect URI, and redeemable only cross-origin from the
  redirect URI's origin (Entra's rule for single-page apps, AADSTS9002327); ``refresh_token`` (how
  MSAL renews an access token silently; set :attr:`token_lifetime_s` under MSAL's 5-minute renewal
  offset and every token request renews);
  CORS answered for that origin;
- JWKS: ``/{tenant}/discovery/v2.0/keys``; tokens are RS256 with a ``kid``.

Access tokens carry what Entra's v2.0 tokens carry: ``iss`` of the user's tenant, ``tid``, ``oid``,
``sub``, ``aud`` (the API's application id when the API's scope was asked for), ``scp``, ``azp``,
``ver``. :meth:`OidcProvider.mint` signs arbitrary claims with the same key (app-only tokens, say).

It listens twice: HTTPS (MSAL refuses an ``http:`` authority; a self-signed certificate for
127.0.0.1 whose SPKI hash :attr:`spki_sha256` lets Chromium trust exactly it) and plain HTTP on
:attr:`http_url`, which the API's JWKS fetch uses (Python's urllib would need the certificate too).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.stubs.tls import make_certificate, server_context

_GRAPH = "00000003-0000-0000-c000-000000000000"  # what Entra issues tokens for when no API scope is asked
_OIDC_SCOPES = {"openid", "profile", "email", "offline_access"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class User:
    email: str
    tenant: str
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    name: str = ""


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    scopes: list[str]
    nonce: str | None
    user: User


class OidcProvider:
    """Start with ``with OidcProvider(client_id=..., api_scope=..., audience=..., redirect_uris=[...]) as idp``."""

    def __init__(
        self,
        *,
        client_id: str,
        api_scope: str,
        audience: str,
        redirect_uris: list[str],
        default_tenant: str = "11111111-2222-3333-4444-555555555555",
        token_lifetime_s: int = 3600,
    ) -> None:
        self.client_id = client_id
        self.api_scope = api_scope  # e.g. api://folio-local/access_as_user
        self.audience = audience  # the API's application id: the `aud` of tokens for api_scope
        self.redirect_uris = list(redirect_uris)
        self.default_tenant = default_tenant
        self.token_lifetime_s = token_lifetime_s
        self.users: dict[str, User] = {}
        self.kid = uuid.uuid4().hex
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        self.token_requests: list[dict[str, str]] = []  # form bodies the token endpoint received
        self._tls_dir = tempfile.TemporaryDirectory(prefix="oidc-stub-")
        self._https = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("https"))
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("http"))
        self._https.socket = self._tls_context().wrap_socket(self._https.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._https.server_address[1]}"
        self.http_url = f"http://127.0.0.1:{self._http.server_address[1]}"

    # --- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> OidcProvider:
        for server in (self._https, self._http):
            threading.Thread(target=server.serve_forever, daemon=True, name="oidc-stub").start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self._https, self._http):
            server.shutdown()
            server.server_close()
        self._tls_dir.cleanup()

    # --- what tests use -------------------------------------------------------------------------

    @property
    def authority(self) -> str:
        """The multi-tenant authority, as ``https://login.microsoftonline.com/organizations``."""
        return f"{self.url}/organizations"

    @property
    def issuer_template(self) -> str:
        return f"{self.url}/{{tenantid}}/v2.0"

    @property
    def jwks_url(self) -> str:
        return f"{self.http_url}/organizations/discovery/v2.0/keys"

    def add_user(self, email: str, tenant: str | None = None, name: str = "") -> User:
        user = User(email=email.lower(), tenant=tenant or self.default_tenant, name=name or email.split("@")[0])
        self.users[user.email] = user
        return user

    def mint(self, claims: dict[str, Any]) -> str:
        """Sign ``claims`` (RS256, this provider's key and kid) as they are."""
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid, "typ": "JWT"})

    def access_token_for(self, user: User, scopes: list[str]) -> str:
        now = int(time.time())
        api = self.api_scope in scopes
        claims = {
            "iss": self.issuer_template.format(tenantid=user.tenant),
            "aud": self.audience if api else _GRAPH,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime_s,
            "tid": user.tenant,
            "oid": user.oid,
            "sub": _b64url(hashlib.sha256(f"{user.oid}:{self.audience}".encode()).digest()),
            "azp": self.client_id,
            "azpacr": "0",
            "scp": self.api_scope.rsplit("/", 1)[-1] if api else "openid profile User.Read",
            "name": user.name,
            "preferred_username": user.email,
            "ver": "2.0",
        }
        return self.mint(claims)

    @property
    def spki_sha256(self) -> str:
        """base64 SHA-256 of the certificate's public key, for Chromium's --ignore-certificate-errors-spki-list."""
        return self._spki

    # --- internals ------------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        cert_path, key_path = make_certificate(Path(self._tls_dir.name))
        spki = (
            x509.load_pem_x509_certificate(cert_path.read_bytes())
            .public_key()
            .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        self._spki = base64.b64encode(hashlib.sha256(spki).digest()).decode()
        return server_context(cert_path, key_path)

    def _metadata(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        return {
            "issuer": self.issuer_template if tenant in ("organizations", "common") else f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "token_endpoint_auth_methods_supported": ["none"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        user = grant.user
        claims = {
            "iss": self.issuer_template.format(tenantid=user.tenant),
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime_s,
            "tid": user.tenant,
            "oid": user.oid,
            "sub": _b64url(hashlib.sha256(f"{user.oid}:{self.client_id}".encode()).digest()),
            "name": user.name,
            "preferred_username": user.email,
            "nonce": grant.nonce,
            "ver": "2.0",
        }
        return self.mint({k: v for k, v in claims.items() if v is not None})

    def _tokens(self, grant: _Grant) -> dict[str, Any]:
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            self._refresh[refresh] = grant
        resource_scopes = [s for s in grant.scopes if s not in _OIDC_SCOPES] or [f"{_GRAPH}/User.Read"]
        return {
            "token_type": "Bearer",
            "scope": " ".join(resource_scopes),
            "expires_in": self.token_lifetime_s,
            "ext_expires_in": self.token_lifetime_s,
            "access_token": self.access_token_for(grant.user, grant.scopes),
            "refresh_token": refresh,
            "id_token": self._id_token(grant),
            "client_info": _b64url(json.dumps({"uid": grant.user.oid, "utid": grant.user.tenant}).encode()),
        }

    def _handler(self, scheme: str) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, document: dict[str, Any], extra: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(document).encode(), "application/json; charset=utf-8", extra)

            def _cors(self) -> dict[str, str]:
                origin = self.headers.get("Origin")
                allowed = {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in provider.redirect_uris}
                return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin in allowed else {}

            def do_OPTIONS(self) -> None:
                headers = self._cors()
                if headers:
                    headers |= {
                        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                        "Access-Control-Allow-Headers": self.headers.get("Access-Control-Request-Headers", ""),
                        "Access-Control-Max-Age": "600",
                    }
                self._send(204 if headers else 403, b"", "text/plain", headers)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                query = dict(parse_qsl(url.query))
                if url.path.endswith("/.well-known/openid-configuration"):
                    return self._json(
                        200, provider._metadata(parts[0]), self._cors() or {"Access-Control-Allow-Origin": "*"}
                    )
                if url.path.endswith("/discovery/v2.0/keys") or url.path.endswith("/discovery/keys"):
                    return self._json(200, provider._jwks(), {"Access-Control-Allow-Origin": "*"})
                if url.path.endswith("/oauth2/v2.0/authorize") and scheme == "https":
                    return self._authorize_page(query)
                if url.path.endswith("/oauth2/v2.0/logout"):
                    target = query.get("post_logout_redirect_uri", "")
                    if target and any(target.startswith(u.rstrip("/")) for u in provider.redirect_uris):
                        return self._send(302, b"", "text/plain", {"Location": target})
                    return self._send(200, b"<!doctype html><title>Signed out</title><p>Signed out.", "text/html")
                self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = dict(parse_qsl(body, keep_blank_values=True))
                path = urlsplit(self.path).path
                if path.endswith("/oauth2/v2.0/authorize") and scheme == "https":
                    return self._sign_in(form)
                if path.endswith("/oauth2/v2.0/token") and scheme == "https":
                    provider.token_requests.append(form)
                    return self._token(form)
                self._json(404, {"error": "not_found"})

            # --- authorization endpoint -------------------------------------------------------

            def _request_error(self, message: str) -> None:
                page = f"<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p>{html.escape(message)}"
                self._send(400, page.encode(), "text/html; charset=utf-8")

            def _check_request(self, params: dict[str, str]) -> str | None:
                if params.get("client_id") != provider.client_id:
                    return "AADSTS700016: unknown client_id."
                if params.get("redirect_uri") not in provider.redirect_uris:
                    return "AADSTS50011: the redirect URI is not registered for this application."
                if params.get("response_type") != "code":
                    return "AADSTS700054: response_type must be 'code'."
                if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
                    return "AADSTS9002325: Proof Key for Code Exchange (S256) is required."
                return None

            def _authorize_page(self, params: dict[str, str]) -> None:
                problem = self._check_request(params)
                if problem:
                    return self._request_error(problem)
                hidden = "".join(
                    f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
                )
                hint = html.escape(params.get("login_hint", ""))
                page = (
                    "<!doctype html><html lang=en><title>Sign in to your account</title>"
                    "<h1>Sign in</h1><p>Local OpenID Connect provider (test stand-in for Microsoft Entra ID).</p>"
                    f'<form method="post"><label for="email">Email</label>'
                    f'<input id="email" name="login" type="email" value="{hint}" required>{hidden}'
                    '<button type="submit">Next</button>'
                    '<button type="submit" name="cancel" value="1" formnovalidate>Cancel</button></form></html>'
                )
                self._send(200, page.encode(), "text/html; charset=utf-8")

            def _sign_in(self, form: dict[str, str]) -> None:
                problem = self._check_request(form)
                if problem:
                    return self._request_error(problem)
                separator = "?" if form.get("response_mode") == "query" else "#"
                if form.get("cancel"):  # the user backs out: the error goes back to the app, as Entra sends it
                    declined = {
                        "error": "access_denied",
                        "error_description": "AADSTS65004: User declined to consent to access the app.",
                        "state": form.get("state", ""),
                    }
                    location = form["redirect_uri"] + separator + urlencode(declined)
                    return self._send(302, b"", "text/plain", {"Location": location})
                email = form.get("login", "").strip().lower()
                if "@" not in email:
                    return self._request_error("Enter an email address.")
                user = provider.users.get(email) or provider.add_user(email)
                code = secrets.token_urlsafe(32)
                with provider._lock:
                    provider._codes[code] = _Grant(
                        client_id=form["client_id"],
                        redirect_uri=form["redirect_uri"],
                        challenge=form["code_challenge"],
                        scopes=form.get("scope", "").split(),
                        nonce=form.get("nonce"),
                        user=user,
                    )
                answer = {"code": code, "state": form.get("state", "")}
                answer["client_info"] = _b64url(json.dumps({"uid": user.oid, "utid": user.tenant}).encode())
                self._send(302, b"", "text/plain", {"Location": form["redirect_uri"] + separator + urlencode(answer)})

            # --- token endpoint ---------------------------------------------------------------

            def _token(self, form: dict[str, str]) -> None:
                cors = self._cors()

                def refuse(error: str, description: str) -> None:
                    self._json(400, {"error": error, "error_description": description}, cors)

                if form.get("client_id") != provider.client_id:
                    return refuse("invalid_client", "AADSTS700016: unknown client_id.")
                grant_type = form.get("grant_type")
                if grant_type == "authorization_code":
                    with provider._lock:
                        grant = provider._codes.pop(form.get("code", ""), None)  # single use
                    if grant is None:
                        return refuse("invalid_grant", "AADSTS70008: the code is unknown, used or expired.")
                    if form.get("redirect_uri") != grant.redirect_uri:
                        return refuse("invalid_grant", "AADSTS50148: redirect_uri differs from the authorize request.")
                    verifier = form.get("code_verifier", "")
                    if _b64url(hashlib.sha256(verifier.encode()).digest()) != grant.challenge:
                        return refuse("invalid_grant", "AADSTS501481: the code_verifier does not match the challenge.")
                    origin = self.headers.get("Origin")
                    redirect = urlsplit(grant.redirect_uri)
                    if origin != f"{redirect.scheme}://{redirect.netloc}":
                        return refuse(
                            "invalid_request",
                            "AADSTS9002327: tokens for single-page applications are redeemed cross-origin only.",
                        )
                elif grant_type == "refresh_token":
                    with provider._lock:  # like Entra, a used refresh token stays valid until it expires
                        grant = provider._refresh.get(form.get("refresh_token", ""))
                    if grant is None:
                        return refuse("invalid_grant", "AADSTS700082: the refresh token is unknown or used.")
                    requested = form.get("scope", "").split()
                    if requested:
                        grant = _Grant(**{**grant.__dict__, "scopes": requested})
                else:
                    return refuse("unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")
                self._json(200, provider._tokens(grant), cors)

        return Handler
