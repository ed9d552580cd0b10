"""Users' own provider keys: a small :class:`SecretStore` with Key Vault in Azure and 0600 files locally.

A key never touches Cosmos DB or PostgreSQL, logs or responses. One secret per (workspace, user):
``chat-key-<tenant>-<user>``, whose value is JSON ``{provider, apiKey, model}``.

* ``CHAT_KEY_STORE=keyvault``: ``CHAT_KEY_VAULT_URL``, through azure-keyvault-secrets with the app's
  identity. That vault holds only user keys: the app may write there (Key Vault Secrets Officer),
  while the vault with the app's own secrets (``KEY_VAULT_URL``) stays read-only to it. Reads are
  cached for a minute per process, so another instance may use a replaced key for up to a minute.
* ``CHAT_KEY_STORE=local`` (development only): one file per secret in ``CHAT_LOCAL_SECRETS_DIR``
  (default ``.local/secrets``), directory 0700 and files 0600, written atomically. Plain text on
  the developer's disk, protected by file permissions only: never use it on a shared machine.
* ``none`` (the default): own keys are switched off.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared import audit
from shared.config import Settings
from shared.db import Database
from shared.errors import ConfigError, Forbidden, Invalid, Unavailable
from shared.ports import SecretStore
from shared.tenancy import Caller

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

STORES = ("none", "local", "keyvault")
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_API_KEY = re.compile(r"^[\x21-\x7e]{16,512}$")  # printable ASCII, no spaces
_MODEL = re.compile(r"^[A-Za-z0-9._:/\-]{1,100}$")
_CACHE_S = 60.0


@dataclass(frozen=True)
class UserKey:
    provider: str
    api_key: str = field(repr=False)
    model: str | None = None

    def describe(self) -> dict[str, Any]:
        """What may be shown back: never the key, only its last four characters."""
        return {"provider": self.provider, "model": self.model, "keyHint": "…" + self.api_key[-4:]}


def secret_name(caller: Caller) -> str:
    if caller.user_id is None:
        raise Forbidden("Own provider keys belong to signed-in users, not API keys.")
    name = f"chat-key-{caller.tenant_id}-{caller.user_id}"
    assert _NAME.match(name)
    return name


def get_user_key(store: SecretStore | None, caller: Caller) -> UserKey | None:
    if store is None or caller.user_id is None:
        return None
    raw = store.get(secret_name(caller))
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return UserKey(str(data["provider"]), str(data["apiKey"]), data.get("model"))
    except (ValueError, KeyError, TypeError):
        raise ConfigError("A stored provider key is unreadable; delete it and set it again.") from None


def set_user_key(
    store: SecretStore | None,
    db: Database,
    caller: Caller,
    provider: str,
    api_key: str,
    model: str | None,
    *,
    allowed: tuple[str, ...],
) -> UserKey:
    """Store the caller's own key, then audit that they did (which provider; never the key)."""
    if store is None:
        raise Forbidden("Own provider keys are not enabled on this installation.")
    if provider not in allowed:
        raise Invalid(f"Field 'provider' must be one of: {', '.join(allowed)}.", fields=["provider"])
    if not _API_KEY.match(api_key):
        raise Invalid("Field 'apiKey' does not look like an API key.", fields=["apiKey"])
    if model is not None and not _MODEL.match(model):
        raise Invalid("Field 'model' must be a model name.", fields=["model"])
    key = UserKey(provider, api_key, model)
    store.set(secret_name(caller), json.dumps({"provider": provider, "apiKey": api_key, "model": model}))
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        audit.record(conn, caller, "chat.key.set", "chat_key", caller.user_id, provider=provider, model=model)
    return key


def delete_user_key(store: SecretStore | None, db: Database, caller: Caller) -> None:
    if store is None:
        return
    store.delete(secret_name(caller))
    with db.transaction(caller.tenant_id, caller.user_id) as conn:
        audit.record(conn, caller, "chat.key.delete", "chat_key", caller.user_id)


# --- local files (development) ---------------------------------------------------------------


class LocalFileSecrets:
    """One file per secret, readable by the owner only; for a developer's machine, never for Azure."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ValueError("bad secret name")
        return self._dir / name

    def get(self, name: str) -> str | None:
        try:
            return self._path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set(self, name: str, value: str) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        # mkstemp creates the file 0600 before anything is written; rename makes the swap atomic.
        handle, temporary = tempfile.mkstemp(dir=self._dir, prefix=".tmp-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(value)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self._path(name))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


# --- Key Vault (Azure) ------------------------------------------------------------------------


class KeyVaultUserSecrets:
    """Secrets in a Key Vault the app may write to, with a short read cache."""

    def __init__(
        self, vault_url: str, *, credential: TokenCredential, cache_s: float = _CACHE_S, **client_kwargs: Any
    ) -> None:
        from azure.keyvault.secrets import SecretClient

        self._client = SecretClient(vault_url, credential, **client_kwargs)
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, str | None]] = {}

    def get(self, name: str) -> str | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        with self._lock:
            hit = self._cache.get(name)
        if hit and time.monotonic() < hit[0]:
            return hit[1]
        try:
            value: str | None = self._client.get_secret(name).value
        except ResourceNotFoundError:
            value = None
        except AzureError as exc:
            raise _translate(exc, "read") from None
        with self._lock:
            self._cache[name] = (time.monotonic() + self._cache_s, value)
        return value

    def set(self, name: str, value: str) -> None:
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            try:
                self._client.set_secret(
                    name, value, content_type="application/json", tags={"purpose": "folio-chat-provider-key"}
                )
            except ResourceExistsError:
                # 409: deleted earlier and kept by soft delete; bring the name back, then write a new version.
                self._client.begin_recover_deleted_secret(name).wait()
                self._client.set_secret(
                    name, value, content_type="application/json", tags={"purpose": "folio-chat-provider-key"}
                )
        except AzureError as exc:
            raise _translate(exc, "store") from None
        self._forget(name)

    def delete(self, name: str) -> None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self._client.begin_delete_secret(name)  # soft delete; not waited for: the name reads as missing at once
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise _translate(exc, "delete") from None
        self._forget(name)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)


def _translate(exc: Exception, doing: str) -> Exception:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return ConfigError(
            f"Key Vault refused to {doing} a provider key (HTTP {status}): the app identity needs "
            "the Key Vault Secrets Officer role on CHAT_KEY_VAULT_URL."
        )
    return Unavailable(f"Could not {doing} the provider key: Key Vault is unavailable ({type(exc).__name__}).")


def secret_store_from_settings(settings: Settings, credential: TokenCredential | None = None) -> SecretStore | None:
    """The store CHAT_KEY_STORE names (Key Vault needs ``credential``); None when own keys are switched off."""
    kind = settings.chat_key_store
    if kind not in STORES:
        raise ConfigError(f"Setting CHAT_KEY_STORE must be one of: {', '.join(STORES)}")
    if kind == "none":
        return None
    if kind == "local":
        return LocalFileSecrets(settings.chat_local_secrets_dir)
    if credential is None:
        raise ConfigError("CHAT_KEY_STORE=keyvault needs the app's identity.")
    return KeyVaultUserSecrets(settings.require("chat_key_vault_url"), credential=credential)
