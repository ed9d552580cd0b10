"""Authentication over real HTTP: Entra bearer tokens against a local JWKS (one tenant and any tenant),
app-only tokens refused, the principal header (local dev only), API keys."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.helpers import Client

TENANT = "11111111-2222-3333-4444-555555555555"
AUDIENCE = "api://folio-test"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


class Jwks:
    """A local JWKS endpoint whose key set tests can rotate; counts fetches."""

    default: tuple[str, Any]  # (kid, private key) of the key the module's tests sign with

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps(
                    {
                        "keys": [
                            {
                                **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                                "kid": kid,
                                "use": "sig",
                                "alg": "RS256",
                            }
                            for kid, k in jwks.keys.items()
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/discovery/v2.0/keys"

    def add_key(self) -> tuple[str, Any]:
        kid = uuid.uuid4().hex
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        return kid, key


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    server.default = server.add_key()
    yield server
    server.server.shutdown()


@pytest.fixture
def entra(jwks: Jwks, settings_override: Any) -> Jwks:
    settings_override(AUTH_ENTRA_TENANT_ID=TENANT, AUTH_AUDIENCE=AUDIENCE, AUTH_JWKS_URL=jwks.url)
    return jwks


def _token(kid: str, key: Any, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "tid": TENANT,
        "oid": str(uuid.uuid4()),
        "preferred_username": "dana@contoso.com",
        "name": "Dana",
        "scp": "access_as_user",
        "azp": "00000000-0000-0000-0000-00000000c11e",
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _bearer(client: Client, token: str) -> Client:
    return client.with_headers(authorization=f"Bearer {token}")


def test_valid_entra_token_signs_the_user_in(client: Client, entra: Jwks) -> None:
    kid, key = entra.default
    response = _bearer(client, _token(kid, key)).get("/api/me")
    assert response.status == 200, response.body
    me = response.json()
    assert me["user"]["email"] == "dana@contoso.com" and me["role"] == "owner"


def test_same_oid_is_the_same_user_across_tokens(client: Client, entra: Jwks) -> None:
    kid, key = entra.default
    oid = str(uuid.uuid4())
    first = _bearer(client, _token(kid, key, oid=oid)).get("/api/me").json()
    second = _bearer(client, _token(kid, key, oid=oid, name="Dana R.")).get("/api/me").json()
    assert first["user"]["id"] == second["user"]["id"] and first["tenant"] == second["tenant"]


@pytest.mark.parametrize(
    "overrides, detail",
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"aud": "api://someone-else"}, "audience"),
        ({"iss": "https://login.microsoftonline.com/other/v2.0"}, "issuer"),
        ({"exp": None}, "invalid"),
        ({"oid": None, "sub": None}, "does not identify"),
    ],
)
def test_bad_tokens_are_401(client: Client, entra: Jwks, overrides: dict[str, Any], detail: str) -> None:
    kid, key = entra.default
    response = _bearer(client, _token(kid, key, **overrides)).get("/api/me")
    assert response.status == 401
    assert detail in response.json()["detail"]


OTHER_TENANT = "66666666-7777-8888-9999-000000000000"
MULTI_ISSUER = "https://login.microsoftonline.com/{tenantid}/v2.0"


@pytest.fixture
def any_tenant(jwks: Jwks, settings_override: Any) -> Jwks:
    """The multi-tenant configuration: AUTH_ENTRA_TENANT_ID unset (organizations), Entra's issuer template."""
    settings_override(AUTH_ENTRA_TENANT_ID="", AUTH_AUDIENCE=AUDIENCE, AUTH_JWKS_URL=jwks.url, AUTH_ALLOWED_TENANTS="")
    return jwks


def _issued_in(tenant: str) -> dict[str, Any]:
    return {"tid": tenant, "iss": MULTI_ISSUER.format(tenantid=tenant)}


def test_users_of_any_work_tenant_sign_in_and_stay_apart(client: Client, any_tenant: Jwks) -> None:
    kid, key = any_tenant.default
    oid = str(uuid.uuid4())  # the same object id in two tenants is two people
    first = _bearer(client, _token(kid, key, oid=oid, **_issued_in(TENANT))).get("/api/me")
    second = _bearer(client, _token(kid, key, oid=oid, **_issued_in(OTHER_TENANT))).get("/api/me")
    assert first.status == 200 and second.status == 200, (first.body, second.body)
    assert first.json()["user"]["id"] != second.json()["user"]["id"]
    assert first.json()["tenant"]["id"] != second.json()["tenant"]["id"]


@pytest.mark.parametrize(
    "claims, detail",
    [
        # issued by one tenant's issuer, claiming another tenant
        ({"tid": OTHER_TENANT, "iss": MULTI_ISSUER.format(tenantid=TENANT)}, "issuer"),
        ({"tid": None, "iss": MULTI_ISSUER.format(tenantid=TENANT)}, "tenant"),
        ({"tid": "{tenantid}", "iss": MULTI_ISSUER}, "tenant"),
        ({"tid": TENANT, "iss": f"https://sts.example.com/{TENANT}/v2.0"}, "issuer"),
        (_issued_in("9188040d-6c67-4c5b-b112-36a304b66dad"), "Personal Microsoft accounts"),
    ],
)
def test_multi_tenant_issuer_is_checked_against_the_tokens_own_tenant(
    client: Client, any_tenant: Jwks, claims: dict[str, Any], detail: str
) -> None:
    kid, key = any_tenant.default
    response = _bearer(client, _token(kid, key, **claims)).get("/api/me")
    assert response.status == 401 and detail in response.json()["detail"], response.body


def test_tenant_allow_list_admits_only_listed_tenants(client: Client, any_tenant: Jwks, settings_override: Any) -> None:
    settings_override(AUTH_ALLOWED_TENANTS=f" {TENANT.upper()} ,")
    kid, key = any_tenant.default
    assert _bearer(client, _token(kid, key, **_issued_in(TENANT))).get("/api/me").status == 200
    refused = _bearer(client, _token(kid, key, **_issued_in(OTHER_TENANT))).get("/api/me")
    assert refused.status == 401 and "not allowed" in refused.json()["detail"]


def test_single_tenant_setting_refuses_other_tenants(client: Client, entra: Jwks, settings_override: Any) -> None:
    settings_override(AUTH_ISSUER=MULTI_ISSUER)  # even with the template, AUTH_ENTRA_TENANT_ID pins one tenant
    kid, key = entra.default
    assert _bearer(client, _token(kid, key, **_issued_in(TENANT))).get("/api/me").status == 200
    assert _bearer(client, _token(kid, key, **_issued_in(OTHER_TENANT))).get("/api/me").status == 401


@pytest.mark.parametrize(
    "claims",
    [
        {"idtyp": "app", "scp": None, "roles": ["Folio.Read"]},  # client credentials, with the idtyp claim
        {"scp": None},  # client credentials without app roles: neither scp nor roles
        {"scp": None, "roles": ["Folio.Read"]},  # app roles but no delegated scope
        {"idtyp": "app"},  # says app even with a scope
        {"scp": " "},
    ],
)
def test_app_only_tokens_are_401(client: Client, entra: Jwks, claims: dict[str, Any]) -> None:
    kid, key = entra.default
    response = _bearer(client, _token(kid, key, oid=str(uuid.uuid4()), **claims)).get("/api/me")
    assert response.status == 401 and "App-only" in response.json()["detail"], response.body


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"AUTH_ENTRA_TENANT_ID": "contoso.com"}, "GUID"),
        ({"AUTH_ENTRA_TENANT_ID": TENANT, "AUTH_ALLOWED_TENANTS": OTHER_TENANT}, "nobody could sign in"),
        ({"AUTH_ALLOWED_TENANTS": "contoso"}, "not tenant ids"),
        ({"AUTH_AUDIENCE": ""}, "AUTH_AUDIENCE"),
    ],
)
def test_bad_tenant_settings_fail_with_the_setting_named(settings: dict[str, str], message: str) -> None:
    from shared.config import load_settings
    from shared.errors import ConfigError
    from shared.identity.entra import EntraTokenValidator

    with pytest.raises(ConfigError, match=message):
        EntraTokenValidator.from_settings(load_settings({"AUTH_AUDIENCE": AUDIENCE, **settings}))


def test_token_signed_by_another_key_with_a_known_kid_is_401(client: Client, entra: Jwks) -> None:
    kid, _key = entra.default
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _bearer(client, _token(kid, forger)).get("/api/me").status == 401


def test_alg_none_and_hs256_tokens_are_rejected(client: Client, entra: Jwks) -> None:
    kid, _ = entra.default
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": kid}).encode()).rstrip(b"=").decode()
    payload = (
        base64.urlsafe_b64encode(
            json.dumps({"iss": ISSUER, "aud": AUDIENCE, "oid": "x", "exp": int(time.time()) + 60}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    assert _bearer(client, f"{header}.{payload}.").get("/api/me").status == 401
    hs = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "oid": "x", "exp": int(time.time()) + 60},
        "secret" * 8,
        algorithm="HS256",
        headers={"kid": kid},
    )
    assert _bearer(client, hs).get("/api/me").status == 401


def test_garbage_bearer_token_is_401(client: Client, entra: Jwks) -> None:
    assert _bearer(client, "not.a.jwt").get("/api/me").status == 401


def test_signing_key_rotation_is_picked_up_on_unknown_kid(client: Client, entra: Jwks) -> None:
    kid, key = entra.default
    assert _bearer(client, _token(kid, key)).get("/api/me").status == 200
    fetches = entra.fetches
    new_kid, new_key = entra.add_key()  # published after the cache was filled
    _let_rate_limiter_allow_a_refresh()
    assert _bearer(client, _token(new_kid, new_key)).get("/api/me").status == 200
    assert entra.fetches == fetches + 1
    # Known keys are served from the cache: no fetch per request.
    assert _bearer(client, _token(new_kid, new_key)).get("/api/me").status == 200
    assert entra.fetches == fetches + 1


def test_unknown_kid_floods_do_not_hammer_the_identity_provider(client: Client, entra: Jwks) -> None:
    kid, key = entra.default
    assert _bearer(client, _token(kid, key)).get("/api/me").status == 200
    fetches = entra.fetches
    for _ in range(5):
        assert _bearer(client, _token(uuid.uuid4().hex, key)).get("/api/me").status == 401
    assert entra.fetches <= fetches + 1


def _let_rate_limiter_allow_a_refresh() -> None:
    """Refreshes are limited to one per 30 s; pretend that much time has passed."""
    import importlib

    auth_module = importlib.import_module("shared.identity.authenticate")
    for validator in auth_module._validators.values():
        validator._jwks._last_refresh = float("-inf")


# --- Static Web Apps principal header --------------------------------------------------------


def test_forged_swa_header_is_401_when_swa_trust_is_off(client: Client, settings_override: Any) -> None:
    settings_override(FOLIO_DEV_MODE="false")
    response = client.as_user("mallory").get("/api/me")
    assert response.status == 401
    assert "not trusted" in response.json()["detail"]


def test_swa_header_is_trusted_in_dev_mode(client: Client, settings_override: Any) -> None:
    settings_override(FOLIO_DEV_MODE="true")
    assert client.as_user(f"dev-{uuid.uuid4().hex[:6]}").get("/api/me").status == 200


def test_swa_header_is_401_on_azure_even_in_dev_mode(client: Client, settings_override: Any) -> None:
    """Azure sets WEBSITE_SITE_NAME on every function app: a deployment with FOLIO_DEV_MODE=true by mistake
    still refuses the forgeable header."""
    settings_override(FOLIO_DEV_MODE="true", WEBSITE_SITE_NAME="folio-prod-func")
    response = client.as_user(f"dev-{uuid.uuid4().hex[:6]}").get("/api/me")
    assert response.status == 401 and "not trusted" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "%%%not-base64%%%",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b'["a list"]').decode(),
        base64.b64encode(json.dumps({"identityProvider": "aad", "userRoles": ["authenticated"]}).encode()).decode(),
        base64.b64encode(
            json.dumps({"identityProvider": "aad", "userId": "x", "userRoles": ["anonymous"]}).encode()
        ).decode(),
        base64.b64encode(b"[" * 5000).decode(),  # nested too deeply for the JSON parser
        base64.b64encode(
            json.dumps(
                {
                    "identityProvider": "aad",
                    "userId": "x",
                    "userDetails": "eve\u0000@example.com",
                    "userRoles": ["authenticated"],
                }
            ).encode()
        ).decode(),
        base64.b64encode(
            json.dumps(
                {
                    "identityProvider": "aad",
                    "userId": "x",
                    "userDetails": "\u202egro.example@eve",
                    "userRoles": ["authenticated"],
                }
            ).encode()
        ).decode(),
        base64.b64encode(
            json.dumps({"identityProvider": "aad", "userId": "x" * 513, "userRoles": ["authenticated"]}).encode()
        ).decode(),
    ],
)
def test_malformed_swa_header_is_401(client: Client, header: str) -> None:
    assert client.with_headers(**{"x-ms-client-principal": header}).get("/api/me").status == 401


def test_unsupported_authorization_scheme_is_401(client: Client) -> None:
    assert client.with_headers(authorization="Basic dXNlcjpwYXNz").get("/api/me").status == 401


# --- API keys --------------------------------------------------------------------------------


def _owner(client: Client) -> Client:
    return client.as_user(f"owner-{uuid.uuid4().hex[:8]}")


def test_api_key_is_shown_once_and_authenticates_in_its_workspace(client: Client) -> None:
    owner = _owner(client)
    tenant = owner.get("/api/me").json()["tenant"]["id"]
    created = owner.post("/api/apikeys", {"name": "ci", "role": "member"})
    assert created.status == 201
    key = created.json()["key"]
    listed = owner.get("/api/apikeys").json()["apiKeys"]
    assert [k["name"] for k in listed] == ["ci"] and "key" not in listed[0]

    robot = client.with_headers(authorization=f"ApiKey {key}")
    me = robot.get("/api/me").json()
    assert me["tenant"]["id"] == tenant and me["actor"]["type"] == "api_key" and me["role"] == "member"
    assert robot.post("/api/collections", {"name": "made by ci"}).status == 201
    audit = owner.get("/api/audit").json()["entries"]
    assert audit[0]["actor"] == {"type": "api_key", "id": created.json()["id"]}


def test_api_key_hash_not_key_is_stored(client: Client, admin_conn: Any) -> None:
    owner = _owner(client)
    created = owner.post("/api/apikeys", {"name": "stored"}).json()
    row = admin_conn.execute("SELECT * FROM api_keys WHERE key_id = %s", (created["id"],)).fetchone()
    secret = created["key"].split("_", 3)[3]  # the secret itself may contain "_" (url-safe base64)
    assert secret.encode() not in bytes(row["secret_hash"]) and len(bytes(row["secret_hash"])) == 32
    assert all(secret not in str(v) for v in row.values())


def test_revoked_tampered_and_malformed_api_keys_are_401(client: Client) -> None:
    owner = _owner(client)
    created = owner.post("/api/apikeys", {"name": "temp"}).json()
    key = created["key"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert client.with_headers(authorization=f"ApiKey {tampered}").get("/api/me").status == 401
    assert client.with_headers(authorization="ApiKey folio_nope").get("/api/me").status == 401
    assert owner.delete(f"/api/apikeys/{created['id']}").status == 204
    assert client.with_headers(authorization=f"ApiKey {key}").get("/api/me").status == 401


def test_api_key_cannot_be_used_against_another_workspace(client: Client) -> None:
    a, b = _owner(client), _owner(client)
    key = a.post("/api/apikeys", {"name": "a"}).json()["key"]
    b_tenant = b.get("/api/me").json()["tenant"]["id"]
    _, _tenant_hex, key_hex, secret = key.split("_", 3)
    forged = f"folio_{uuid.UUID(b_tenant).hex}_{key_hex}_{secret}"
    assert client.with_headers(authorization=f"ApiKey {forged}").get("/api/me").status == 401


def test_viewer_key_cannot_write_and_only_owners_manage_keys(client: Client) -> None:
    owner = _owner(client)
    viewer_key = owner.post("/api/apikeys", {"name": "reader", "role": "viewer"}).json()["key"]
    reader = client.with_headers(authorization=f"ApiKey {viewer_key}")
    assert reader.get("/api/collections").status == 200
    assert reader.post("/api/collections", {"name": "nope"}).status == 403
    assert reader.post("/api/apikeys", {"name": "escalate", "role": "member"}).status == 403
    assert owner.post("/api/apikeys", {"name": "boss", "role": "owner"}).status == 400


@pytest.mark.parametrize(
    "claims, email, verified",
    [
        ({"upn": "ann@contoso.com", "email": "x@evil.example"}, "ann@contoso.com", True),
        ({"email": "ann@contoso.com", "xms_edov": True}, "ann@contoso.com", True),
        ({"email": "ann@contoso.com"}, "ann@contoso.com", False),
        ({"preferred_username": "ann@contoso.com"}, "ann@contoso.com", False),
    ],
)
def test_only_directory_or_verified_emails_count_as_verified(
    claims: dict[str, Any], email: str, verified: bool
) -> None:
    from shared.identity.entra import _principal

    principal = _principal({"oid": "o", "tid": TENANT, **claims})
    assert (principal.email, principal.email_verified) == (email, verified)
