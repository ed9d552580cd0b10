"""Who is calling: Entra bearer tokens, the Static Web Apps principal header, and workspace API keys."""

from shared.identity.authenticate import authenticate
from shared.identity.principal import ApiKeyCredential, Principal

__all__ = ["ApiKeyCredential", "Principal", "authenticate"]
