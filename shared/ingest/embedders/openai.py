"""Embeddings from Azure OpenAI (Entra ID or key) and OpenAI, through the official ``openai`` SDK.

The SDK sends the requests, retries them (408, 409, 429, 5xx, timeouts, lost connections) with
the server's ``retry-after-ms``/``Retry-After`` or its own exponential backoff, and parses the
replies. Folio adds three things at this boundary: its wait budget per request (the SDK counts
retries, Folio also bounds the time), checks on what came back (one vector per text, in order,
of the configured size, unit length), and its own errors in place of the SDK's.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from shared.azure_credential import azure_openai_token_provider
from shared.config import check_url
from shared.errors import ConfigError, FolioError, Unavailable
from shared.ingest.embedders.base import EmbeddingError, l2_normalise, refuse_bare_string
from shared.retry_after import retry_after

if TYPE_CHECKING:
    import httpx2
    import openai
    from azure.core.credentials import TokenCredential

    from shared.config import Secret

DEFAULT_AZURE_API_VERSION = "2024-10-21"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass
class _Attempts:
    """One embeddings request as it goes through the SDK's retries."""

    service: str
    budget_s: float
    deadline: float
    sent: int = 0


# The request under way in this thread (the SDK's client is synchronous): the hooks below read it.
_current: ContextVar[_Attempts | None] = ContextVar("folio_embeddings_request", default=None)


def _before_attempt(request: httpx2.Request) -> None:
    """A retry the SDK starts after the budget ran out (backoff sleeps are its own) is not sent."""
    attempts = _current.get()
    if attempts is None:
        return
    attempts.sent += 1
    if attempts.sent > 1 and time.monotonic() > attempts.deadline:
        raise Unavailable(
            f"{attempts.service} embeddings still failing after {attempts.sent - 1} attempts "
            f"and the {attempts.budget_s:g}s wait budget"
        )


def _after_attempt(response: httpx2.Response) -> None:
    """A retryable answer whose asked-for wait ends past the budget ends the request now.

    The SDK would sleep that long (up to two minutes) before retrying; Folio gives up instead and
    passes the server's wait on as ``retryAfter``, so the caller (a Service Bus redelivery, an HTTP
    client through ``Retry-After``) comes back then.
    """
    attempts = _current.get()
    if attempts is None or not _transient(response.status_code):
        return
    wait = retry_after(response.headers)
    if wait is not None and time.monotonic() + wait > attempts.deadline:
        what = "throttled (429)" if response.status_code == 429 else f"failing (HTTP {response.status_code})"
        raise Unavailable(
            f"{attempts.service} embeddings {what} beyond the {attempts.budget_s:g}s wait budget",
            retryAfter=max(1, math.ceil(wait)),
        )


def _transient(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


class _SdkEmbedder:
    """What both services share: batching, the budget, the checks on replies, Folio's errors."""

    service = "OpenAI"
    _hints: ClassVar[Mapping[int, str]] = {}  # status -> what to check, appended to the message

    def __init__(
        self, *, model: str, model_id: str, dimensions: int, batch_size: int, rate_limit_budget_s: float
    ) -> None:
        if dimensions < 1 or batch_size < 1:
            raise ConfigError("EMBEDDING_DIM and EMBEDDING_BATCH_SIZE must be positive")
        self.model_id = model_id
        self.dimensions = dimensions
        self._model = model  # what each request names: the model, or the Azure deployment
        self._batch_size = batch_size
        self._budget_s = rate_limit_budget_s
        self._client: openai.OpenAI | None = None  # set by the subclass

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        refuse_bare_string(texts)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(self._embed_batch(texts[start : start + self._batch_size]))
        return vectors

    def _embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        import openai

        assert self._client is not None
        attempts = _Attempts(self.service, self._budget_s, time.monotonic() + self._budget_s)
        token = _current.set(attempts)
        try:
            reply = self._client.embeddings.create(
                model=self._model,
                # The service rejects empty strings; a single space embeds to a fixed, harmless vector.
                input=[text if text else " " for text in texts],
                dimensions=self.dimensions,
            )
        except openai.OpenAIError as exc:
            raise self._folio_error(exc, attempts.sent) from None
        except ValueError as exc:  # the SDK's reply parser: e.g. no `data` at all
            raise EmbeddingError(
                f"{self.service} embeddings returned an unreadable reply ({type(exc).__name__})"
            ) from None
        finally:
            _current.reset(token)
        return self._vectors(reply, len(texts))

    def _vectors(self, reply: Any, expected: int) -> list[list[float]]:
        try:
            items = sorted(reply.data, key=lambda item: int(item.index))  # replies may come out of order
            indices = [int(item.index) for item in items]
            vectors = [item.embedding for item in items]
        except (AttributeError, TypeError, ValueError) as exc:
            raise EmbeddingError(
                f"{self.service} embeddings returned an unreadable reply ({type(exc).__name__})"
            ) from None
        if indices != list(range(expected)):
            raise EmbeddingError(f"{self.service} embeddings returned {len(indices)} vectors for {expected} inputs")
        for vector in vectors:
            if not isinstance(vector, list) or len(vector) != self.dimensions:
                got = len(vector) if isinstance(vector, list) else type(vector).__name__
                raise EmbeddingError(
                    f"{self.service} embeddings returned {got} dimensions, expected {self.dimensions} "
                    "(does the model support the 'dimensions' parameter?)"
                )
        # Shortened text-embedding-3 vectors come back normalised, but the index relies on it.
        return [l2_normalise([float(x) for x in vector]) for vector in vectors]

    def _folio_error(self, exc: openai.OpenAIError, attempts: int) -> FolioError:
        """The SDK's error as Folio's: transient ones are ``Unavailable``, the rest ``EmbeddingError``."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status == 429:
                wait = retry_after(exc.response.headers)
                return Unavailable(
                    f"{self.service} embeddings throttled (429) after {attempts} attempts",
                    retryAfter=max(1, math.ceil(wait or 1)),
                )
            if _transient(status):
                return Unavailable(f"{self.service} embeddings failed with HTTP {status} after {attempts} attempts")
            code = _error_code(exc.code)
            return EmbeddingError(
                f"{self.service} embeddings rejected the request: HTTP {status}"
                f"{f' ({code})' if code else ''}{self._hints.get(status, '')}",
                upstream_status=status,
            )
        if isinstance(exc, openai.APITimeoutError):
            return Unavailable(f"{self.service} embeddings timed out after {attempts} attempts")
        if isinstance(exc, openai.APIConnectionError):
            cause = type(exc.__cause__).__name__ if exc.__cause__ else "no response"
            return Unavailable(f"{self.service} embeddings unreachable after {attempts} attempts ({cause})")
        return EmbeddingError(f"{self.service} embeddings returned an unreadable reply ({type(exc).__name__})")


class OpenAIEmbedder(_SdkEmbedder):
    """Embeddings from OpenAI's API (``text-embedding-3-small`` and kin) through the ``openai`` SDK.

    Texts go in batches of ``batch_size``; each batch is one request that the SDK retries up to
    ``max_retries`` times on 408, 409, 429, 5xx, timeouts and lost connections, honouring
    ``retry-after-ms``/``Retry-After`` (else backing off from 0.5 s, doubling up to 8 s). Folio
    also bounds each request to ``rate_limit_budget_s`` of waiting: a server-requested wait that
    would end past it ends the request at once with :class:`~shared.errors.Unavailable` carrying
    ``retryAfter``, and no retry starts after it. Retries exhausted also raise ``Unavailable`` (the
    indexer leaves the message for redelivery). Other 4xx (bad input, content filter, auth, an
    unknown model) and replies that do not fit raise :class:`EmbeddingError`, which is permanent.
    Messages carry status and the service's error code only: never a key, a token or the texts.
    ``timeout_s`` bounds connecting and each read or write of one attempt.
    """

    service = "OpenAI"
    _hints: ClassVar[Mapping[int, str]] = {401: " (check OPENAI_API_KEY)", 404: " (check EMBEDDING_MODEL)"}

    def __init__(
        self,
        *,
        model: str,
        dimensions: int,
        api_key: str | Secret,
        base_url: str = DEFAULT_OPENAI_BASE_URL,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        rate_limit_budget_s: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        check_url(base_url, "OPENAI_BASE_URL")  # the key rides on every request
        super().__init__(
            model=model,
            model_id=model,
            dimensions=dimensions,
            batch_size=batch_size,
            rate_limit_budget_s=rate_limit_budget_s,
        )
        import openai

        self._client = openai.OpenAI(
            api_key=_key(api_key),
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=_http_client(),
        )


class AzureOpenAIEmbedder(_SdkEmbedder):
    """Azure OpenAI embeddings from a deployment, with the app's Entra identity (or a key).

    ``credential`` (an azure-core ``TokenCredential``, the managed identity in Azure) gets tokens
    for the Cognitive Services scope through azure-identity's bearer token provider, which caches
    each token and renews it five minutes before it expires. Batching, retries, the budget and
    errors are as for :class:`OpenAIEmbedder`.
    """

    service = "Azure OpenAI"
    _hints: ClassVar[Mapping[int, str]] = {
        401: " (is the managed identity's token for the right tenant?)",
        403: " (does the identity have the 'Cognitive Services OpenAI User' role?)",
        404: " (check AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_EMBEDDING_DEPLOYMENT)",
    }

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        dimensions: int,
        model_id: str = "text-embedding-3-small",
        api_version: str = DEFAULT_AZURE_API_VERSION,
        credential: TokenCredential | None = None,
        api_key: str | Secret | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        rate_limit_budget_s: float = 60.0,
        max_retries: int = 5,
    ) -> None:
        check_url(endpoint, "AZURE_OPENAI_ENDPOINT")
        if not deployment:
            raise ConfigError("AZURE_OPENAI_EMBEDDING_DEPLOYMENT is required for the azure-openai embedding provider")
        if (credential is None) == (api_key is None):
            raise ConfigError("Azure OpenAI embeddings take an Entra credential or an API key (exactly one)")
        super().__init__(
            model=deployment,
            model_id=model_id,
            dimensions=dimensions,
            batch_size=batch_size,
            rate_limit_budget_s=rate_limit_budget_s,
        )
        import openai

        self._client = openai.AzureOpenAI(
            azure_endpoint=endpoint,
            api_version=api_version,
            api_key=None if api_key is None else _key(api_key),
            azure_ad_token_provider=None if credential is None else azure_openai_token_provider(credential),
            timeout=timeout_s,
            max_retries=max_retries,
            http_client=_http_client(),
        )


def _http_client() -> httpx2.Client:
    """The SDK's own HTTP client (its defaults), with Folio's budget hooked into every attempt."""
    import openai

    return openai.DefaultHttpxClient(event_hooks={"request": [_before_attempt], "response": [_after_attempt]})


def _key(api_key: str | Secret) -> str | Callable[[], str]:
    # A Secret is read on each request, so a rotated key (Key Vault) is picked up without a restart.
    return api_key if isinstance(api_key, str) else api_key.reveal


def _error_code(code: object) -> str:
    """The service's short error code (e.g. ``DeploymentNotFound``, ``content_filter``), never its message."""
    text = "" if code is None else str(code)
    return text if re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", text) else ""
