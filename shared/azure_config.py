"""Azure sources for :mod:`shared.config`: App Configuration through its official provider, Key Vault secrets by name.

Imported only when ``APP_CONFIG_ENDPOINT`` or ``KEY_VAULT_URL`` is set, and every Azure SDK is imported inside the
constructors, so local development never loads one.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.errors import ConfigError, FolioError, Unavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_log = logging.getLogger(__name__)

# A failed Key Vault lookup is retried no sooner than this (or the TTL, if shorter): every caller paying for an
# outage with its own timed-out request would turn a Key Vault blip into an API-wide slowdown.
_MAX_FAILED_REFRESH_BACKOFF_S = 10.0


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _is_transient(exc: BaseException) -> bool:
    """Whether retrying later may succeed: no answer at all (network, token endpoint), throttling, or 5xx."""
    status = _status(exc)
    return status is None or status in (408, 429) or status >= 500


def _describe_failure(exc: BaseException) -> str:
    """Type, status and the URL that failed (no query): SDK messages embed response bodies, not ours to vouch for."""
    status = _status(exc)
    request = getattr(getattr(exc, "response", None), "request", None)
    url = getattr(request, "url", None)
    where = ""
    if isinstance(url, str):
        parts = urlsplit(url)
        where = f" from {parts.scheme}://{parts.netloc}{parts.path}"
    return f"{type(exc).__name__}, HTTP {status}{where}" if status else type(exc).__name__


# --- Key Vault secrets by name ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cached:
    """One lookup; ``value`` None means the secret was looked up and does not exist."""

    value: str | None = field(repr=False)
    fetched_at: float
    expires_at: float


class KeyVaultSecrets:
    """The secrets of one vault by name, each cached for ``ttl_s``, so a rotation lands without a restart.

    A lookup that fails transiently keeps serving the last value it had (with a warning naming the secret, never
    its value) and is not retried for a short back-off; with nothing to fall back on it raises
    :class:`Unavailable`. A refused lookup (401/403/400) raises :class:`ConfigError`: that is a deployment
    mistake a stale value would hide. Concurrent readers of an expired secret wait for one fetch.
    """

    def __init__(
        self,
        vault_url: str,
        credential: TokenCredential,
        *,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
        **client_options: Any,
    ) -> None:
        from azure.keyvault.secrets import SecretClient

        self._client = SecretClient(vault_url, credential, **client_options)
        self._ttl_s = max(0.0, float(ttl_s))
        self._retry_s = min(self._ttl_s, _MAX_FAILED_REFRESH_BACKOFF_S)
        self._clock = clock
        self._lock = threading.Lock()  # guards _fetching; never held during I/O
        self._fetching: dict[str, threading.Lock] = {}
        self._cache: dict[str, _Cached] = {}

    def __repr__(self) -> str:
        return f"KeyVaultSecrets({self._client.vault_url!r}, ttl_s={self._ttl_s})"

    def get(self, name: str) -> str | None:
        """The current value of secret ``name``, or None when the vault has no such secret."""
        entry = self._cache.get(name)
        if entry is not None and self._clock() < entry.expires_at:
            return entry.value
        with self._lock:
            fetching = self._fetching.setdefault(name, threading.Lock())
        with fetching:
            entry = self._cache.get(name)  # another caller may have fetched it while this one waited
            if entry is not None and self._clock() < entry.expires_at:
                return entry.value
            return self._fetch(name, entry)

    def _fetch(self, name: str, previous: _Cached | None) -> str | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            value: str | None = self._client.get_secret(name).value or ""
        except ResourceNotFoundError:
            value = None
        except AzureError as exc:
            where = f"secret '{name}' in {self._client.vault_url}"
            if not _is_transient(exc):
                raise ConfigError(
                    f"Key Vault refused {where} ({_describe_failure(exc)}): check the identity has the "
                    f"'Key Vault Secrets User' role and the secret is enabled"
                ) from None
            if previous is None:
                raise Unavailable(f"Key Vault is unavailable for {where} ({_describe_failure(exc)})") from None
            now = self._clock()
            previous.expires_at = now + self._retry_s
            _log.warning(
                "Key Vault refresh of %s failed (%s); serving the value cached %.0f s ago",
                where,
                _describe_failure(exc),
                now - previous.fetched_at,
            )
            return previous.value
        now = self._clock()
        self._cache[name] = _Cached(value, now, now + self._ttl_s)
        return value


# --- App Configuration ----------------------------------------------------------------------------------------


class _SameOptionsForEveryVault(Mapping[str, dict[str, Any]]):
    """``keyvault_client_configs`` for vaults not known in advance: a Key Vault reference may name any vault.

    The provider looks a vault's client options up with ``.get(vault_url, {})`` and pops from the result, so each
    lookup returns a fresh copy.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self._options = dict(options)

    def __getitem__(self, vault_url: str) -> dict[str, Any]:
        return dict(self._options)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _escape_filter(text: str) -> str:
    # App Configuration filters reserve `\`, `*` and `,`; a label is matched literally.
    return text.replace("\\", "\\\\").replace("*", "\\*").replace(",", "\\,")


def _as_text(values: Mapping[str, Any]) -> dict[str, str]:
    # A key-value without a value (null, as the portal allows) sets nothing. The provider parses values with a
    # JSON content type; settings are text, so those go back to JSON text.
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items() if v is not None}


class AppConfiguration:
    """Every key-value of one App Configuration label, read by ``azure-appconfiguration-provider``.

    The provider lists the label, resolves Key Vault references (in any vault, with the same credential; the
    resolved values are re-read every ``secret_refresh_s``) and, on :meth:`refresh`, reads the sentinel key and
    reloads the label only when the sentinel changed, appeared or disappeared. How often to look is the
    caller's decision: the provider's own refresh timer is set to its minimum (1 s) so it never skips a look
    the caller asked for. Failures surface as :class:`Unavailable` (may heal) or :class:`ConfigError`.
    """

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        label: str,
        sentinel_key: str,
        secret_refresh_s: float,
        **client_options: Any,
    ) -> None:
        from azure.appconfiguration.provider import SettingSelector, WatchKey, load

        self._endpoint = endpoint
        self._label = label
        try:
            self._provider = load(
                endpoint,
                credential,
                selects=[SettingSelector(key_filter="*", label_filter=_escape_filter(label))],
                refresh_on=[WatchKey(sentinel_key, label)],
                refresh_interval=1,
                keyvault_credential=credential,
                keyvault_client_configs=_SameOptionsForEveryVault(client_options),
                secret_refresh_interval=max(1, math.ceil(secret_refresh_s)),
                # One pass over the store (and its replicas): the caller answers 503 and tries again on its next
                # request rather than hold this one for the provider's default 100 s of start-up retries.
                startup_timeout=0,
                **client_options,
            )
        except Exception as exc:
            raise self._translate(exc) from None
        self._values = _as_text(self._provider)

    def __repr__(self) -> str:
        return f"AppConfiguration({self._endpoint!r}, label={self._label!r})"

    @property
    def values(self) -> dict[str, str]:
        """The key-values as last loaded, Key Vault references resolved."""
        return dict(self._values)

    def refresh(self) -> dict[str, str] | None:
        """Look for a change now: the new key-values if the label was reloaded (or a reference rotated), else None."""
        try:
            self._provider.refresh()
        except Exception as exc:
            raise self._translate(exc) from None
        values = _as_text(self._provider)
        if values == self._values:
            return None
        self._values = values
        return dict(values)

    def _translate(self, exc: BaseException) -> FolioError:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        if isinstance(exc, FolioError):
            return exc
        cause = exc
        if isinstance(exc, TimeoutError) and len(exc.args) > 1 and exc.args[1]:
            cause = exc.args[1][-1]  # the start-up attempts' exceptions, last one last
        elif isinstance(exc.__cause__, AzureError):  # the provider wraps a network failure of Key Vault
            cause = exc.__cause__
        what = f"App Configuration {self._endpoint} (label {self._label})"
        if isinstance(cause, ResourceNotFoundError):
            return ConfigError(
                f"{what}: a Key Vault reference names a secret that does not exist ({_describe_failure(cause)})"
            )
        if isinstance(cause, AzureError):
            if _is_transient(cause):
                return Unavailable(f"{what} is unavailable ({_describe_failure(cause)})")
            return ConfigError(
                f"{what} refused the request ({_describe_failure(cause)}): check the identity has 'App Configuration "
                f"Data Reader' on the store and 'Key Vault Secrets User' on the vaults its references name"
            )
        if isinstance(cause, ValueError):  # a malformed Key Vault reference; the provider's words name no value
            return ConfigError(f"{what}: a Key Vault reference could not be resolved: {cause}")
        return Unavailable(f"{what} could not be read ({type(cause).__name__})")
