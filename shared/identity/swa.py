"""The Static Web Apps `x-ms-client-principal` header: base64 JSON set by SWA after sign-in."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from shared.errors import Invalid, Unauthenticated
from shared.identity.principal import Principal
from shared.validation import check_text

HEADER = "x-ms-client-principal"
_GROUP_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MAX_HEADER = 16_384
_MAX_FIELD = 512


def parse_client_principal(value: str) -> Principal:
    """Decode the header; anything malformed is a 401, never a guess."""
    if len(value) > _MAX_HEADER:
        raise Unauthenticated("The client principal header is too large.")
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise Unauthenticated("The client principal header is not valid base64 JSON.") from None
    if not isinstance(data, dict):
        raise Unauthenticated("The client principal header is not a JSON object.")
    provider, user_id = data.get("identityProvider"), data.get("userId")
    roles = data.get("userRoles") or []
    if not (isinstance(provider, str) and provider and isinstance(user_id, str) and user_id):
        raise Unauthenticated("The client principal header lacks identityProvider or userId.")
    if not isinstance(roles, list) or "authenticated" not in roles:
        raise Unauthenticated("The client principal is not authenticated.")
    details = data.get("userDetails")
    details = details if isinstance(details, str) and details else None
    email = details if details and "@" in details else _claim(data, "email", "preferred_username")
    name = _claim(data, "name") or details
    for text in (provider, user_id, details, email, name):
        _check_field(text)
    # With the Entra ID provider, userDetails is the directory's UPN; other providers (GitHub, X,
    # custom OpenID Connect) give a handle or an address they may not have verified.
    verified = provider.lower() in ("aad", "azureactivedirectory") and bool(details and email == details)
    groups = _groups(data)
    return Principal(
        idp=f"swa:{provider.lower()}",
        subject=user_id,
        email=email,
        name=name,
        email_verified=verified,
        groups=groups if groups is not None else frozenset(),
        groups_overage=groups is None,
    )


def _groups(data: dict[str, Any]) -> frozenset[str] | None:
    """Entra group object ids among the claims (one ``groups`` claim each); None for a group overage.

    Overage, as Entra marks it in the token these claims come from: a ``_claim_names`` claim naming
    ``groups``, ``hasgroups`` true, or more than Entra's 200 groups.
    """
    claims = data.get("claims")
    if not isinstance(claims, list):
        return frozenset()
    claims = [c for c in claims if isinstance(c, dict)]
    values = [c.get("val") for c in claims if c.get("typ") == "groups"]
    for claim in claims:
        value = claim.get("val")
        if claim.get("typ") == "_claim_names" and isinstance(value, str) and '"groups"' in value:
            return None
        if claim.get("typ") == "hasgroups" and value == "true":
            return None
    if len(values) > 200:
        return None
    return frozenset(v.lower() for v in values if isinstance(v, str) and _GROUP_ID.match(v.lower()))


def _check_field(text: str | None) -> None:
    """Identity text is stored and shown to other members: no control or bidi characters, bounded."""
    if text is None:
        return
    if len(text) > _MAX_FIELD:
        raise Unauthenticated("The client principal header holds an over-long value.")
    try:
        check_text("principal", text, single_line=True)
    except Invalid:
        raise Unauthenticated("The client principal header holds control characters.") from None


def _claim(data: dict[str, Any], *types: str) -> str | None:
    claims = data.get("claims")
    if not isinstance(claims, list):
        return None
    for wanted in types:
        for claim in claims:
            value = claim.get("val") if isinstance(claim, dict) else None
            if isinstance(value, str) and claim.get("typ") == wanted:
                return value
    return None
