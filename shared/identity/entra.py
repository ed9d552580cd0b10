"""Validation of Entra ID access tokens: signature, issuer of the token's own tenant, audience, expiry, user.

Folio is multi-tenant: any work or school tenant may sign in (optionally only those on an
allow-list). Entra's multi-tenant metadata names the issuer ``https://login.microsoftonline.com/
{tenantid}/v2.0``; a token is accepted only when its ``iss`` is that template filled in with the
token's own ``tid``, so a token cannot claim one tenant and be issued by another. App-only tokens
(client credentials: ``idtyp=app``, or no delegated ``scp``) are refused: Folio's callers are people.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import jwt

from shared.errors import ConfigError, Unauthenticated, Unavailable
from shared.identity.principal import Principal

_log = logging.getLogger(__name__)

# Entra signs access tokens with RS256; accepting anything else invites algorithm confusion.
_ALGORITHMS = ["RS256"]


def _fetch_json(url: str, timeout_s: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        document = json.loads(response.read(1_000_000))
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer with a JSON object")
    return document


class JwksCache:
    """Signing keys by ``kid``, fetched lazily and refreshed when an unknown ``kid`` shows up.

    Refreshes are rate-limited so a stream of tokens with made-up ``kid`` values cannot turn
    into a stream of requests to the identity provider.
    """

    def __init__(
        self, url: str, *, min_refresh_interval_s: float = 30.0, fetch: Callable[[str], dict[str, Any]] = _fetch_json
    ) -> None:
        self._url = url
        self._fetch = fetch
        self._min_interval = min_refresh_interval_s
        self._keys: dict[str, Any] = {}
        self._last_refresh = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any:
        found = self._keys.get(kid)
        if found is not None:
            return found
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._last_refresh >= self._min_interval:
                self._refresh()
        found = self._keys.get(kid)
        if found is None:
            raise Unauthenticated("The token was signed with an unknown key.")
        return found

    def _refresh(self) -> None:
        self._last_refresh = time.monotonic()
        try:
            document = self._fetch(self._url)
            keys = jwt.PyJWKSet.from_dict(document).keys
        except Exception as exc:
            _log.warning("JWKS refresh failed: %s", type(exc).__name__)
            if not self._keys:
                raise Unavailable("Cannot reach the identity provider to validate tokens.") from exc
            return
        self._keys = {k.key_id: k.key for k in keys if k.key_id}


# The tenant of personal Microsoft accounts: Folio takes work and school accounts only.
_CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
_MULTI_TENANT = ("organizations", "common")
_TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ENTRA_ISSUER = "https://login.microsoftonline.com/{tenantid}/v2.0"


class EntraTokenValidator:
    """Turns a bearer token into a :class:`Principal`, or raises :class:`Unauthenticated`.

    ``issuer`` may hold ``{tenantid}``, filled in with the token's ``tid`` before it is compared;
    ``allowed_tenants`` (empty: any) lists the tenants whose users may sign in.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        leeway_s: int = 120,
        allowed_tenants: frozenset[str] = frozenset(),
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwks
        self._leeway = leeway_s
        self._allowed_tenants = frozenset(t.lower() for t in allowed_tenants)

    @classmethod
    def from_settings(cls, settings: Any) -> EntraTokenValidator:
        audience = settings.auth_audience
        if not audience:
            raise ConfigError(
                "Bearer tokens need AUTH_AUDIENCE (the API's application id); set it in local.settings.json, "
                "the environment or App Configuration."
            )
        tenant = (settings.auth_entra_tenant_id or "organizations").strip().lower()
        allowed = frozenset(t.strip().lower() for t in (settings.auth_allowed_tenants or "").split(",") if t.strip())
        if tenant not in _MULTI_TENANT:
            if not _TENANT_ID.match(tenant):
                raise ConfigError("AUTH_ENTRA_TENANT_ID must be 'organizations' or a tenant id (a GUID).")
            allowed = allowed & {tenant} if allowed else frozenset({tenant})
            if not allowed:
                raise ConfigError("AUTH_ALLOWED_TENANTS does not include AUTH_ENTRA_TENANT_ID: nobody could sign in.")
        bad = sorted(t for t in allowed if not _TENANT_ID.match(t))
        if bad:
            raise ConfigError(f"AUTH_ALLOWED_TENANTS holds values that are not tenant ids: {', '.join(bad)}")
        issuer = settings.auth_issuer or ENTRA_ISSUER
        jwks_url = settings.auth_jwks_url or f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
        return cls(
            issuer=issuer,
            audience=audience,
            jwks=JwksCache(jwks_url),
            leeway_s=settings.auth_clock_skew_s,
            allowed_tenants=allowed,
        )

    def validate(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is malformed.") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in _ALGORITHMS:
            raise Unauthenticated("The bearer token has an unsupported header.")
        try:
            # The issuer depends on the token's tenant, so it is checked below, after the signature.
            claims = jwt.decode(
                token,
                self._jwks.key(kid),
                algorithms=_ALGORITHMS,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"], "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The bearer token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The bearer token is not for this API (audience).") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is invalid.") from None
        self._check_tenant_and_issuer(claims)
        _refuse_app_only(claims)
        return _principal(claims)

    def _check_tenant_and_issuer(self, claims: dict[str, Any]) -> None:
        tid = claims.get("tid")
        if not isinstance(tid, str) or not _TENANT_ID.match(tid.lower()):
            raise Unauthenticated("The bearer token does not name its tenant (tid).")
        tid = tid.lower()
        if claims.get("iss") != self._issuer.replace("{tenantid}", tid):
            raise Unauthenticated("The bearer token comes from an untrusted issuer.")
        if tid == _CONSUMER_TENANT:
            raise Unauthenticated("Personal Microsoft accounts cannot sign in; use a work or school account.")
        if self._allowed_tenants and tid not in self._allowed_tenants:
            raise Unauthenticated("Your organisation's tenant is not allowed to use this deployment.")


def _refuse_app_only(claims: dict[str, Any]) -> None:
    """A token an application got for itself (client credentials) names no user: ``idtyp=app``, no ``scp``."""
    scopes = claims.get("scp")
    if claims.get("idtyp") == "app" or not isinstance(scopes, str) or not scopes.strip():
        raise Unauthenticated("App-only tokens are not accepted; sign in as a user (a delegated token with scp).")


def _principal(claims: dict[str, Any]) -> Principal:
    # `oid` is the user's object id, stable across applications; `sub` is per application.
    subject = claims.get("oid") or claims.get("sub")
    tenant = claims.get("tid") or "unknown"
    if not isinstance(subject, str) or not subject:
        raise Unauthenticated("The bearer token does not identify a user.")
    # The UPN is assigned by the directory; the optional `email` claim counts as verified only
    # with `xms_edov` (email domain owner verified). `preferred_username` is display only.
    email, verified = None, False
    if isinstance(claims.get("upn"), str):
        email, verified = claims["upn"], True
    elif isinstance(claims.get("email"), str):
        email, verified = claims["email"], claims.get("xms_edov") is True
    elif isinstance(claims.get("preferred_username"), str):
        email = claims["preferred_username"]
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    groups, overage = token_groups(claims)
    return Principal(
        idp=f"entra:{tenant}",
        subject=subject,
        email=email,
        name=name,
        email_verified=verified,
        groups=groups,
        groups_overage=overage,
    )


MAX_GROUPS = 200  # Entra puts at most 200 groups into a JWT; more is an overage


def token_groups(claims: dict[str, Any]) -> tuple[frozenset[str], bool]:
    """The token's security group object ids, and whether it had too many to carry (group overage).

    With an overage Entra leaves ``groups`` out and names a Microsoft Graph source in ``_claim_names``
    (or sets ``hasgroups``); Folio does not call Graph, so such a caller has no groups (fail closed).
    Values that are not object ids (on-premises names, if the app registration emits them) are ignored.
    """
    names = claims.get("_claim_names")
    if (isinstance(names, dict) and "groups" in names) or claims.get("hasgroups") is True:
        return frozenset(), True
    raw = claims.get("groups")
    if not isinstance(raw, list):
        return frozenset(), False
    if len(raw) > MAX_GROUPS:
        return frozenset(), True
    return frozenset(g.lower() for g in raw if isinstance(g, str) and _TENANT_ID.match(g.lower())), False
