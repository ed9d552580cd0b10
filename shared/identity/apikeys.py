"""Workspace API keys: format, generation and hashing. Stored hashed; the key is shown once."""

from __future__ import annotations

import hashlib
import re
import secrets
from uuid import UUID, uuid4

from shared.errors import Unauthenticated
from shared.identity.principal import ApiKeyCredential

# folio_<tenant uuid hex>_<key uuid hex>_<43 chars of url-safe base64 = 256 random bits>.
# Carrying the tenant and key id lets the lookup stay inside one workspace (one shard at scale).
_FORMAT = re.compile(r"^folio_([0-9a-f]{32})_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")


def generate(tenant_id: UUID) -> tuple[UUID, str]:
    key_id = uuid4()
    return key_id, f"folio_{tenant_id.hex}_{key_id.hex}_{secrets.token_urlsafe(32)}"


def parse(key: str) -> ApiKeyCredential:
    match = _FORMAT.match(key.strip())
    if not match:
        raise Unauthenticated("The API key is malformed.")
    return ApiKeyCredential(tenant_id=UUID(match[1]), key_id=UUID(match[2]), secret=match[3])


def hash_secret(secret: str) -> bytes:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode("ascii")).digest()
