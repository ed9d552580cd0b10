"""Settings from App Configuration and Key Vault, through the real Azure SDKs against a local HTTPS stub.

App Configuration is read by ``azure-appconfiguration-provider``; Key Vault secrets by name by ``SecretClient``.
Folio's own refresh interval and Key Vault TTL run on a fake clock handed to the provider. The App Configuration
provider also keeps a wall-clock timer of its own (1 s, its minimum), so a test that expects a refresh first lets
one real second pass (:func:`settle`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared.azure_config import AppConfiguration, KeyVaultSecrets
from shared.config import SettingsProvider
from shared.errors import ConfigError, Unavailable
from tests.stubs.azure_rest import (
    APP_CONFIGURATION,
    KEY_VAULT,
    OTHER_HOST,
    PRIMARY_HOST,
    TENANT_ID,
    AzureRestStub,
    FakeCredential,
)

INTERVAL = 0.2  # both the App Configuration refresh interval and the Key Vault TTL in these tests
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
# An endpoint that is not *.azconfig.io gets the public-cloud audience.
APP_CONFIG_SCOPE = "https://appconfig.azure.com/.default"
FEATURE_FLAG_CONTENT_TYPE = "application/vnd.microsoft.appconfig.ff+json;charset=utf-8"


class FakeClock:
    """Monotonic time that moves only when a test says so: TTLs and refresh intervals without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def settle() -> None:
    """Let the provider's own refresh timer (wall clock, 1 s minimum, also its back-off after a failure) run out."""
    time.sleep(1.05)


@pytest.fixture
def stub() -> Iterator[AzureRestStub]:
    with AzureRestStub() as server:
        yield server


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def client_options(stub: AzureRestStub, **extra: Any) -> dict[str, Any]:
    return {
        "connection_verify": stub.ca_path,
        # The stub's challenge names vault.azure.net, which 127.0.0.1 is not a subdomain of.
        "verify_challenge_resource": False,
        # The default policy retries a 503 with back-off for seconds; failure tests want the failure now.
        "retry_total": 0,
        **extra,
    }


def make_provider(
    stub: AzureRestStub,
    credential: FakeCredential,
    clock: FakeClock,
    *,
    key_vault: bool = True,
    app_config: bool = True,
    env: dict[str, str] | None = None,
    **more_env: str,
) -> SettingsProvider:
    environ = {
        "FOLIO_ENVIRONMENT": "test",
        "APP_CONFIG_REFRESH_SECONDS": str(INTERVAL),
        "KEY_VAULT_CACHE_SECONDS": str(INTERVAL),
        **(env or {}),
        **more_env,
    }
    if app_config:
        environ["APP_CONFIG_ENDPOINT"] = stub.url
    if key_vault:
        environ["KEY_VAULT_URL"] = stub.url
    return SettingsProvider(environ, credential=credential, client_options=client_options(stub), clock=clock.monotonic)


def requests_to(stub: AzureRestStub, service: str) -> int:
    return sum(1 for r in stub.requests if r.service == service)


# --- precedence -----------------------------------------------------------------------------


def test_app_configuration_overrides_environment(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "2048", label="test")
    provider = make_provider(stub, credential, clock, key_vault=False, MAX_REQUEST_BYTES="1024", DATABASE_POOL_MAX="7")

    settings = provider.get()

    assert settings.max_request_bytes == 2048
    assert settings.describe()["MAX_REQUEST_BYTES"] == {"value": 2048, "source": "app-configuration"}
    assert settings.database_pool_max == 7  # not in App Configuration: the environment still counts
    assert settings.sources["database_pool_max"] == "environment"
    assert settings.embedding_dim == 384  # and defaults under both
    assert credential.scopes == {APP_CONFIG_SCOPE}
    app_config_requests = [r for r in stub.requests if r.service == APP_CONFIGURATION]
    assert app_config_requests and all(r.authorized for r in app_config_requests)


def test_key_vault_secret_overrides_other_sources(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_secret("database-url", "postgresql://app:from-vault@db/folio")
    stub.set_setting("DATABASE_URL", "postgresql://app:from-app-config@db/folio", label="test")
    provider = make_provider(
        stub,
        credential,
        clock,
        DATABASE_URL="postgresql://app:from-env@db/folio",
        DATABASE_ADMIN_URL="postgresql://owner:from-env@db/folio",
    )

    settings = provider.get()

    assert settings.database_url is not None and settings.database_admin_url is not None
    assert settings.database_url.reveal() == "postgresql://app:from-vault@db/folio"
    assert settings.sources["database_url"] == "key-vault, else app-configuration"
    # No such secret in the vault (a 404): the lower sources still answer.
    assert settings.database_admin_url.reveal() == "postgresql://owner:from-env@db/folio"
    assert stub.secret_reads("database-admin-url") == 1
    # The token was asked for the resource and tenant that the vault's 401 challenge named.
    assert KEY_VAULT_SCOPE in credential.scopes
    assert credential.tenants_for(KEY_VAULT_SCOPE) == {TENANT_ID}


def test_key_vault_reference_in_app_configuration_is_resolved(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    # The referenced vault is not KEY_VAULT_URL (which is not even set): a second vault on the same stub.
    stub.set_secret("folio-db", "postgresql://app:by-reference@db/folio", host=OTHER_HOST)
    pinned = stub.set_secret("folio-audience", "api://folio-v1", host=OTHER_HOST)
    stub.set_secret("folio-audience", "api://folio-v2", host=OTHER_HOST)
    stub.set_key_vault_reference("DATABASE_URL", stub.secret_id("folio-db", host=OTHER_HOST), label="test")
    stub.set_key_vault_reference(
        "AUTH_AUDIENCE", stub.secret_id("folio-audience", pinned, host=OTHER_HOST), label="test"
    )
    provider = make_provider(stub, credential, clock, key_vault=False)

    settings = provider.get()

    assert settings.database_url is not None
    assert settings.database_url.reveal() == "postgresql://app:by-reference@db/folio"
    assert settings.sources["database_url"] == "app-configuration"
    assert settings.auth_audience == "api://folio-v1"  # a versioned reference stays on its version
    assert stub.secret_reads("folio-db", host=OTHER_HOST) == 1
    assert all(r.host == OTHER_HOST for r in stub.requests if r.service == KEY_VAULT)
    assert credential.scopes == {APP_CONFIG_SCOPE, KEY_VAULT_SCOPE}


def test_label_selects_environment(stub: AzureRestStub, credential: FakeCredential, clock: FakeClock) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "111", label="test")
    stub.set_setting("MAX_REQUEST_BYTES", "222", label="prod")
    stub.set_setting("MAX_REQUEST_BYTES", "333", label=None)
    stub.set_setting("MAX_REQUEST_BYTES", "444", label="prod,eu")  # filter syntax in a label must stay literal

    def max_bytes(**env: str) -> int:
        return make_provider(stub, credential, clock, key_vault=False, env=env).get().max_request_bytes

    assert max_bytes(FOLIO_ENVIRONMENT="test") == 111
    assert max_bytes(FOLIO_ENVIRONMENT="prod") == 222
    assert max_bytes(FOLIO_ENVIRONMENT="prod", APP_CONFIG_LABEL="test") == 111
    assert max_bytes(FOLIO_ENVIRONMENT="prod", APP_CONFIG_LABEL="prod,eu") == 444
    assert max_bytes(FOLIO_ENVIRONMENT="staging") == 1_048_576  # nothing under that label: the default


# --- refresh and rotation -------------------------------------------------------------------


def test_settings_refresh_only_after_sentinel_changes(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "1000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "1", label="test")
    provider = make_provider(stub, credential, clock, key_vault=False)
    assert provider.get().max_request_bytes == 1000
    assert stub.list_reads() == 1

    stub.set_setting("MAX_REQUEST_BYTES", "2000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "2", label="test")
    settle()
    seen = len(stub.requests)
    clock.advance(INTERVAL / 2)
    assert provider.cached() is not None
    assert provider.get().max_request_bytes == 1000  # sentinel changed, but the interval has not passed
    assert len(stub.requests) == seen  # not even the sentinel was read

    clock.advance(INTERVAL)
    assert provider.cached() is None  # the next get() may do I/O: the HTTP layer calls it off the event loop
    assert provider.get().max_request_bytes == 2000
    assert stub.list_reads() == 2

    # A value changed without touching the sentinel is not published yet: one sentinel read, no reload.
    stub.set_setting("MAX_REQUEST_BYTES", "3000", label="test")
    sentinel_reads = stub.setting_reads("FOLIO_SENTINEL")
    settle()
    clock.advance(INTERVAL * 1.5)
    assert provider.get().max_request_bytes == 2000
    assert stub.setting_reads("FOLIO_SENTINEL") == sentinel_reads + 1
    assert stub.list_reads() == 2


def test_sentinel_that_appears_or_disappears_counts_as_a_change(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "1000", label="test")
    provider = make_provider(stub, credential, clock, key_vault=False)  # no sentinel yet
    assert provider.get().max_request_bytes == 1000

    def after_next_check() -> int:
        settle()
        clock.advance(INTERVAL * 1.5)
        return provider.get().max_request_bytes

    stub.set_setting("MAX_REQUEST_BYTES", "2000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "1", label="test")  # appears
    assert after_next_check() == 2000

    stub.set_setting("MAX_REQUEST_BYTES", "3000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "1", label="prod")  # another environment's sentinel is not ours
    assert after_next_check() == 2000

    stub.delete_setting("FOLIO_SENTINEL", label="test")  # disappears
    assert after_next_check() == 3000
    assert stub.list_reads() == 3


def test_every_page_is_loaded_and_feature_flags_are_skipped(stub: AzureRestStub, credential: FakeCredential) -> None:
    stub.page_size = 2
    for i in range(5):
        stub.set_setting(f"KEY_{i}", str(i), label="test")
    stub.set_setting(
        ".appconfig.featureflag/Beta",
        json.dumps({"id": "Beta", "enabled": True, "conditions": {"client_filters": []}}),
        label="test",
        content_type=FEATURE_FLAG_CONTENT_TYPE,
    )
    stub.set_setting("UNSET_IN_PORTAL", None, label="test")
    stub.set_setting("BILLING_PLANS", '{"free": {"limits": {}}}', label="test", content_type="application/json")
    source = AppConfiguration(
        stub.url, credential, label="test", sentinel_key="FOLIO_SENTINEL", secret_refresh_s=60, **client_options(stub)
    )

    # JSON values come back as JSON text: settings are coerced from text, and plans are validated as JSON.
    assert source.values == {**{f"KEY_{i}": str(i) for i in range(5)}, "BILLING_PLANS": '{"free": {"limits": {}}}'}
    assert stub.list_reads() == 4  # 8 items, 2 per page, followed through @nextLink


def test_rotated_secret_is_picked_up_after_ttl(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_secret("database-url", "postgresql://app:first@db/folio")
    settings = make_provider(stub, credential, clock, app_config=False).get()
    assert settings.database_url is not None
    assert settings.database_url.reveal() == "postgresql://app:first@db/folio"
    assert stub.secret_reads("database-url") == 1

    stub.set_secret("database-url", "postgresql://app:rotated@db/folio")
    clock.advance(INTERVAL / 2)
    assert settings.database_url.reveal() == "postgresql://app:first@db/folio"  # cached: no request
    assert stub.secret_reads("database-url") == 1

    clock.advance(INTERVAL)
    # Same Settings object, no reload or restart: the secret resolves through the cache at use.
    assert settings.database_url.reveal() == "postgresql://app:rotated@db/folio"
    assert stub.secret_reads("database-url") == 2


def test_concurrent_reads_of_an_expired_secret_fetch_it_once(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_secret("database-url", "postgresql://app:one@db/folio")
    secrets = KeyVaultSecrets(stub.url, credential, ttl_s=INTERVAL, clock=clock.monotonic, **client_options(stub))
    assert secrets.get("database-url") == "postgresql://app:one@db/folio"
    stub.set_secret("database-url", "postgresql://app:two@db/folio")
    clock.advance(INTERVAL * 1.5)

    start = threading.Barrier(8)
    results: list[str | None] = []

    def read() -> None:
        start.wait()
        results.append(secrets.get("database-url"))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert results == ["postgresql://app:two@db/folio"] * 8
    assert stub.secret_reads("database-url") == 2


# --- failures -------------------------------------------------------------------------------


def test_stale_secret_served_when_key_vault_fails(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    stub.set_secret("database-url", "postgresql://app:cached@db/folio")
    stub.set_secret("database-admin-url", "postgresql://owner:never-read@db/folio")
    settings = make_provider(stub, credential, clock, app_config=False).get()
    assert settings.database_url is not None and settings.database_admin_url is not None
    assert settings.database_url.reveal() == "postgresql://app:cached@db/folio"

    stub.fail(KEY_VAULT, 503)
    clock.advance(INTERVAL * 1.5)
    with caplog.at_level(logging.WARNING, logger="shared.azure_config"):
        assert settings.database_url.reveal() == "postgresql://app:cached@db/folio"
    warnings = [r for r in caplog.records if r.name == "shared.azure_config" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "'database-url'" in warnings[0].getMessage()
    assert "cached@" not in caplog.text

    # The failed refresh is not retried by every caller: the next attempt waits out the back-off.
    reads = stub.secret_reads("database-url")
    assert settings.database_url.reveal() == "postgresql://app:cached@db/folio"
    assert stub.secret_reads("database-url") == reads

    # Nothing cached to fall back on: the caller learns the dependency is down (503, retryable).
    with pytest.raises(Unavailable) as unavailable:
        settings.database_admin_url.reveal()
    assert "database-admin-url" in str(unavailable.value) and "never-read" not in str(unavailable.value)

    stub.fail(KEY_VAULT, None)
    stub.set_secret("database-url", "postgresql://app:after-outage@db/folio")
    clock.advance(INTERVAL * 1.5)
    assert settings.database_url.reveal() == "postgresql://app:after-outage@db/folio"
    assert settings.database_admin_url.reveal() == "postgresql://owner:never-read@db/folio"


def test_key_vault_refusal_is_a_configuration_error(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_secret("database-url", "postgresql://app:cached@db/folio")
    secrets = KeyVaultSecrets(stub.url, credential, ttl_s=INTERVAL, clock=clock.monotonic, **client_options(stub))
    assert secrets.get("database-url") == "postgresql://app:cached@db/folio"

    # A 403 (role assignment removed, secret disabled) will not heal by waiting; a stale value would hide it.
    stub.fail(KEY_VAULT, 403)
    clock.advance(INTERVAL * 1.5)
    with pytest.raises(ConfigError) as refused:
        secrets.get("database-url")
    assert "database-url" in str(refused.value) and "Key Vault Secrets User" in str(refused.value)


def test_app_configuration_down_keeps_last_good_settings(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "1000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "1", label="test")
    provider = make_provider(stub, credential, clock, key_vault=False)
    first = provider.get()

    stub.set_setting("MAX_REQUEST_BYTES", "2000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "2", label="test")
    stub.fail(APP_CONFIGURATION, 503)
    settle()
    clock.advance(INTERVAL * 1.5)
    before = len(stub.requests)
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        assert provider.get() is first
    assert any("App Configuration refresh failed" in r.getMessage() for r in caplog.records)
    # It looked once (retry_total=0 reached the provider's client) and failed.
    assert [(r.path, r.status) for r in stub.requests[before:]] == [("/kv/FOLIO_SENTINEL", 503)]
    seen = len(stub.requests)
    assert provider.get() is first
    assert len(stub.requests) == seen  # the failure does not make every call try again

    # Worse case: the sentinel read works and the listing fails. The new etag must not be remembered,
    # or the change would never be retried.
    stub.fail(APP_CONFIGURATION, 503, path="/kv")
    settle()
    clock.advance(INTERVAL * 1.5)
    assert provider.get() is first
    assert [(r.path, r.status) for r in stub.requests[seen:]] == [("/kv/FOLIO_SENTINEL", 200), ("/kv", 503)]

    # Once healed, the next check reloads: the failures did not swallow the sentinel change.
    stub.fail(APP_CONFIGURATION, None)
    settle()
    clock.advance(INTERVAL * 1.5)
    assert provider.get().max_request_bytes == 2000


def test_first_load_with_app_configuration_down_is_unavailable(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "1000", label="test")
    provider = make_provider(stub, credential, clock, key_vault=False)
    stub.fail(APP_CONFIGURATION, 503)
    with pytest.raises(Unavailable) as unavailable:
        provider.get()  # one pass, then the provider's 5 s minimum before it reports a start-up failure
    assert stub.url in str(unavailable.value) and "HTTP 503" in str(unavailable.value)
    assert provider.cached() is None
    stub.fail(APP_CONFIGURATION, None)
    assert provider.get().max_request_bytes == 1000


def test_key_vault_reference_to_a_missing_secret_is_a_configuration_error(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_key_vault_reference("DATABASE_URL", stub.secret_id("deleted-db", host=OTHER_HOST), label="test")
    provider = make_provider(stub, credential, clock, key_vault=False)
    with pytest.raises(ConfigError) as broken:
        provider.get()  # waiting will not fix it: a 500 that names the reference, not a 503
    message = str(broken.value)
    assert "Key Vault reference" in message and f"{stub.other_url}/secrets/deleted-db" in message


def test_missing_required_setting_names_it_and_where_to_set_it(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    settings = make_provider(stub, credential, clock).get()

    with pytest.raises(ConfigError) as missing:
        settings.require("auth_audience")
    message = str(missing.value)
    assert "AUTH_AUDIENCE" in message
    assert "local.settings.json" in message and "App Configuration" in message

    # A secret in none of the sources (Key Vault answered 404): named, with its Key Vault name too.
    assert settings.database_url is not None
    with pytest.raises(ConfigError) as missing_secret:
        settings.database_url.reveal()
    assert "DATABASE_URL" in str(missing_secret.value) and "'database-url'" in str(missing_secret.value)
    with pytest.raises(ConfigError):
        settings.require("database_url")


def test_secrets_never_appear_in_repr_describe_or_logs(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    from_vault = "postgresql://app:Vault-Pa55@db/folio"
    from_reference = "InstrumentationKey=ref-0b5e55ed;IngestionEndpoint=https://x"
    from_env = "postgresql://owner:Env-Pa55@db/folio"
    stub.set_secret("database-url", from_vault)
    stub.set_secret("ai-connection", from_reference, host=OTHER_HOST)
    stub.set_key_vault_reference(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", stub.secret_id("ai-connection", host=OTHER_HOST), label="test"
    )
    stub.set_setting("FOLIO_SENTINEL", "1", label="test")
    caplog.set_level(logging.DEBUG)  # SDK and transport logging included
    provider = make_provider(stub, credential, clock, DATABASE_ADMIN_URL=from_env)
    settings = provider.get()
    revealed = {
        settings.database_url.reveal(),  # type: ignore[union-attr]
        settings.database_admin_url.reveal(),  # type: ignore[union-attr]
        settings.applicationinsights_connection_string.reveal(),  # type: ignore[union-attr]
    }
    assert revealed == {from_vault, from_env, from_reference}

    # The failure paths log too: a stale Key Vault value, then a failed App Configuration refresh.
    stub.fail(KEY_VAULT, 503)
    stub.fail(APP_CONFIGURATION, 503)
    stub.set_setting("FOLIO_SENTINEL", "2", label="test")
    settle()
    clock.advance(INTERVAL * 1.5)
    assert settings.database_url.reveal() == from_vault  # type: ignore[union-attr]
    assert provider.get() is settings
    assert any("App Configuration refresh failed" in r.getMessage() for r in caplog.records)

    shown = [
        repr(settings),
        str(settings),
        repr(settings.describe()),
        json.dumps(settings.describe(), default=str),
        repr(settings.database_url),
        str(settings.database_admin_url),
        caplog.text,
        *(str(r.args) for r in caplog.records),
    ]
    assert any("database-url" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert settings.describe()["DATABASE_URL"] == {"value": "***", "source": "key-vault"}
    for secret in (from_vault, from_reference, from_env):
        for text in shown:
            assert secret not in text


# --- client options -------------------------------------------------------------------------


def test_client_options_reach_every_azure_client(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    # TLS to the stub works only with connection_verify (its certificate is its own root), and a Key Vault
    # client accepts the stub's challenge only with verify_challenge_resource=False: every request succeeding
    # shows both reached the App Configuration client, the provider's reference resolver and KEY_VAULT_URL's.
    stub.set_secret("database-url", "postgresql://app:x@db/folio")
    stub.set_secret("folio-audience", "api://folio", host=OTHER_HOST)
    stub.set_key_vault_reference("AUTH_AUDIENCE", stub.secret_id("folio-audience", host=OTHER_HOST), label="test")
    settings = make_provider(stub, credential, clock).get()
    assert settings.auth_audience == "api://folio"
    assert settings.database_url is not None and settings.database_url.reveal() == "postgresql://app:x@db/folio"
    assert {r.host for r in stub.requests if r.service == KEY_VAULT and r.status == 200} == {PRIMARY_HOST, OTHER_HOST}
    # Nothing else failed, apart from Key Vault's challenge round trip (401) and the absent sentinel (404).
    assert {(r.path, r.status) for r in stub.requests if r.status not in (200, 401)} == {("/kv/FOLIO_SENTINEL", 404)}
    assert credential.scopes == {APP_CONFIG_SCOPE, KEY_VAULT_SCOPE}

    # The control: without connection_verify the same vault is unreachable.
    untrusting = KeyVaultSecrets(stub.url, credential, ttl_s=INTERVAL, verify_challenge_resource=False, retry_total=0)
    with pytest.raises(Unavailable):
        untrusting.get("database-url")

    # retry_total=0 reached Folio's SecretClient too: a 503 is asked once, not retried with back-off.
    stub.fail(KEY_VAULT, 503)
    before = len(stub.requests)
    with pytest.raises(Unavailable):
        KeyVaultSecrets(stub.url, credential, ttl_s=INTERVAL, **client_options(stub)).get("folio-new")
    assert [(r.path, r.status) for r in stub.requests[before:]] == [("/secrets/folio-new/", 503)]
