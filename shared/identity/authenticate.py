"""Turn request headers into a principal: Entra bearer token, API key, or (local dev only) the principal header."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.errors import Unauthenticated
from shared.identity import apikeys
from shared.identity.principal import ApiKeyCredential, Principal
from shared.identity.swa import HEADER as SWA_HEADER
from shared.identity.swa import parse_client_principal

if TYPE_CHECKING:
    from shared.identity.entra import EntraTokenValidator

_validator_lock = threading.Lock()
_validators: dict[tuple[Any, ...], EntraTokenValidator] = {}


def _validator(settings: Settings) -> EntraTokenValidator:
    # PyJWT and cryptography load on the first bearer token, not on every cold start.
    from shared.identity.entra import EntraTokenValidator

    key = (
        settings.auth_entra_tenant_id,
        settings.auth_allowed_tenants,
        settings.auth_audience,
        settings.auth_issuer,
        settings.auth_jwks_url,
    )
    with _validator_lock:
        if key not in _validators:  # one JWKS cache per configuration, kept across requests
            _validators[key] = EntraTokenValidator.from_settings(settings)
        return _validators[key]


def authenticate(headers: Mapping[str, str], settings: Settings) -> Principal | ApiKeyCredential:
    """Identify the caller from ``headers`` (case-insensitive mapping)."""
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            if not settings.auth_audience:  # no Entra app registration configured: not a server error
                raise Unauthenticated("This deployment does not accept bearer tokens; sign in through the web app.")
            return _validator(settings).validate(value)
        if scheme.lower() == "apikey" and value:
            return apikeys.parse(value)
        raise Unauthenticated("Unsupported Authorization header; use 'Bearer <token>' or 'ApiKey <key>'.")
    swa = headers.get(SWA_HEADER)
    if swa is not None:
        if not trusts_client_principal(settings):
            # The API is reached directly (no Static Web Apps in front): anyone could forge this header.
            raise Unauthenticated("The client principal header is not trusted by this deployment.")
        return parse_client_principal(swa)
    raise Unauthenticated("Sign in, or send 'Authorization: Bearer <token>' or 'ApiKey <key>'.")


def trusts_client_principal(settings: Settings) -> bool:
    """The ``x-ms-client-principal`` header is the local dev sign-in: trusted in dev mode, never in Azure.

    ``WEBSITE_SITE_NAME`` is set by Azure on every function app, so even a deployment configured with
    ``FOLIO_DEV_MODE=true`` by mistake answers the header with a 401.
    """
    if settings.azure_site_name:
        return False
    return settings.dev_mode
