"""GET /api/health reports each dependency, and 503 when the database is down."""

from __future__ import annotations

from typing import Any

from shared.config import get_settings
from shared.db import Database
from shared.storage import AzureBlobStore
from tests.helpers import Client, using


def test_health_is_200_with_database_ok_and_rls_enforced(client: Client) -> None:
    response = client.get("/api/health")
    assert response.status == 200
    report = response.json()
    db = report["checks"]["database"]
    assert report["status"] == "ok" and db["status"] == "ok", report
    assert db["rowLevelSecurity"] == "enforced" and db["migrated"] is True


def test_health_is_503_when_the_database_is_down(client: Client, settings_override: Any) -> None:
    # Nothing listens on port 9: connection refused, like a database that is down.
    settings_override(DATABASE_URL="postgresql://folio_app@127.0.0.1:9/folio", DATABASE_POOL_TIMEOUT_SECONDS="1")
    down = Database.from_settings(get_settings())
    with using(database=down):
        response = client.get("/api/health")
        assert response.status == 503
        report = response.json()
        assert report["status"] == "unavailable" and report["checks"]["database"]["status"] == "down"
        # API calls fail cleanly with problem+json, not a hang or a stack trace.
        api = client.as_user("someone").get("/api/collections")
        assert api.status == 503 and api.json()["type"].endswith("/unavailable")
        assert "127.0.0.1:9" not in api.body.decode()
    down.close()


def test_health_reports_when_the_app_role_bypasses_rls(
    client: Client, settings_override: Any, database_urls: dict[str, str]
) -> None:
    settings_override(DATABASE_URL=database_urls["admin"])  # a superuser: RLS does not apply to it
    superuser = Database.from_settings(get_settings())
    with using(database=superuser):
        db = client.get("/api/health").json()["checks"]["database"]
        assert db["rowLevelSecurity"] == "bypassed"
    superuser.close()


def test_health_reports_storage_and_is_degraded_not_down_without_it(client: Client, settings_override: Any) -> None:
    report = client.get("/api/health").json()
    assert report["checks"]["storage"]["status"] == "ok"
    settings_override(
        STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Zm9v;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    with using(blobs=AzureBlobStore(get_settings())):
        response = client.get("/api/health")
        assert response.status == 200
        report = response.json()
        assert report["status"] == "degraded" and report["checks"]["storage"]["status"] == "down"
        assert "Zm9v" not in response.body.decode()
