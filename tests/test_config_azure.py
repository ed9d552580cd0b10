"""Settings from App Configuration and Key Vault, through the real Azure SDKs against a local HTTPS stub."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import shared.azure_config
import shared.config
from shared.azure_config import AppConfigSource, KeyVaultSecrets
from shared.config import SettingsProvider
from shared.errors import ConfigError, Unavailable
from tests.stubs.azure_rest import (
    APP_CONFIGURATION,
    KEY_VAULT,
    OTHER_HOST,
    TENANT_ID,
    AzureRestStub,
    FakeCredential,
)

INTERVAL = 0.2  # both the App Configuration refresh interval and the Key Vault TTL in these tests
KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
# An endpoint that is not *.azconfig.io gets the public-cloud audience.
APP_CONFIG_SCOPE = "https://appconfig.azure.com/.default"


class FakeClock:
    """Monotonic time that moves only when a test says so: TTLs and refresh intervals without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def stub() -> Iterator[AzureRestStub]:
    with AzureRestStub() as server:
        yield server


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # Both modules read time as `time.monotonic()`; swapping their `time` leaves the SDKs' clocks alone.
    monkeypatch.setattr(shared.config, "time", fake)
    monkeypatch.setattr(shared.azure_config, "time", fake)
    return fake


def azure_options(stub: AzureRestStub, credential: FakeCredential, **extra: Any) -> dict[str, Any]:
    return {
        "credential": credential,
        "connection_verify": stub.ca_path,
        # The stub's challenge names vault.azure.net, which 127.0.0.1 is not a subdomain of.
        "verify_challenge_resource": False,
        # The default policy retries a 503 with back-off for seconds; failure tests want the failure now.
        "retry_total": 0,
        **extra,
    }


def make_provider(
    stub: AzureRestStub, credential: FakeCredential, *, key_vault: bool = True, app_config: bool = True, **env: str
) -> SettingsProvider:
    environ = {
        "FOLIO_ENVIRONMENT": "test",
        "APP_CONFIG_REFRESH_SECONDS": str(INTERVAL),
        "KEY_VAULT_CACHE_SECONDS": str(INTERVAL),
        **env,
    }
    if app_config:
        environ["APP_CONFIG_ENDPOINT"] = stub.url
    if key_vault:
        environ["KEY_VAULT_URL"] = stub.url
    return SettingsProvider(environ=environ, azure_options=azure_options(stub, credential))


def requests_to(stub: AzureRestStub, service: str) -> int:
    return sum(1 for r in stub.requests if r.service == service)


# --- precedence -----------------------------------------------------------------------------


def test_app_configuration_overrides_environment(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "2048", label="test")
    provider = make_provider(stub, credential, key_vault=False, MAX_REQUEST_BYTES="1024", DATABASE_POOL_MAX="7")

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
    provider = make_provider(stub, credential, key_vault=False)

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
        return make_provider(stub, credential, key_vault=False, **env).get().max_request_bytes

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
    provider = make_provider(stub, credential, key_vault=False)
    assert provider.get().max_request_bytes == 1000
    assert stub.list_reads() == 1

    stub.set_setting("MAX_REQUEST_BYTES", "2000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "2", label="test")
    seen = len(stub.requests)
    clock.advance(INTERVAL / 2)
    assert provider.get().max_request_bytes == 1000  # sentinel changed, but the interval has not passed
    assert len(stub.requests) == seen  # not even the sentinel was read

    clock.advance(INTERVAL)
    assert provider.get().max_request_bytes == 2000
    assert stub.list_reads() == 2

    # A value changed without touching the sentinel is not published yet: one sentinel read, no reload.
    stub.set_setting("MAX_REQUEST_BYTES", "3000", label="test")
    sentinel_reads = stub.setting_reads("FOLIO_SENTINEL")
    clock.advance(INTERVAL * 1.5)
    assert provider.get().max_request_bytes == 2000
    assert stub.setting_reads("FOLIO_SENTINEL") == sentinel_reads + 1
    assert stub.list_reads() == 2


def test_sentinel_that_appears_or_disappears_counts_as_a_change(
    stub: AzureRestStub, credential: FakeCredential
) -> None:
    source = AppConfigSource(stub.url, label="test", sentinel_key="FOLIO_SENTINEL", **azure_options(stub, credential))
    assert source.sentinel_changed()  # never loaded
    source.load()
    assert not source.sentinel_changed()

    stub.set_setting("FOLIO_SENTINEL", "1", label="test")
    assert source.sentinel_changed()
    source.load()
    assert not source.sentinel_changed()

    stub.set_setting("FOLIO_SENTINEL", "1", label="prod")  # another environment's sentinel is not ours
    assert not source.sentinel_changed()

    stub.delete_setting("FOLIO_SENTINEL", label="test")
    assert source.sentinel_changed()


def test_every_page_is_loaded_and_feature_flags_are_skipped(stub: AzureRestStub, credential: FakeCredential) -> None:
    stub.page_size = 2
    for i in range(5):
        stub.set_setting(f"KEY_{i}", str(i), label="test")
    stub.set_setting(".appconfig.featureflag/Beta", json.dumps({"id": "Beta", "enabled": True}), label="test")
    stub.set_setting("UNSET_IN_PORTAL", None, label="test")
    source = AppConfigSource(stub.url, label="test", sentinel_key="FOLIO_SENTINEL", **azure_options(stub, credential))

    assert source.load() == {f"KEY_{i}": str(i) for i in range(5)}
    assert stub.list_reads() == 4  # 7 items, 2 per page, followed through @nextLink


def test_rotated_secret_is_picked_up_after_ttl(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_secret("database-url", "postgresql://app:first@db/folio")
    settings = make_provider(stub, credential, app_config=False).get()
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
    secrets = KeyVaultSecrets(stub.url, ttl_s=INTERVAL, **azure_options(stub, credential))
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
    settings = make_provider(stub, credential, app_config=False).get()
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
    secrets = KeyVaultSecrets(stub.url, ttl_s=INTERVAL, **azure_options(stub, credential))
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
    provider = make_provider(stub, credential, key_vault=False)
    first = provider.get()

    stub.set_setting("MAX_REQUEST_BYTES", "2000", label="test")
    stub.set_setting("FOLIO_SENTINEL", "2", label="test")
    stub.fail(APP_CONFIGURATION, 503)
    clock.advance(INTERVAL * 1.5)
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        assert provider.get() is first
    assert any("App Configuration refresh failed" in r.getMessage() for r in caplog.records)
    seen = len(stub.requests)
    assert provider.get() is first
    assert len(stub.requests) == seen  # the failure does not make every call try again

    # Worse case: the sentinel read works and the listing fails. The new etag must not be remembered,
    # or the change would never be retried.
    stub.fail(APP_CONFIGURATION, 503, path="/kv")
    clock.advance(INTERVAL * 1.5)
    assert provider.get() is first

    # Once healed, the next check reloads: the failures did not swallow the sentinel change.
    stub.fail(APP_CONFIGURATION, None)
    clock.advance(INTERVAL * 1.5)
    assert provider.get().max_request_bytes == 2000


def test_first_load_with_app_configuration_down_is_unavailable(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    stub.set_setting("MAX_REQUEST_BYTES", "1000", label="test")
    provider = make_provider(stub, credential, key_vault=False)
    stub.fail(APP_CONFIGURATION, 503)
    with pytest.raises(Unavailable):
        provider.get()
    stub.fail(APP_CONFIGURATION, None)
    assert provider.get().max_request_bytes == 1000


def test_missing_required_setting_names_it_and_where_to_set_it(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock
) -> None:
    settings = make_provider(stub, credential).get()

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
    provider = make_provider(stub, credential, DATABASE_ADMIN_URL=from_env)
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
    clock.advance(INTERVAL * 1.5)
    assert settings.database_url.reveal() == from_vault  # type: ignore[union-attr]
    assert provider.get() is settings

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


# --- option routing -------------------------------------------------------------------------


def test_azure_options_reach_the_right_clients(
    stub: AzureRestStub, credential: FakeCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azure.appconfiguration
    import azure.keyvault.secrets

    seen: dict[str, list[dict[str, Any]]] = {"app-config": [], "key-vault": []}

    class RecordingAppConfig(azure.appconfiguration.AzureAppConfigurationClient):
        def __init__(self, base_url: str, cred: Any, **kwargs: Any) -> None:
            seen["app-config"].append({"credential": cred, **kwargs})
            super().__init__(base_url, cred, **kwargs)

    class RecordingSecrets(azure.keyvault.secrets.SecretClient):
        def __init__(self, vault_url: str, cred: Any, **kwargs: Any) -> None:
            seen["key-vault"].append({"vault_url": vault_url, "credential": cred, **kwargs})
            super().__init__(vault_url, cred, **kwargs)

    monkeypatch.setattr(azure.appconfiguration, "AzureAppConfigurationClient", RecordingAppConfig)
    monkeypatch.setattr(azure.keyvault.secrets, "SecretClient", RecordingSecrets)
    stub.set_secret("database-url", "postgresql://app:x@db/folio")
    stub.set_secret("folio-audience", "api://folio", host=OTHER_HOST)
    stub.set_key_vault_reference("AUTH_AUDIENCE", stub.secret_id("folio-audience", host=OTHER_HOST), label="test")
    environ = {
        "FOLIO_ENVIRONMENT": "test",
        "APP_CONFIG_ENDPOINT": stub.url,
        "KEY_VAULT_URL": stub.url,
    }
    options = azure_options(stub, credential, audience="https://appconfig.azure.com/")
    settings = SettingsProvider(environ=environ, azure_options=options).get()
    assert settings.auth_audience == "api://folio"
    assert settings.database_url is not None and settings.database_url.reveal() == "postgresql://app:x@db/folio"

    [app_config] = seen["app-config"]
    assert app_config["credential"] is credential
    assert app_config["connection_verify"] == stub.ca_path and app_config["retry_total"] == 0
    assert app_config["audience"] == "https://appconfig.azure.com/"
    assert "verify_challenge_resource" not in app_config
    # One SecretClient per vault: the reference resolver's (other vault) and KEY_VAULT_URL's.
    assert sorted(c["vault_url"] for c in seen["key-vault"]) == sorted([stub.url, stub.other_url])
    for client in seen["key-vault"]:
        assert client["credential"] is credential
        assert client["verify_challenge_resource"] is False and client["connection_verify"] == stub.ca_path
        assert "audience" not in client
