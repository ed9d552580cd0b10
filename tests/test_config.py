"""Unit tests for load_settings: coercion, precedence, empty values and secret masking, no Azure involved."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import Secret, SecretSource, load_settings
from shared.errors import ConfigError

SECRET_URL = "postgresql://app:S3cret-Pa55@db/folio"


class DictSecrets(SecretSource):
    """A Key Vault stand-in: secret name -> value."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        return self.values.get(name)


@pytest.mark.parametrize("raw", ["1", "true", "True", "YES", "on", " true "])
def test_truthy_spellings_are_true(raw: str) -> None:
    assert load_settings({"FOLIO_DEV_MODE": raw}).dev_mode is True


@pytest.mark.parametrize("raw", ["0", "false", "FALSE", "no", "off"])
def test_falsy_spellings_are_false(raw: str) -> None:
    assert load_settings({"DATABASE_SERVER_PREPARE": raw}).database_server_prepare is False


def test_unknown_bool_names_the_variable() -> None:
    with pytest.raises(ConfigError) as bad:
        load_settings({"FOLIO_DEV_MODE": "maybe"})
    assert "FOLIO_DEV_MODE" in str(bad.value)


def test_numbers_are_coerced() -> None:
    settings = load_settings({"MAX_REQUEST_BYTES": " 2048 ", "DATABASE_POOL_TIMEOUT_SECONDS": "2.5"})
    assert settings.max_request_bytes == 2048
    assert settings.database_pool_timeout_s == 2.5


@pytest.mark.parametrize("raw", ["12kb", "1.5", "ten"])
def test_bad_int_names_the_variable_without_echoing_secrets(raw: str) -> None:
    with pytest.raises(ConfigError) as bad:
        load_settings({"MAX_REQUEST_BYTES": raw, "DATABASE_URL": SECRET_URL, "DATABASE_ADMIN_URL": SECRET_URL})
    message = str(bad.value)
    assert "MAX_REQUEST_BYTES" in message and "int" in message
    assert SECRET_URL not in message and "S3cret" not in message
    assert bad.value.status == 500


def test_optional_strings_are_kept_as_text() -> None:
    settings = load_settings({"AUTH_ENTRA_TENANT_ID": "contoso-tenant", "FOLIO_LOG_LEVEL": "DEBUG"})
    assert settings.auth_entra_tenant_id == "contoso-tenant"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_string_means_unset(blank: str) -> None:
    settings = load_settings(
        {
            "MAX_REQUEST_BYTES": blank,
            "DATABASE_SERVER_PREPARE": blank,  # default True: blank must not read as "false"
            "AUTH_AUDIENCE": blank,
            "DATABASE_URL": blank,
        }
    )
    assert settings.max_request_bytes == 1_048_576
    assert settings.database_server_prepare is True
    assert settings.auth_audience is None
    assert settings.database_url is None
    assert not {"max_request_bytes", "database_server_prepare", "auth_audience", "database_url"} & set(settings.sources)


def test_blank_app_configuration_value_does_not_hide_environment() -> None:
    settings = load_settings({"MAX_REQUEST_BYTES": "5000"}, app_config={"MAX_REQUEST_BYTES": ""})
    assert settings.max_request_bytes == 5000
    assert settings.sources["max_request_bytes"] == "environment"


def test_environment_overrides_default() -> None:
    settings = load_settings({"DATABASE_POOL_MAX": "9"})
    assert settings.database_pool_max == 9
    assert settings.describe()["DATABASE_POOL_MAX"] == {"value": 9, "source": "environment"}
    assert settings.describe()["DATABASE_POOL_MIN"] == {"value": 1, "source": "default"}


def test_app_configuration_overrides_environment() -> None:
    settings = load_settings({"DATABASE_POOL_MAX": "9"}, app_config={"DATABASE_POOL_MAX": "12"})
    assert settings.database_pool_max == 12
    assert settings.sources["database_pool_max"] == "app-configuration"


def test_variables_outside_the_environment_mapping_are_ignored() -> None:
    # An explicit mapping is the whole environment: nothing leaks in from os.environ.
    assert load_settings({}).max_request_bytes == 1_048_576


def test_secret_from_environment_is_masked() -> None:
    settings = load_settings({"DATABASE_URL": SECRET_URL})
    assert isinstance(settings.database_url, Secret)
    assert settings.database_url.reveal() == SECRET_URL
    assert settings.describe()["DATABASE_URL"] == {"value": "***", "source": "environment"}
    for text in (repr(settings), str(settings), repr(settings.describe()), repr(settings.database_url)):
        assert SECRET_URL not in text
    with pytest.raises(TypeError):
        pickle.dumps(settings.database_url)


def test_secret_source_wins_and_lower_sources_are_the_fallback() -> None:
    vault = DictSecrets({"database-url": "postgresql://app:from-vault@db/folio"})
    settings = load_settings(
        {"DATABASE_URL": SECRET_URL, "DATABASE_ADMIN_URL": "postgresql://owner:env@db/folio"}, secrets=vault
    )
    assert settings.database_url is not None and settings.database_admin_url is not None
    assert settings.database_url.reveal() == "postgresql://app:from-vault@db/folio"
    assert settings.database_admin_url.reveal() == "postgresql://owner:env@db/folio"
    assert settings.sources["database_url"] == "key-vault, else environment"

    # Rotation in the source shows at the next reveal: secrets resolve at use, not at load.
    vault.values["database-url"] = "postgresql://app:rotated@db/folio"
    assert settings.database_url.reveal() == "postgresql://app:rotated@db/folio"


def test_missing_secret_names_the_setting_and_its_key_vault_name() -> None:
    settings = load_settings({}, secrets=DictSecrets({}))
    assert settings.database_url is not None and not settings.database_url.is_set()
    with pytest.raises(ConfigError) as missing:
        settings.database_url.reveal()
    assert "DATABASE_URL" in str(missing.value) and "'database-url'" in str(missing.value)
    with pytest.raises(ConfigError, match="AUTH_AUDIENCE"):
        settings.require("auth_audience")


def test_without_azure_sources_no_azure_sdk_is_imported() -> None:
    # Local development: loading settings (not just importing the module) must not load an Azure SDK.
    probe = (
        "import json, sys\n"
        "from shared.config import get_settings\n"
        "settings = get_settings()\n"
        "print(json.dumps([settings.environment, sorted(m for m in sys.modules if m.startswith('azure'))]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "FOLIO_ENVIRONMENT": "dev", "APP_CONFIG_ENDPOINT": " "},
    )
    assert json.loads(out.stdout) == ["dev", []]
