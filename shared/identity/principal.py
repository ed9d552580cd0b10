"""The authenticated caller before any workspace is chosen."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class Principal:
    """A signed-in human, identified by their identity provider and its stable subject id."""

    idp: str  # "entra:<tenant id>" or "swa:<provider>"
    subject: str
    email: str | None = None
    name: str | None = None
    # Whether the identity provider vouches for ``email``; only then may it claim invitations.
    email_verified: bool = False
    # Entra security group object ids from the token (lower-case); restricted collections may grant by group.
    groups: frozenset[str] = frozenset()
    # The token had too many groups to list them (``_claim_names``/``hasgroups``): ``groups`` is empty and
    # group grants do not apply (migration 0013, docs/access.md).
    groups_overage: bool = False


@dataclass(frozen=True)
class ApiKeyCredential:
    """A presented workspace API key; verified against its stored hash by the tenancy layer."""

    tenant_id: UUID
    key_id: UUID
    secret: str

    def __repr__(self) -> str:  # the secret half never reaches logs
        return f"ApiKeyCredential(tenant_id={self.tenant_id}, key_id={self.key_id}, secret=***)"
