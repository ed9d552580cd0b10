"""Folio's one configuration layer: typed settings from defaults, environment, App Configuration and Key Vault.

Sources, later wins:

1. defaults declared on :class:`Settings`;
2. the process environment (``local.settings.json`` ``Values`` land here under ``func start``);
3. Azure App Configuration, when ``APP_CONFIG_ENDPOINT`` is set: the key-values of one label
   (``APP_CONFIG_LABEL``, else ``FOLIO_ENVIRONMENT``), Key Vault references resolved, read by
   ``azure-appconfiguration-provider`` and reloaded when the sentinel key changes;
4. Key Vault secrets by name, when ``KEY_VAULT_URL`` is set, for the fields marked secret
   (``DATABASE_URL`` -> secret ``database-url``). Secrets are fetched at use and cached for
   ``KEY_VAULT_CACHE_SECONDS``, so a rotated secret is picked up without a restart.

Every value is text until :func:`load_settings` coerces it to the field's type; a bad value fails with
the setting's name, never its value. Nothing else in Folio reads ``os.environ``: code asks
:func:`get_settings` (or is handed a :class:`Settings`) and passes values down. A missing required
setting fails at first use with a message naming it and where to set it. With neither
``APP_CONFIG_ENDPOINT`` nor ``KEY_VAULT_URL`` set, no Azure SDK is imported.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, get_type_hints
from urllib.parse import urlsplit

from shared.errors import ConfigError, FolioError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.azure_config import AppConfiguration

_log = logging.getLogger(__name__)


class Secret:
    """A secret value that never shows itself in reprs, logs or error bodies.

    The value is resolved at :meth:`reveal` time (through the Key Vault cache when one is
    configured), so rotation needs no restart.
    """

    __slots__ = ("_name", "_resolve")

    def __init__(self, name: str, resolve: Callable[[], str | None]) -> None:
        self._name = name
        self._resolve = resolve

    @property
    def name(self) -> str:
        return self._name

    def reveal(self) -> str:
        value = self._resolve()
        if not value:
            raise ConfigError(missing_setting_message(self._name))
        return value

    def is_set(self) -> bool:
        return bool(self._resolve())

    def __repr__(self) -> str:
        return f"Secret({self._name}=***)"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would copy the resolver; refuse rather than leak
        raise TypeError("Secret values cannot be pickled")


def _meta(env: str, *, secret: bool = False, doc: str = "") -> dict[str, Any]:
    return {"env": env, "secret": secret, "doc": doc}


def _setting(env: str, default: Any = None, *, doc: str = "") -> Any:
    return field(default=default, metadata=_meta(env, doc=doc))


def _secret(env: str, *, doc: str = "") -> dict[str, Any]:
    """Metadata of a field whose value is a :class:`Secret` (``None`` when no source has it)."""
    return _meta(env, secret=True, doc=doc)


# Billing plans when BILLING_PLANS is unset: a free plan roomy enough for local development and the
# test suite, and paid plans that become purchasable once BILLING_PLANS gives them Stripe price ids.
# The format is documented and validated in shared/billing/plans.py.
DEFAULT_BILLING_PLANS = (
    '{"free": {"limits": {"documents": 1000, "storageBytes": 1073741824, "pagesPerMonth": 5000,'
    ' "searchesPerMonth": 5000, "chatTokensPerMonth": 200000}},'
    ' "pro": {"price": null, "meterEvents": {"pagesIndexed": "folio_pages_indexed", "chatTokens": "folio_chat_tokens"},'
    ' "limits": {"documents": 20000, "storageBytes": 53687091200, "pagesPerMonth": 100000,'
    ' "searchesPerMonth": 100000, "chatTokensPerMonth": 10000000}},'
    ' "team": {"price": null, "meterEvents": {"pagesIndexed": "folio_pages_indexed", "chatTokens": "folio_chat_tokens"},'
    ' "limits": {"documents": null, "storageBytes": 536870912000, "pagesPerMonth": 1000000,'
    ' "searchesPerMonth": null, "chatTokensPerMonth": 100000000}}}'
)


@dataclass(frozen=True)
class Settings:
    """Every setting Folio reads. Field metadata names the environment/App Configuration key."""

    # --- runtime mode -------------------------------------------------------------------
    environment: str = _setting("FOLIO_ENVIRONMENT", "dev", doc="dev | test | prod; also the App Configuration label")
    dev_mode: bool = _setting(
        "FOLIO_DEV_MODE",
        False,
        doc="local development: trusts the x-ms-client-principal header (dev sign-in); never in Azure",
    )

    # --- database -----------------------------------------------------------------------
    database_url: Secret | None = field(
        default=None,
        metadata=_secret("DATABASE_URL", doc="libpq URL the app connects with (a non-owner role; RLS applies)"),
    )
    database_admin_url: Secret | None = field(
        default=None,
        metadata=_secret("DATABASE_ADMIN_URL", doc="libpq URL of the schema owner, used by migrations only"),
    )
    database_context_key: Secret | None = field(
        default=None,
        metadata=_secret(
            "DATABASE_CONTEXT_KEY",
            doc="HMAC key that signs each transaction's tenant context (migration 0009); migrate installs it",
        ),
    )
    database_app_role: str = _setting("DATABASE_APP_ROLE", "folio_app", doc="role migrations grant DML to")
    database_pool_min: int = _setting("DATABASE_POOL_MIN", 1)
    database_pool_max: int = _setting("DATABASE_POOL_MAX", 4, doc="per process; Flex Consumption scales processes out")
    database_pool_timeout_s: float = _setting("DATABASE_POOL_TIMEOUT_SECONDS", 10.0)
    database_statement_timeout_ms: int = _setting("DATABASE_STATEMENT_TIMEOUT_MS", 15000)
    database_server_prepare: bool = _setting(
        "DATABASE_SERVER_PREPARE", True, doc="false behind PgBouncer in transaction mode"
    )
    database_entra_auth: bool = _setting(
        "DATABASE_ENTRA_AUTH", False, doc="use a fresh Entra token as the password of each new connection"
    )
    azure_client_id: str | None = _setting("AZURE_CLIENT_ID", doc="client id of the user-assigned managed identity")

    # --- identity -----------------------------------------------------------------------
    auth_entra_tenant_id: str | None = _setting(
        "AUTH_ENTRA_TENANT_ID",
        doc="`organizations` (unset: any work or school tenant, issuer checked against the token's `tid`) or one tenant id",
    )
    auth_allowed_tenants: str | None = _setting(
        "AUTH_ALLOWED_TENANTS", doc="comma-separated tenant ids whose users may sign in; unset: every tenant"
    )
    auth_audience: str | None = _setting(
        "AUTH_AUDIENCE",
        doc="expected `aud` of bearer tokens: the API's application (client) id; unset: no bearer tokens",
    )
    auth_issuer: str | None = _setting(
        "AUTH_ISSUER",
        doc="expected `iss`, `{tenantid}` standing for the token's `tid`; defaults to Entra's v2.0 issuer",
    )
    auth_jwks_url: str | None = _setting("AUTH_JWKS_URL", doc="JWKS endpoint; defaults from AUTH_ENTRA_TENANT_ID")
    azure_site_name: str | None = _setting(
        "WEBSITE_SITE_NAME", doc="set by Azure on every function app; there x-ms-client-principal is always a 401"
    )
    auth_clock_skew_s: int = _setting("AUTH_CLOCK_SKEW_SECONDS", 120)

    # --- HTTP limits --------------------------------------------------------------------
    max_request_bytes: int = _setting("MAX_REQUEST_BYTES", 1_048_576, doc="largest JSON body an API accepts")

    # --- per-workspace caps (#17) -------------------------------------------------------
    max_collections: int = _setting("MAX_COLLECTIONS_PER_WORKSPACE", 1000, doc="collections a workspace may have")
    max_pending_invitations: int = _setting(
        "MAX_PENDING_INVITATIONS", 100, doc="invitations a workspace may have waiting for an answer"
    )
    max_api_keys: int = _setting("MAX_API_KEYS", 50, doc="API keys a workspace may have that are not revoked")

    # --- embeddings (fixed per index: changing them means re-embedding) -----------------
    embedding_provider: str = _setting(
        "EMBEDDING_PROVIDER", "local", doc="local (MiniLM on CPU, no network) | azure-openai"
    )
    embedding_model: str = _setting("EMBEDDING_MODEL", "all-MiniLM-L6-v2")
    embedding_dim: int = _setting("EMBEDDING_DIM", 384)
    embedding_batch_size: int = _setting("EMBEDDING_BATCH_SIZE", 64, doc="texts per Azure OpenAI request")
    embedding_timeout_s: float = _setting("EMBEDDING_TIMEOUT_SECONDS", 30.0)
    embedding_rate_limit_budget_s: float = _setting(
        "EMBEDDING_RATE_LIMIT_BUDGET_SECONDS", 60.0, doc="longest total wait on 429s before giving up (retried later)"
    )
    azure_openai_endpoint: str | None = _setting("AZURE_OPENAI_ENDPOINT", doc="https://<account>.openai.azure.com/")
    azure_openai_embedding_deployment: str | None = _setting("AZURE_OPENAI_EMBEDDING_DEPLOYMENT")
    azure_openai_api_version: str = _setting("AZURE_OPENAI_API_VERSION", "2024-10-21")

    # --- blob storage and uploads -------------------------------------------------------
    storage_connection_string: Secret | None = field(
        default=None,
        metadata=_secret("STORAGE_CONNECTION_STRING", doc="local/Azurite: account-key auth; unset in Azure"),
    )
    storage_account_url: str | None = _setting(
        "STORAGE_ACCOUNT_URL", doc="https://<account>.blob.core.windows.net; managed identity in Azure"
    )
    storage_public_url: str | None = _setting(
        "STORAGE_PUBLIC_URL", doc="blob endpoint as the browser sees it, if it differs (proxies)"
    )
    upload_container: str = _setting("UPLOAD_CONTAINER", "uploads")
    upload_sas_minutes: int = _setting("UPLOAD_SAS_MINUTES", 10, doc="lifetime of an upload URL")
    max_upload_bytes: int = _setting("MAX_UPLOAD_BYTES", 52_428_800, doc="largest document accepted (50 MiB)")

    # --- OCR for scans and images (Azure AI Document Intelligence, prebuilt-layout) ---------
    document_intelligence_endpoint: str | None = _setting(
        "DOCUMENT_INTELLIGENCE_ENDPOINT",
        doc="https://<account>.cognitiveservices.azure.com/ (app identity, Cognitive Services User); "
        "unset: scanned PDFs and images are refused",
    )
    document_intelligence_max_pages: int = _setting(
        "DOCUMENT_INTELLIGENCE_MAX_PAGES", 300, doc="larger scans are refused before anything is sent (or billed)"
    )
    document_intelligence_timeout_s: float = _setting(
        "DOCUMENT_INTELLIGENCE_TIMEOUT_SECONDS", 300.0, doc="longest wait for one analysis; then retried later"
    )

    # --- indexing queue -----------------------------------------------------------------
    index_queue_backend: str = _setting(
        "INDEX_QUEUE_BACKEND",
        "servicebus",
        doc="servicebus (Azure); postgres = the local host's peek-lock stand-in (devhost)",
    )
    index_queue_name: str = _setting("INDEX_QUEUE_NAME", "index-jobs")
    services_factory: str | None = _setting(
        "FOLIO_SERVICES_FACTORY",
        None,
        doc="module:function building the process's services instead of the production ones; "
        "devhost.services:local_services under `func start` on a developer machine; unset in Azure",
    )
    servicebus_namespace: str | None = _setting(
        "SERVICEBUS_NAMESPACE", doc="<name>.servicebus.windows.net (managed identity)"
    )
    index_max_delivery: int = _setting(
        "INDEX_MAX_DELIVERY", 5, doc="the queue's max delivery count; the last attempt marks the document failed"
    )

    # --- billing (Stripe) ----------------------------------------------------------------
    # Everything billing reads; the logic is in shared/billing/. Plans are one JSON value so a plan
    # change is one App Configuration edit, validated as a whole (shared/billing/plans.py).
    stripe_secret_key: Secret | None = field(
        default=None,
        metadata=_secret("STRIPE_SECRET_KEY", doc="Stripe API key (sk_test_/sk_live_ or a restricted rk_ key)"),
    )
    stripe_webhook_secret: Secret | None = field(
        default=None,
        metadata=_secret("STRIPE_WEBHOOK_SECRET", doc="signing secret (whsec_...) of the /api/stripe/webhook endpoint"),
    )
    stripe_api_base: str | None = _setting(
        "STRIPE_API_BASE", doc="override of https://api.stripe.com (tests point it at a loopback stand-in)"
    )
    stripe_max_network_retries: int = _setting(
        "STRIPE_MAX_NETWORK_RETRIES", 2, doc="retries of one Stripe call (same idempotency key)"
    )
    stripe_timeout_s: float = _setting("STRIPE_TIMEOUT_SECONDS", 10.0, doc="per Stripe HTTP request")
    billing_plans: str = _setting(
        "BILLING_PLANS",
        DEFAULT_BILLING_PLANS,
        doc="JSON: plan name -> {price, meteredPrices, meterEvents, limits}; see shared/billing/plans.py",
    )
    billing_free_plan: str = _setting(
        "BILLING_FREE_PLAN", "free", doc="plan of workspaces without a paid subscription (must have no price)"
    )
    billing_grace_days: int = _setting(
        "BILLING_GRACE_DAYS", 7, doc="days a workspace keeps its paid plan after a failed payment, then free"
    )
    billing_return_url: str = _setting(
        "BILLING_RETURN_URL",
        "http://127.0.0.1:4280/billing",
        doc="page Checkout and the Customer Portal send the user back to",
    )
    billing_flush_schedule: str = _setting(
        "BILLING_FLUSH_SCHEDULE",
        "0 * * * * *",
        doc="NCRONTAB of the billing timer (meter events to Stripe, subscription re-sync); read by the host",
    )
    billing_flush_batch: int = _setting("BILLING_FLUSH_BATCH", 200, doc="meter events sent per timer run")
    # --- end of billing ---------------------------------------------------------------------

    # --- chat ------------------------------------------------------------------------------
    # Everything chat reads; the logic is in shared/chat/. Sessions and messages live in Cosmos DB
    # (Entra auth in Azure, the emulator key locally); answers come from one provider chosen here.
    cosmos_endpoint: str | None = _setting(
        "COSMOS_ENDPOINT", doc="https://<account>.documents.azure.com:443/; locally the cosmosdb-server emulator"
    )
    cosmos_key: Secret | None = field(
        default=None,
        metadata=_secret(
            "COSMOS_KEY", doc="local emulator only; unset in Azure, where the app identity (Entra) is used"
        ),
    )
    cosmos_database: str = _setting("COSMOS_DATABASE", "folio")
    cosmos_chat_container: str = _setting(
        "COSMOS_CHAT_CONTAINER",
        "chat",
        doc="hierarchical partition key /tenantId, /userId (bicep/modules/cosmos.bicep)",
    )
    cosmos_timeout_s: float = _setting("COSMOS_TIMEOUT_SECONDS", 10.0, doc="per Cosmos DB request")
    chat_provider: str = _setting(
        "CHAT_PROVIDER",
        "extractive",
        doc="extractive (no network, quotes the best sentences) | azure-openai | openai | anthropic",
    )
    azure_openai_chat_deployment: str | None = _setting(
        "AZURE_OPENAI_CHAT_DEPLOYMENT", doc="chat model deployment on AZURE_OPENAI_ENDPOINT (Entra auth)"
    )
    openai_base_url: str = _setting("OPENAI_BASE_URL", "https://api.openai.com/v1")
    openai_api_key: Secret | None = field(
        default=None, metadata=_secret("OPENAI_API_KEY", doc="for CHAT_PROVIDER=openai")
    )
    openai_chat_model: str = _setting("OPENAI_CHAT_MODEL", "gpt-4o-mini")
    anthropic_base_url: str = _setting("ANTHROPIC_BASE_URL", "https://api.anthropic.com")
    anthropic_api_key: Secret | None = field(
        default=None, metadata=_secret("ANTHROPIC_API_KEY", doc="for CHAT_PROVIDER=anthropic")
    )
    anthropic_chat_model: str = _setting("ANTHROPIC_CHAT_MODEL", "claude-3-5-haiku-latest")
    chat_timeout_s: float = _setting(
        "CHAT_TIMEOUT_SECONDS", 30.0, doc="connect timeout and longest silence while a provider streams"
    )
    chat_max_seconds: float = _setting("CHAT_MAX_SECONDS", 120.0, doc="longest whole answer before it is cut off")
    chat_rate_limit_budget_s: float = _setting(
        "CHAT_RATE_LIMIT_BUDGET_SECONDS", 8.0, doc="longest total wait on provider 429s before answering with an error"
    )
    chat_max_output_tokens: int = _setting("CHAT_MAX_OUTPUT_TOKENS", 800)
    chat_sources: int = _setting("CHAT_SOURCES", 6, doc="passages retrieved and numbered in the prompt")
    chat_extractive_min_score: float | None = _setting(
        "CHAT_EXTRACTIVE_MIN_SCORE",
        doc="extractive answers refuse below this best-sentence score; unset: 0.41 with all-MiniLM-L6-v2 "
        "(calibrated on SciFact), 0.30 with other embedding models",
    )
    chat_history_turns: int = _setting("CHAT_HISTORY_TURNS", 3, doc="earlier turns used to rewrite and answer")
    chat_max_turns: int = _setting("CHAT_MAX_TURNS", 100, doc="turns per session; then a new session is needed")
    insights_retention_days: int = _setting(
        "INSIGHTS_RETENTION_DAYS",
        90,
        doc="days the texts of questions, searches and feedback are kept for owners' insights; then dropped",
    )
    chat_key_store: str = _setting(
        "CHAT_KEY_STORE", "none", doc="where users' own provider keys live: keyvault | local (dev only) | none"
    )
    chat_key_vault_url: str | None = _setting(
        "CHAT_KEY_VAULT_URL", doc="vault for users' provider keys (the app may write there, unlike KEY_VAULT_URL)"
    )
    chat_local_secrets_dir: str = _setting(
        "CHAT_LOCAL_SECRETS_DIR", ".local/secrets", doc="CHAT_KEY_STORE=local: directory of 0600 files"
    )
    # --- end of chat ------------------------------------------------------------------------

    # --- Azure configuration sources ----------------------------------------------------
    # Taken from the environment when settings first load: App Configuration cannot move itself or the vault.
    app_config_endpoint: str | None = _setting(
        "APP_CONFIG_ENDPOINT", doc="https://<store>.azconfig.io; unset: no App Configuration layer"
    )
    app_config_label: str | None = _setting("APP_CONFIG_LABEL", doc="defaults to FOLIO_ENVIRONMENT")
    app_config_sentinel_key: str = _setting(
        "APP_CONFIG_SENTINEL_KEY", "FOLIO_SENTINEL", doc="change it (same label) to publish a change of any key"
    )
    app_config_refresh_s: float = _setting(
        "APP_CONFIG_REFRESH_SECONDS", 30.0, doc="how often the sentinel is read, at most (1 s minimum in effect)"
    )
    key_vault_url: str | None = _setting(
        "KEY_VAULT_URL", doc="vault of the secret settings by name (DATABASE_URL -> database-url); unset: none"
    )
    key_vault_cache_s: float = _setting(
        "KEY_VAULT_CACHE_SECONDS",
        300.0,
        doc="how long a secret is cached; also how often Key Vault references are re-read (whole seconds, >= 1)",
    )

    # --- telemetry ----------------------------------------------------------------------
    applicationinsights_connection_string: Secret | None = field(
        default=None, metadata=_secret("APPLICATIONINSIGHTS_CONNECTION_STRING")
    )
    log_level: str = _setting("FOLIO_LOG_LEVEL", "INFO")

    # Where each value came from (field name -> source); for `folio config` diagnostics.
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def require(self, name: str) -> Any:
        """The value of field ``name``, or a :class:`ConfigError` that says where to set it."""
        value = getattr(self, name)
        if value is None or value == "":
            raise ConfigError(missing_setting_message(env_name(name)))
        if isinstance(value, Secret) and not value.is_set():
            raise ConfigError(missing_setting_message(env_name(name)))
        return value

    def describe(self) -> dict[str, Any]:
        """Every setting with its source, secrets masked: safe to print or log."""
        out: dict[str, Any] = {}
        for f in _fields():
            value = getattr(self, f.name)
            # Secrets are masked without being resolved: printing settings must not call Key Vault.
            shown = "***" if isinstance(value, Secret) else value
            out[f.metadata["env"]] = {"value": shown, "source": self.sources.get(f.name, "default")}
        return out


def _fields() -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(Settings) if "env" in f.metadata]


def env_name(field_name: str) -> str:
    for f in _fields():
        if f.name == field_name:
            return str(f.metadata["env"])
    raise KeyError(field_name)


def key_vault_secret_name(env: str) -> str:
    """Key Vault names allow only letters, digits and dashes: DATABASE_URL -> database-url."""
    return env.lower().replace("_", "-")


def missing_setting_message(env: str) -> str:
    return (
        f"Setting {env} is not set. Set it in local.settings.json (Values) or the environment, "
        f"in Azure App Configuration (key {env}, label of the environment), "
        f"or as Key Vault secret '{key_vault_secret_name(env)}' for secrets."
    )


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_url(url: str, setting: str) -> None:
    """Keys and tokens ride on requests to ``url``: plain http only to this machine (tests, local stand-ins)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise ConfigError(f"{setting} must be an https:// URL")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _coerce(env: str, raw: str, annotation: Any) -> Any:
    text = raw.strip()
    kind = annotation if isinstance(annotation, type) else None
    if kind is None:  # Optional[...] / unions: the non-None member decides
        args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
        kind = args[0] if args and isinstance(args[0], type) else str
    try:
        if kind is bool:
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        # Never echo the value: it may be a secret that landed in the wrong setting.
        kind_name = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, kind.__name__)
        raise ConfigError(f"Setting {env} must be {kind_name}.") from None
    return text


# --- loading ------------------------------------------------------------------------------


class SecretSource(Protocol):
    """What Key Vault looks like to this module: a (cached) lookup by secret name; None when there is none."""

    def get(self, name: str) -> str | None: ...


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    app_config: Mapping[str, str] | None = None,
    secrets: SecretSource | None = None,
) -> Settings:
    """Build :class:`Settings` from the layered sources.

    ``app_config`` is the already-fetched key/value view of App Configuration (Key Vault
    references resolved) and ``secrets`` the Key Vault cache; :class:`SettingsProvider` fetches
    both when the environment asks for them.
    """
    environ = os.environ if environ is None else environ
    hints = get_type_hints(Settings)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for f in _fields():
        env = f.metadata["env"]
        raw: str | None = None
        # An empty value means "unset": local.settings.json lists every key, most left blank.
        if environ.get(env, "").strip():
            raw, sources[f.name] = environ[env], "environment"
        if app_config is not None and app_config.get(env, "").strip():
            raw, sources[f.name] = app_config[env], "app-configuration"
        if f.metadata["secret"]:
            values[f.name] = _secret_field(env, raw, secrets, sources, f.name)
        elif raw is not None:
            values[f.name] = _coerce(env, raw, hints[f.name])
    return Settings(**values, sources=sources)


def _secret_field(
    env: str, raw: str | None, secrets: SecretSource | None, sources: dict[str, str], name: str
) -> Secret | None:
    if secrets is None:
        return None if raw is None else Secret(env, lambda: raw)
    vault_name = key_vault_secret_name(env)
    sources[name] = "key-vault" if raw is None else f"key-vault, else {sources[name]}"

    def resolve() -> str | None:
        value = secrets.get(vault_name)
        return value if value is not None else raw

    return Secret(env, resolve)


class SettingsProvider:
    """One :class:`Settings` per process, refreshed from App Configuration.

    ``environ`` is the environment layer (``os.environ`` when None). ``credential`` is the azure-core
    ``TokenCredential`` for App Configuration and Key Vault; when None, the process credential for
    ``AZURE_CLIENT_ID`` (:func:`shared.azure_credential.get_credential`) is used, created only if an Azure
    source is configured. ``client_options`` go to every Azure SDK client (transport, retry, TLS options).
    ``clock`` is the monotonic clock of the refresh interval and the Key Vault TTL.

    Refresh is pull-based and cheap: at most once per ``APP_CONFIG_REFRESH_SECONDS`` a call to :meth:`get`
    has the provider read the sentinel key; only when it changed is the label reloaded. A refresh that
    fails, or publishes a value that does not validate, keeps the last good settings and logs a warning.
    A first load that fails raises ``Unavailable`` (or ``ConfigError`` when waiting will not help);
    the next :meth:`get` tries again.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        *,
        credential: TokenCredential | None = None,
        client_options: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environ = environ
        self._credential = credential
        self._client_options = dict(client_options or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._app_config: AppConfiguration | None = None
        self._secrets: SecretSource | None = None
        self._next_check = 0.0

    def get(self) -> Settings:
        settings = self.cached()
        if settings is not None:
            return settings
        with self._lock:
            if self._settings is None:
                self._settings = self._load()
            elif self._app_config is not None and self._clock() >= self._next_check:
                self._refresh(self._settings, self._app_config)
            return self._settings

    def cached(self) -> Settings | None:
        """The settings if :meth:`get` would return them without loading or refreshing (no I/O)."""
        settings = self._settings
        if settings is not None and (self._app_config is None or self._clock() < self._next_check):
            return settings
        return None

    def _load(self) -> Settings:
        base = load_settings(self._environ)
        if not (base.app_config_endpoint or base.key_vault_url):
            return base
        from shared.azure_config import AppConfiguration, KeyVaultSecrets  # only when Azure sources are configured

        credential = self._credential or _process_credential(base.azure_client_id)
        if base.key_vault_url:
            self._secrets = KeyVaultSecrets(
                base.key_vault_url,
                credential,
                ttl_s=base.key_vault_cache_s,
                clock=self._clock,
                **self._client_options,
            )
        published: Mapping[str, str] | None = None
        if base.app_config_endpoint:
            self._app_config = AppConfiguration(
                base.app_config_endpoint,
                credential,
                label=base.app_config_label or base.environment,
                sentinel_key=base.app_config_sentinel_key,
                secret_refresh_s=base.key_vault_cache_s,
                **self._client_options,
            )
            published = self._app_config.values
            self._next_check = self._clock() + base.app_config_refresh_s
        return load_settings(self._environ, app_config=published, secrets=self._secrets)

    def _refresh(self, current: Settings, app_config: AppConfiguration) -> None:
        self._next_check = self._clock() + current.app_config_refresh_s
        try:
            published = app_config.refresh()
            if published is None:
                return
            # A malformed published value must not take the app down: validate before swapping.
            settings = load_settings(self._environ, app_config=published, secrets=self._secrets)
        except Exception as exc:  # keep serving the last good settings; say so once per interval
            reason = exc.detail if isinstance(exc, FolioError) else type(exc).__name__
            _log.warning("App Configuration refresh failed; keeping current settings: %s", reason)
            return
        self._settings = settings
        _log.info("settings reloaded from App Configuration")

    def reset(self) -> None:
        with self._lock:
            self._settings = None
            self._app_config = None
            self._secrets = None
            self._next_check = 0.0


def _process_credential(client_id: str | None) -> TokenCredential:
    from shared.azure_credential import get_credential

    return get_credential(client_id)


# The process-wide provider behind get_settings(); the composition root may construct its own instead.
_provider = SettingsProvider()


def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    return _provider.get()


def cached_settings() -> Settings | None:
    """The process-wide settings when they are loaded and fresh; ``None`` when getting them may do I/O."""
    return _provider.cached()


def reset_settings() -> None:
    """Forget cached settings (tests and the local host use this after changing the environment)."""
    _provider.reset()
