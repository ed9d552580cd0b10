"""Azure AI Document Intelligence (``prebuilt-layout``) as Folio's :class:`~shared.ports.DocumentAnalyzer`.

The SDK (``azure-ai-documentintelligence``) is imported on first use only. The client submits the
file (``POST .../documentModels/prebuilt-layout:analyze``, answered 202 with ``Operation-Location``),
polls that operation until it succeeds or fails, and retries throttling (429, honouring
``Retry-After``) and 5xx answers itself, a few times. Errors are classified for the indexer: a file
the service cannot read is a :class:`~shared.ingest.errors.DocumentRejected` (permanent), anything
else is :class:`~shared.errors.Unavailable`, so Service Bus delivers the job again later.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from shared.errors import Unavailable
from shared.ingest.errors import CorruptDocument, TooLarge, UnsupportedType

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

MODEL_ID = "prebuilt-layout"
# Error codes (top level or inner) of a file the service will never read, whatever the retries.
_UNREADABLE_CODES = frozenset(
    {
        "InvalidContent",
        "InvalidContentDimensions",
        "InvalidContentSourceFormat",
        "UnsupportedContent",
        "InvalidPdfPassword",
        "UnsupportedMediaType",
    }
)
_TOO_LARGE_CODES = frozenset({"InvalidContentLength", "ContentSourceTooLarge", "PageLimitExceeded"})
_ROLE_HINT = {
    401: " (is the app identity's token for the right tenant?)",
    403: " (does the app identity have the 'Cognitive Services User' role on the account?)",
}


class AzureDocumentAnalyzer:
    """``prebuilt-layout`` through the SDK with the app's Entra identity.

    ``transport`` passes azure-core options through to the client (tests give ``connection_verify``
    for the local stub's certificate). ``polling_interval_s`` is the wait between polls when the
    service sends no ``Retry-After``; ``retry_total`` bounds the SDK's own retries of 429 and 5xx.
    """

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        timeout_s: float = 300.0,
        polling_interval_s: float = 1.0,
        retry_total: int = 3,
        **transport: Any,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._timeout_s = timeout_s
        self._polling_interval_s = polling_interval_s
        self._retry_total = retry_total
        self._transport = transport
        self._client: Any = None
        self._lock = threading.Lock()

    def _sdk_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.ai.documentintelligence import DocumentIntelligenceClient

                self._client = DocumentIntelligenceClient(
                    self.endpoint,
                    self._credential,
                    polling_interval=self._polling_interval_s,
                    retry_total=self._retry_total,
                    **self._transport,
                )
            return self._client

    def analyze(self, data: bytes, *, pages: str | None = None) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

        try:
            poller = self._sdk_client().begin_analyze_document(MODEL_ID, data, pages=pages)
            result = poller.result(timeout=self._timeout_s)
            if not poller.done() or result is None:
                raise Unavailable(
                    f"Document Intelligence had not finished the analysis after {self._timeout_s:g} seconds; "
                    "it will be tried again."
                )
        except HttpResponseError as exc:
            raise classify(exc) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise Unavailable(f"Document Intelligence could not be reached ({type(exc).__name__}).") from None
        analyzed: dict[str, Any] = result.as_dict()
        return analyzed

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def classify(exc: Any) -> Exception:
    """A Folio error for an SDK ``HttpResponseError``: the file's fault (permanent) or the service's."""
    status = getattr(exc, "status_code", None)
    codes, message = _error_codes(exc)
    if codes & _TOO_LARGE_CODES:
        return TooLarge(
            f"Document Intelligence refused this file as too large: {message}",
            limit="document_intelligence",
            value=None,
        )
    if codes & _UNREADABLE_CODES:
        return CorruptDocument(f"Document Intelligence could not read this file: {message}")
    if status == 415:
        return UnsupportedType(f"Document Intelligence does not accept this file type: {message}")
    if status == 429:
        return Unavailable("Document Intelligence is throttling requests (429); the document will be tried again.")
    hint = _ROLE_HINT.get(status or 0, "")
    code = ", ".join(sorted(codes)) or "no error code"
    return Unavailable(f"Document Intelligence failed (HTTP {status}, {code}){hint}; the document will be tried again.")


def _error_codes(exc: Any) -> tuple[set[str], str]:
    """Codes of the response body's error and its inner errors, and the innermost message.

    Read from the body itself: a failed operation's error arrives in the poll's 200 answer
    (``{"status": "failed", "error": {...}}``), where the SDK's parsed ``exc.error`` is not it.
    """
    codes: set[str] = set()
    message = ""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else None
    except (ValueError, TypeError, AttributeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    depth = 0
    while isinstance(error, dict) and depth < 8:
        if error.get("code"):
            codes.add(str(error["code"]))
        if error.get("message"):
            message = " ".join(str(error["message"]).split())[:300]
        error, depth = error.get("innererror"), depth + 1
    return codes, message or "no reason given"
