"""Validation of Entra ID access tokens: signature against the tenant's JWKS, issuer, audience, expiry."""

from __future__ import annotations

import json
import logging
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


class EntraTokenValidator:
    """Turns a bearer token into a :class:`Principal`, or raises :class:`Unauthenticated`."""

    def __init__(self, *, issuer: str, audience: str, jwks: JwksCache, leeway_s: int = 120) -> None:
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwks
        self._leeway = leeway_s

    @classmethod
    def from_settings(cls, settings: Any) -> EntraTokenValidator:
        tenant = settings.auth_entra_tenant_id
        audience = settings.auth_audience
        if not audience or not (tenant or (settings.auth_issuer and settings.auth_jwks_url)):
            raise ConfigError(
                "Bearer tokens need AUTH_AUDIENCE and AUTH_ENTRA_TENANT_ID (or AUTH_ISSUER and AUTH_JWKS_URL); "
                "set them in local.settings.json, the environment or App Configuration."
            )
        issuer = settings.auth_issuer or f"https://login.microsoftonline.com/{tenant}/v2.0"
        jwks_url = settings.auth_jwks_url or f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
        return cls(issuer=issuer, audience=audience, jwks=JwksCache(jwks_url), leeway_s=settings.auth_clock_skew_s)

    def validate(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is malformed.") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in _ALGORITHMS:
            raise Unauthenticated("The bearer token has an unsupported header.")
        try:
            claims = jwt.decode(
                token,
                self._jwks.key(kid),
                algorithms=_ALGORITHMS,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The bearer token has expired.") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The bearer token is not for this API (audience).") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The bearer token comes from an untrusted issuer.") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The bearer token is invalid.") from None
        return _principal(claims)


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
    return Principal(idp=f"entra:{tenant}", subject=subject, email=email, name=name, email_verified=verified)
