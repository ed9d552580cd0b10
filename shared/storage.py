"""Blob Storage: where uploads land, short-lived upload URLs, and capped downloads for the indexer."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from shared.config import Settings
from shared.errors import ConfigError, Invalid, Unavailable

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

# Blob names encode tenant, collection and document; the user's filename is metadata, never a path.
_BLOB_NAME = re.compile(r"^([0-9a-f-]{36})/([0-9a-f-]{36})/([0-9a-f-]{36})$")


@dataclass(frozen=True)
class BlobRef:
    tenant_id: UUID
    collection_id: UUID
    document_id: UUID

    @property
    def name(self) -> str:
        return f"{self.tenant_id}/{self.collection_id}/{self.document_id}"

    @classmethod
    def parse(cls, name: str) -> BlobRef:
        match = _BLOB_NAME.match(name)
        if not match:
            raise Invalid(f"Blob name {name[:200]!r} is not <tenant>/<collection>/<document>.")
        try:
            return cls(*(UUID(part) for part in match.groups()))
        except ValueError:
            raise Invalid("Blob name holds a malformed id.") from None


@dataclass(frozen=True)
class BlobVersion:
    etag: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class StoredBlob:
    """One blob as a listing shows it."""

    name: str
    size: int
    last_modified: dt.datetime


@dataclass(frozen=True)
class UploadUrl:
    url: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class ReadUrl:
    """A read-only URL for one blob, answered with the response headers the SAS fixes."""

    url: str
    expires_at: dt.datetime


class BlobMissing(Exception):
    """The blob (or that version of it) is gone: the job that wanted it is stale."""


class BlobTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} > {limit}")
        self.size, self.limit = size, limit


class AzureBlobStore:
    """The upload container (the ``BlobStore`` port). Account-key SAS on Azurite; user-delegation SAS
    with Entra (``credential``) in Azure."""

    def __init__(self, settings: Settings, credential: TokenCredential | None = None) -> None:
        from azure.storage.blob import BlobServiceClient

        self._container_name = settings.upload_container
        self._sas_minutes = settings.upload_sas_minutes
        self._public_url = (settings.storage_public_url or "").rstrip("/") or None
        self._delegation_key: Any = None
        self._delegation_expiry = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._lock = threading.Lock()
        if settings.storage_connection_string is not None and settings.storage_connection_string.is_set():
            self._service = BlobServiceClient.from_connection_string(
                settings.storage_connection_string.reveal(), connection_timeout=10, read_timeout=60
            )
            self._account_key = self._service.credential.account_key
        elif settings.storage_account_url and credential is not None:
            self._service = BlobServiceClient(settings.storage_account_url, credential=credential)
            self._account_key = None
        else:
            raise ConfigError("Blob storage needs STORAGE_ACCOUNT_URL (Azure) or STORAGE_CONNECTION_STRING (local).")
        self._container = self._service.get_container_client(self._container_name)

    @property
    def container(self) -> Any:
        """The upload container's client (the local Event Grid stand-in lists it)."""
        return self._container

    def ping(self) -> None:
        """Read the upload container's properties: proves the endpoint, the credential, the container."""
        try:
            # No retries: health answers now; the request path keeps the SDK's retry policy.
            self._container.get_container_properties(timeout=5, retry_total=0)
        except Exception as exc:
            raise Unavailable("Blob storage is unavailable.") from exc

    def ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            self._container.create_container()
        except ResourceExistsError:
            pass

    def allow_browser_uploads(self, origins: tuple[str, ...]) -> None:
        """Blob-service CORS so a browser can PUT with the upload SAS URL and GET with the read SAS URL
        (the in-app viewer fetches the original); Bicep sets the same rule in Azure."""
        if not origins:
            return
        from azure.storage.blob import CorsRule

        rule = CorsRule(
            list(origins),
            ["GET", "HEAD", "PUT", "OPTIONS"],
            # No x-ms-meta-*: an upload carries its bytes and type, nothing the app would have to trust.
            allowed_headers=["x-ms-blob-type", "content-type", "x-ms-blob-content-type"],
            exposed_headers=["etag"],
            max_age_in_seconds=600,
        )
        self._service.set_service_properties(cors=[rule])

    def upload_url(self, ref: BlobRef, now: dt.datetime | None = None) -> UploadUrl:
        """A SAS URL for exactly this blob: create only, valid for a few minutes, HTTPS-only in Azure.

        Create (``c``) lets the holder put a new blob in one request and nothing else. Write (``w``)
        would also let them lease the blob (a lease the app must break before it can delete), set
        its metadata, or overwrite it after it was checked, so it is not granted.
        """
        from azure.storage.blob import BlobSasPermissions

        now = now or dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(minutes=self._sas_minutes)
        return UploadUrl(self._sas_url(ref, BlobSasPermissions(create=True), now, expires), expires)

    def read_url(
        self, ref: BlobRef, *, minutes: int, content_type: str, disposition: str, now: dt.datetime | None = None
    ) -> ReadUrl:
        """A SAS URL that reads exactly this blob (read only: no write, delete, list or tags), valid for
        ``minutes``, HTTPS-only in Azure. The SAS fixes the response's ``Content-Type`` and
        ``Content-Disposition`` (``rsct``/``rscd``), whatever the uploader declared for the blob."""
        from azure.storage.blob import BlobSasPermissions

        now = now or dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(minutes=minutes)
        url = self._sas_url(
            ref, BlobSasPermissions(read=True), now, expires, content_type=content_type, content_disposition=disposition
        )
        return ReadUrl(url, expires)

    def _sas_url(
        self, ref: BlobRef, permission: Any, now: dt.datetime, expires: dt.datetime, **response_headers: str
    ) -> str:
        """A SAS URL for the one blob ``ref``: user-delegation SAS in Azure, account-key SAS on Azurite."""
        from azure.storage.blob import generate_blob_sas

        common: dict[str, Any] = {
            "account_name": self._service.account_name,
            "container_name": self._container_name,
            "blob_name": ref.name,
            "permission": permission,
            "expiry": expires,
            "start": now - dt.timedelta(minutes=2),  # tolerate clock skew on the client's side
            # Azure's endpoints are HTTPS; Azurite on a developer machine speaks plain HTTP.
            "protocol": "https" if self._service.url.startswith("https://") else None,
            **response_headers,
        }
        if self._account_key:
            token = generate_blob_sas(account_key=self._account_key, **common)
        else:
            token = generate_blob_sas(user_delegation_key=self._user_delegation_key(now, expires), **common)
        base = self._public_url or self._service.url.rstrip("/")
        return f"{base}/{self._container_name}/{ref.name}?{token}"

    def _user_delegation_key(self, now: dt.datetime, needed_until: dt.datetime) -> Any:
        # One key per few hours instead of a Storage round trip per upload.
        with self._lock:
            if self._delegation_key is None or self._delegation_expiry < needed_until:
                self._delegation_expiry = now + dt.timedelta(hours=6)
                self._delegation_key = self._service.get_user_delegation_key(now, self._delegation_expiry)
            return self._delegation_key

    def properties(self, ref: BlobRef) -> BlobVersion:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            props = self._container.get_blob_client(ref.name).get_blob_properties()
        except ResourceNotFoundError:
            raise BlobMissing(ref.name) from None
        except Exception as exc:
            raise Unavailable("Blob storage is unavailable.") from exc
        return BlobVersion(props.etag, props.size, props.content_settings.content_type)

    def download(self, ref: BlobRef, etag: str, max_bytes: int) -> bytes:
        """The blob's bytes, only if it is still version ``etag`` and at most ``max_bytes`` long."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        client = self._container.get_blob_client(ref.name)
        try:
            stream = client.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
            if stream.size > max_bytes:
                raise BlobTooLarge(stream.size, max_bytes)
            out = bytearray()
            for piece in stream.chunks():  # streamed, and capped even if the size header lied
                out += piece
                if len(out) > max_bytes:
                    raise BlobTooLarge(len(out), max_bytes)
            return bytes(out)
        except (ResourceNotFoundError, ResourceModifiedError):
            raise BlobMissing(ref.name) from None
        except (BlobTooLarge, BlobMissing):
            raise
        except Exception as exc:
            raise Unavailable("Blob storage is unavailable.") from exc

    def delete(self, ref: BlobRef) -> bool:
        """Delete the blob and its snapshots, breaking any lease on it first; False if it was not there."""
        return self.delete_name(ref.name)

    def delete_name(self, name: str) -> bool:
        """:meth:`delete` by blob name (the sweep also meets names outside Folio's layout)."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        client = self._container.get_blob_client(name)
        try:
            try:
                client.delete_blob(delete_snapshots="include")
            except HttpResponseError as exc:
                if getattr(exc, "error_code", None) not in ("LeaseIdMissing", "LeaseIdMismatchWithBlobOperation"):
                    raise
                # Somebody holds a lease (an upload URL from before leases were refused, or anyone
                # with write access): break it now, not when it ends, then delete.
                from azure.storage.blob import BlobLeaseClient

                BlobLeaseClient(client).break_lease(lease_break_period=0)
                client.delete_blob(delete_snapshots="include")
            return True
        except ResourceNotFoundError:
            return False
        except Exception as exc:
            raise Unavailable("Blob storage is unavailable.") from exc

    def list_blobs(self) -> Iterator[StoredBlob]:
        """Every blob in the upload container with its size and age (for the orphan sweep)."""
        try:
            for item in self._container.list_blobs():
                yield StoredBlob(item.name, item.size or 0, item.last_modified)
        except Exception as exc:
            raise Unavailable("Blob storage is unavailable.") from exc
