"""The embedder the settings name, built fresh (the composition root keeps one per process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import ConfigError
from shared.ingest.embedders.base import Embedder
from shared.ingest.embedders.local import LOCAL_DIMENSIONS, LOCAL_MODEL_ID, LocalMiniLMEmbedder

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.config import Settings

PROVIDERS = ("local", "azure-openai", "openai")


def embedder_from_settings(settings: Settings, credential: TokenCredential | None = None) -> Embedder:
    """The embedder ``settings.embedding_provider`` names (``local`` by default).

    Cheap: nothing is loaded and no connection is opened until the first ``embed`` (the SDK is
    imported, not called). ``credential`` is the app's Entra identity, used by ``azure-openai``;
    without one, the process credential for ``AZURE_CLIENT_ID`` is used. Raises
    :class:`~shared.errors.ConfigError` when the settings do not fit the provider.
    """
    provider = (settings.embedding_provider or "local").strip().lower()
    model, dim = settings.embedding_model, settings.embedding_dim
    if provider == "local":
        # The local provider ships exactly one model; a mismatch would corrupt the index.
        if (model or LOCAL_MODEL_ID) != LOCAL_MODEL_ID or (dim or LOCAL_DIMENSIONS) != LOCAL_DIMENSIONS:
            raise ConfigError(
                f"EMBEDDING_PROVIDER=local serves {LOCAL_MODEL_ID} ({LOCAL_DIMENSIONS} dimensions); "
                "set EMBEDDING_MODEL and EMBEDDING_DIM to match, or choose another provider"
            )
        return LocalMiniLMEmbedder()
    if provider not in PROVIDERS:
        raise ConfigError(f"EMBEDDING_PROVIDER must be one of {', '.join(PROVIDERS)}; got {provider!r}")
    if not model or model == LOCAL_MODEL_ID:  # a MiniLM id on OpenAI vectors would lie to the index
        raise ConfigError(f"EMBEDDING_MODEL must name the {provider} embedding model (e.g. text-embedding-3-small)")
    if dim < 1:
        raise ConfigError("EMBEDDING_DIM must be a positive integer")
    if provider == "openai":
        from shared.ingest.embedders.openai import OpenAIEmbedder

        if settings.openai_api_key is None:
            raise ConfigError("OPENAI_API_KEY is required for EMBEDDING_PROVIDER=openai")
        return OpenAIEmbedder(
            model=model,
            dimensions=dim,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            batch_size=settings.embedding_batch_size,
            timeout_s=settings.embedding_timeout_s,
            rate_limit_budget_s=settings.embedding_rate_limit_budget_s,
        )
    from shared.ingest.embedders.openai import AzureOpenAIEmbedder

    if not settings.azure_openai_endpoint:
        raise ConfigError("AZURE_OPENAI_ENDPOINT is required for EMBEDDING_PROVIDER=azure-openai")
    if not settings.azure_openai_embedding_deployment:
        raise ConfigError("AZURE_OPENAI_EMBEDDING_DEPLOYMENT is required for EMBEDDING_PROVIDER=azure-openai")
    if credential is None:
        from shared.azure_credential import get_credential

        credential = get_credential(settings.azure_client_id)
    return AzureOpenAIEmbedder(
        endpoint=settings.azure_openai_endpoint,
        deployment=settings.azure_openai_embedding_deployment,
        dimensions=dim,
        model_id=model,
        api_version=settings.azure_openai_api_version,
        credential=credential,
        batch_size=settings.embedding_batch_size,
        timeout_s=settings.embedding_timeout_s,
        rate_limit_budget_s=settings.embedding_rate_limit_budget_s,
    )
