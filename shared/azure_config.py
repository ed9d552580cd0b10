"""Azure configuration sources for :mod:`shared.config`: Key Vault secrets (TTL-cached) and App Configuration."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from shared.config import SecretSource
from shared.errors import ConfigError, Unavailable

_log = logging.getLogger(__name__)

KEY_VAULT_REFERENCE_CONTENT_TYPE = "application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8"
FEATURE_FLAG_PREFIX = ".appconfig.featureflag/"

# SettingsProvider hands the same options to both sources; these belong to one SDK only. The other SDK would
# silently swallow them today, but that is luck, not contract.
_KEY_VAULT_ONLY = frozenset({"verify_challenge_resource"})
_APP_CONFIG_ONLY = frozenset({"audience"})

# A refresh that failed is retried no sooner than this (or the TTL, if shorter): every caller paying for an
# outage with its own timed-out request would turn a Key Vault blip into an API-wide slowdown.
_MAX_FAILED_REFRESH_BACKOFF_S = 10.0


def _without(options: Mapping[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if k not in names}


def _default_credential() -> Any:
    from shared.azure_credential import get_credential

    return get_credential()


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _is_transient(exc: BaseException) -> bool:
    """Whether retrying later may succeed: no answer at all (network, token endpoint), throttling, or 5xx."""
    status = _status(exc)
    return status is None or status in (408, 429) or status >= 500


def _describe_failure(exc: BaseException) -> str:
    # Type and status only: SDK messages embed response bodies, which are not ours to vouch for.
    status = _status(exc)
    return f"{type(exc).__name__}, HTTP {status}" if status else type(exc).__name__


class _CacheEntry:
    """One cached lookup. ``value`` None means the secret was looked up and does not exist."""

    __slots__ = ("value", "fetched_at", "expires_at")

    def __init__(self, value: str | None, fetched_at: float, expires_at: float) -> None:
        self.value = value
        self.fetched_at = fetched_at
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return f"_CacheEntry(value=***, expires_at={self.expires_at:.1f})"


class KeyVaultSecrets(SecretSource):
    """Key Vault secrets by name, each cached for ``ttl_s`` so a rotation is picked up without a restart.

    A lookup that fails transiently keeps serving the last value it had (with a warning naming the secret,
    never its value); with nothing to fall back on it raises :class:`Unavailable`. A refused lookup
    (401/403/400) raises :class:`ConfigError`: that is a deployment mistake a stale value would hide.
    """

    def __init__(self, vault_url: str, *, ttl_s: float, credential: Any = None, **client_kwargs: Any) -> None:
        self._vault_url = _normalise_vault_url(vault_url) if vault_url else ""
        self._ttl_s = max(0.0, float(ttl_s))
        self._retry_s = min(self._ttl_s, _MAX_FAILED_REFRESH_BACKOFF_S)
        self._credential = credential if credential is not None else _default_credential()
        self._client_kwargs = _without(client_kwargs, _APP_CONFIG_ONLY)
        self._lock = threading.Lock()  # guards the three dicts below, never held during I/O
        self._clients: dict[str, Any] = {}
        self._entries: dict[tuple[str, str, str | None], _CacheEntry] = {}
        self._fetch_locks: dict[tuple[str, str, str | None], threading.Lock] = {}

    def __repr__(self) -> str:
        return f"KeyVaultSecrets({self._vault_url!r}, ttl_s={self._ttl_s})"

    @property
    def vault_url(self) -> str:
        return self._vault_url

    def get(self, name: str) -> str | None:
        """The current value of secret ``name`` in this vault, or None when there is no such secret."""
        if not self._vault_url:
            raise ConfigError("KeyVaultSecrets.get needs a vault URL (set KEY_VAULT_URL)")
        return self._lookup(self._vault_url, name, None)

    def get_by_id(self, secret_id_url: str) -> str:
        """Resolve a Key Vault reference (``https://<vault>/secrets/<name>[/<version>]``), in any vault."""
        from azure.keyvault.secrets import KeyVaultSecretIdentifier

        try:
            ident = KeyVaultSecretIdentifier(secret_id_url)
        except (ValueError, TypeError):
            raise ConfigError(f"Not a Key Vault secret identifier: {secret_id_url!r}") from None
        if ident.name is None or urlsplit(secret_id_url).path.split("/")[1:2] != ["secrets"]:
            raise ConfigError(f"Not a Key Vault secret identifier: {secret_id_url!r}")
        value = self._lookup(_normalise_vault_url(ident.vault_url), ident.name, ident.version or None)
        if value is None:
            version = f" (version {ident.version})" if ident.version else ""
            raise ConfigError(f"Key Vault secret '{ident.name}'{version} does not exist in {ident.vault_url}")
        return value

    # --- internals ----------------------------------------------------------------------

    def _client(self, vault_url: str) -> Any:
        with self._lock:
            client = self._clients.get(vault_url)
            if client is None:
                from azure.keyvault.secrets import SecretClient

                client = SecretClient(vault_url, self._credential, **self._client_kwargs)
                self._clients[vault_url] = client
            return client

    def _lookup(self, vault_url: str, name: str, version: str | None) -> str | None:
        key = (vault_url, name, version)
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() < entry.expires_at:
            return entry.value
        with self._lock:
            fetch_lock = self._fetch_locks.setdefault(key, threading.Lock())
        # One fetch per secret at a time: concurrent callers of an expired entry wait for it, not stampede.
        with fetch_lock:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() < entry.expires_at:
                return entry.value
            return self._refresh(key, entry)

    def _refresh(self, key: tuple[str, str, str | None], previous: _CacheEntry | None) -> str | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        vault_url, name, version = key
        try:
            secret = self._client(vault_url).get_secret(name, version)
            value: str | None = secret.value if secret.value is not None else ""
        except ResourceNotFoundError:
            value = None
        except AzureError as exc:
            where = f"secret '{name}' in {vault_url}"
            if not _is_transient(exc):
                raise ConfigError(
                    f"Key Vault refused {where} ({_describe_failure(exc)}): check the identity has the "
                    f"'Key Vault Secrets User' role and the secret is enabled"
                ) from None
            if previous is None:
                raise Unavailable(f"Key Vault is unavailable for {where} ({_describe_failure(exc)})") from None
            now = time.monotonic()
            previous.expires_at = now + self._retry_s
            _log.warning(
                "Key Vault refresh of %s failed (%s); serving the value cached %.0f s ago",
                where,
                _describe_failure(exc),
                now - previous.fetched_at,
            )
            return previous.value
        now = time.monotonic()
        with self._lock:
            self._entries[key] = _CacheEntry(value, now, now + self._ttl_s)
        return value


def _normalise_vault_url(url: str) -> str:
    # One client per vault, however the URL was spelled (case, trailing slash, default port).
    parts = urlsplit(url.strip())
    netloc = parts.netloc.lower()
    if netloc.endswith(":443"):
        netloc = netloc[: -len(":443")]
    return f"{(parts.scheme or 'https').lower()}://{netloc}"


def _escape_filter(text: str) -> str:
    # App Configuration filters reserve `\`, `*` and `,`; a label is matched literally.
    return text.replace("\\", "\\\\").replace("*", "\\*").replace(",", "\\,")


def _is_key_vault_reference(content_type: str | None) -> bool:
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == KEY_VAULT_REFERENCE_CONTENT_TYPE.split(";", 1)[0]


class AppConfigSource:
    """Every key-value of one App Configuration label, Key Vault references resolved, plus a sentinel check.

    :meth:`load` reads the sentinel *before* listing, so a change published while the list is being read
    is seen by the next :meth:`sentinel_changed` rather than lost.
    """

    _NOT_LOADED = object()

    def __init__(
        self, endpoint: str, *, label: str, sentinel_key: str, credential: Any = None, **client_kwargs: Any
    ) -> None:
        from azure.appconfiguration import AzureAppConfigurationClient

        credential = credential if credential is not None else _default_credential()
        self._endpoint = endpoint
        self._label = label
        self._sentinel_key = sentinel_key
        self._client = AzureAppConfigurationClient(endpoint, credential, **_without(client_kwargs, _KEY_VAULT_ONLY))
        # References are re-read on every load (ttl 0): a reload is the moment a rotated reference should land.
        self._resolver: Callable[[str], str] = KeyVaultSecrets(
            "", ttl_s=0.0, credential=credential, **_without(client_kwargs, _APP_CONFIG_ONLY)
        ).get_by_id
        self._lock = threading.Lock()
        self._sentinel_etag: object = self._NOT_LOADED

    def __repr__(self) -> str:
        return f"AppConfigSource({self._endpoint!r}, label={self._label!r})"

    @property
    def label(self) -> str:
        return self._label

    def load(self) -> dict[str, str]:
        """Every setting with this label; raises :class:`Unavailable` or :class:`ConfigError` on failure."""
        from azure.core.exceptions import AzureError

        with self._lock:
            try:
                sentinel_etag = self._read_sentinel_etag()
                items = list(self._client.list_configuration_settings(label_filter=_escape_filter(self._label)))
            except AzureError as exc:
                raise self._translate(exc) from None
            values: dict[str, str] = {}
            for item in items:
                if item.key.startswith(FEATURE_FLAG_PREFIX) or item.value is None:
                    continue
                values[item.key] = (
                    self._resolve_reference(item.key, item.value)
                    if _is_key_vault_reference(item.content_type)
                    else item.value
                )
            self._sentinel_etag = sentinel_etag
            return values

    def sentinel_changed(self) -> bool:
        """True when the sentinel's etag differs from the one seen by the last :meth:`load`."""
        from azure.core.exceptions import AzureError

        with self._lock:
            if self._sentinel_etag is self._NOT_LOADED:
                return True
            try:
                return self._read_sentinel_etag() != self._sentinel_etag
            except AzureError as exc:
                raise self._translate(exc) from None

    # --- internals ----------------------------------------------------------------------

    def _read_sentinel_etag(self) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            setting = self._client.get_configuration_setting(key=self._sentinel_key, label=self._label)
        except ResourceNotFoundError:
            return None  # absent is a state too: its appearance later counts as a change
        return None if setting is None else setting.etag

    def _resolve_reference(self, key: str, raw: str) -> str:
        try:
            uri = json.loads(raw)["uri"]
            if not isinstance(uri, str):
                raise TypeError(uri)
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"App Configuration key {key} (label {self._label}) is a Key Vault reference without a 'uri'"
            ) from None
        try:
            return self._resolver(uri)
        except ConfigError as exc:
            raise ConfigError(f"App Configuration key {key} (label {self._label}): {exc.detail}") from None

    def _translate(self, exc: Exception) -> Exception:
        what = f"App Configuration {self._endpoint} ({_describe_failure(exc)})"
        if _is_transient(exc):
            return Unavailable(f"{what} is unavailable")
        return ConfigError(f"{what} refused the request: check the identity has 'App Configuration Data Reader'")
