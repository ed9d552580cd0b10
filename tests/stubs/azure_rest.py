"""A local HTTPS stand-in for Key Vault secrets and App Configuration key-values, spoken to by the real SDKs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from azure.core.credentials import AccessToken

from tests.stubs.tls import HttpsStub

TENANT_ID = "00000000-0000-4000-8000-00000000f011"
KEY_VAULT = "key-vault"
APP_CONFIGURATION = "app-configuration"
PRIMARY_HOST = "127.0.0.1"
OTHER_HOST = "localhost"  # same server, addressed as a second vault

_KV_CONTENT_TYPE = "application/vnd.microsoft.appconfig.kv+json; charset=utf-8"
_KVSET_CONTENT_TYPE = "application/vnd.microsoft.appconfig.kvset+json; charset=utf-8"
_PROBLEM_CONTENT_TYPE = "application/problem+json; charset=utf-8"
KEY_VAULT_REF_CONTENT_TYPE = "application/vnd.microsoft.appconfig.keyvaultref+json;charset=utf-8"


class FakeCredential:
    """Stands in for Entra (which has no local form): one fixed token, and a record of what was asked for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            self.calls.append((scopes, dict(kwargs)))
        return AccessToken("fake", int(time.time()) + 365 * 24 * 3600)

    @property
    def scopes(self) -> set[str]:
        with self._lock:
            return {scope for scopes, _ in self.calls for scope in scopes}

    def tenants_for(self, scope: str) -> set[str | None]:
        with self._lock:
            return {kwargs.get("tenant_id") for scopes, kwargs in self.calls if scope in scopes}


@dataclass(frozen=True)
class RequestRecord:
    """One request as the stub saw it; ``host`` is the name the client addressed (the vault identity)."""

    service: str
    method: str
    host: str
    path: str
    query: dict[str, list[str]]
    authorized: bool
    status: int


@dataclass
class _SecretVersion:
    version: str
    value: str
    created: int


@dataclass
class _KeyValue:
    key: str
    label: str | None
    value: str | None
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    locked: bool = False
    etag: str = ""
    last_modified: str = ""

    def touch(self) -> None:
        # Any change gets a new etag, as the service does; that is what sentinel refresh relies on.
        self.etag = uuid.uuid4().hex
        self.last_modified = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")

    def to_json(self) -> dict[str, Any]:
        return {
            "etag": self.etag,
            "key": self.key,
            "label": self.label,
            "content_type": self.content_type,
            "value": self.value,
            "tags": dict(self.tags),
            "locked": self.locked,
            "last_modified": self.last_modified,
        }


def _split_filter(text: str) -> list[str]:
    """Split an App Configuration key/label filter on unescaped commas, keeping escapes for later."""
    parts, current, escaped = [], "", False
    for ch in text:
        if escaped:
            current += "\\" + ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def _matches(pattern: str, value: str | None) -> bool:
    if pattern == "*":
        return True
    if pattern == "\0":
        return value is None
    wildcard = pattern.endswith("*") and not pattern.endswith("\\*")
    literal = pattern[:-1] if wildcard else pattern
    literal = literal.replace("\\*", "*").replace("\\,", ",").replace("\\\\", "\\")
    if value is None:
        return False
    return value.startswith(literal) if wildcard else value == literal


def _filter_matches(filter_text: str | None, value: str | None) -> bool:
    # Omitting a filter means "any", per the REST reference.
    if filter_text is None:
        return True
    return any(_matches(p, value) for p in _split_filter(filter_text))


class AzureRestStub:
    """Key Vault secrets and App Configuration key-values over HTTPS on 127.0.0.1, with failure hooks.

    Secrets live per vault host: ``https://127.0.0.1:<port>`` and ``https://localhost:<port>`` are two
    vaults on one server. App Configuration answers on either name. Use as a context manager.
    """

    def __init__(self, *, tenant_id: str = TENANT_ID, page_size: int = 100) -> None:
        self.tenant_id = tenant_id
        self.page_size = page_size
        self._lock = threading.Lock()
        self._secrets: dict[tuple[str, str], list[_SecretVersion]] = {}
        self._settings: dict[tuple[str, str | None], _KeyValue] = {}
        self._failures: dict[str, tuple[int, str | None] | None] = {KEY_VAULT: None, APP_CONFIGURATION: None}
        self._log: list[RequestRecord] = []
        self._https = HttpsStub(_handler_for(self), name="azure-rest-stub", host=PRIMARY_HOST)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> AzureRestStub:
        self._https.start()
        return self

    def stop(self) -> None:
        self._https.stop()

    @property
    def ca_path(self) -> str:
        return self._https.ca_path

    def __enter__(self) -> AzureRestStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._https.port

    @property
    def url(self) -> str:
        return f"https://{PRIMARY_HOST}:{self.port}"

    @property
    def other_url(self) -> str:
        """The same server under another host name: a second Key Vault."""
        return f"https://{OTHER_HOST}:{self.port}"

    # --- Key Vault state ----------------------------------------------------------------

    def set_secret(self, name: str, value: str, *, host: str = PRIMARY_HOST) -> str:
        """Add a new current version of secret ``name`` (a rotation when it exists); returns the version."""
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets.setdefault((host, name), []).append(_SecretVersion(version, value, int(time.time())))
        return version

    def delete_secret(self, name: str, *, host: str = PRIMARY_HOST) -> None:
        with self._lock:
            self._secrets.pop((host, name), None)

    def secret_id(self, name: str, version: str | None = None, *, host: str = PRIMARY_HOST) -> str:
        base = f"https://{host}:{self.port}/secrets/{name}"
        return f"{base}/{version}" if version else base

    # --- App Configuration state --------------------------------------------------------

    def set_setting(
        self,
        key: str,
        value: str | None,
        *,
        label: str | None,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """Create or change a key-value; returns its new etag."""
        with self._lock:
            item = self._settings.get((key, label)) or _KeyValue(key, label, value)
            item.value, item.content_type, item.tags = value, content_type, dict(tags or {})
            item.touch()
            self._settings[(key, label)] = item
            return item.etag

    def set_key_vault_reference(self, key: str, secret_uri: str, *, label: str | None) -> str:
        return self.set_setting(
            key, json.dumps({"uri": secret_uri}), label=label, content_type=KEY_VAULT_REF_CONTENT_TYPE
        )

    def relabel_setting(self, key: str, *, label: str | None, new_label: str | None) -> None:
        with self._lock:
            item = self._settings.pop((key, label))
            item.label = new_label
            item.touch()
            self._settings[(key, new_label)] = item

    def delete_setting(self, key: str, *, label: str | None) -> None:
        with self._lock:
            self._settings.pop((key, label), None)

    # --- failure hooks and request log --------------------------------------------------

    def fail(self, service: str, status: int | None = 503, *, path: str | None = None) -> None:
        """Answer requests to ``service`` (only to ``path``, when given) with ``status``; ``None`` heals it."""
        assert service in self._failures, service
        with self._lock:
            self._failures[service] = None if status is None else (status, path)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def secret_reads(self, name: str, *, host: str = PRIMARY_HOST) -> int:
        """Requests that reached secret ``name`` (Key Vault's unauthenticated challenge round-trip excluded)."""
        return sum(
            1
            for r in self.requests
            if r.service == KEY_VAULT and r.host == host and r.path.split("/")[2:3] == [quote(name)] and r.status != 401
        )

    def list_reads(self) -> int:
        return sum(1 for r in self.requests if r.service == APP_CONFIGURATION and r.path == "/kv")

    def setting_reads(self, key: str) -> int:
        return sum(1 for r in self.requests if r.service == APP_CONFIGURATION and r.path == f"/kv/{quote(key)}")

    # --- request handling (called from server threads) ----------------------------------

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    def _failure(self, service: str, path: str) -> int | None:
        with self._lock:
            failure = self._failures[service]
        if failure is None or (failure[1] is not None and failure[1] != path):
            return None
        return failure[0]

    def _key_vault(self, host: str, path: str, query: dict[str, list[str]], authorized: bool) -> _Reply:
        failure = self._failure(KEY_VAULT, path)
        if failure is not None:
            return _Reply.json(
                failure, {"error": {"code": "ServiceUnavailable", "message": "The stub was told to fail."}}
            )
        if not authorized:
            # The SDK's first request carries no token; this challenge tells it which tenant and resource to use.
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                f'resource="https://vault.azure.net"'
            )
            body = {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}}
            return _Reply.json(401, body, headers={"WWW-Authenticate": challenge})
        if not query.get("api-version"):
            return _Reply.json(400, {"error": {"code": "BadParameter", "message": "api-version is required"}})
        parts = path.split("/")  # "", "secrets", name, [version]; the SDK sends "/secrets/name/" for latest
        if len(parts) < 3 or len(parts) > 4 or not parts[2]:
            return _Reply.json(400, {"error": {"code": "BadParameter", "message": "unsupported path"}})
        name = unquote(parts[2])
        version = unquote(parts[3]) if len(parts) == 4 and parts[3] else None
        with self._lock:
            versions = list(self._secrets.get((host, name), []))
        chosen = (
            versions[-1] if versions and version is None else next((v for v in versions if v.version == version), None)
        )
        if chosen is None:
            message = (
                f"A secret with (name/id) {name}{'/' + version if version else ''} was not found in this key vault. "
                "If you recently deleted this secret you may be able to recover it using the correct recovery command."
            )
            return _Reply.json(404, {"error": {"code": "SecretNotFound", "message": message}})
        bundle = {
            "value": chosen.value,
            "id": f"https://{host}:{self.port}/secrets/{name}/{chosen.version}",
            "attributes": {
                "enabled": True,
                "created": chosen.created,
                "updated": chosen.created,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }
        return _Reply.json(200, bundle)

    def _key_vault_write(
        self, method: str, host: str, path: str, query: dict[str, list[str]], authorized: bool, body: bytes
    ) -> _Reply:
        """PUT /secrets/{name} (set: a new version) and DELETE /secrets/{name}, as the secrets SDK sends them."""
        failure = self._failure(KEY_VAULT, path)
        if failure is not None:
            return _Reply.json(
                failure, {"error": {"code": "ServiceUnavailable", "message": "The stub was told to fail."}}
            )
        if not authorized:
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                f'resource="https://vault.azure.net"'
            )
            return _Reply.json(
                401, {"error": {"code": "Unauthorized", "message": "AKV10000"}}, headers={"WWW-Authenticate": challenge}
            )
        parts = path.rstrip("/").split("/")
        if len(parts) != 3 or not query.get("api-version"):
            return _Reply.json(400, {"error": {"code": "BadParameter", "message": "unsupported path"}})
        name = unquote(parts[2])
        if method == "DELETE":
            with self._lock:
                versions = self._secrets.pop((host, name), None)
            if not versions:
                return _Reply.json(404, {"error": {"code": "SecretNotFound", "message": f"{name} not found"}})
            # No recoveryId: the SDK treats the vault as having soft delete off and does not poll.
            return _Reply.json(
                200,
                {
                    "id": f"https://{host}:{self.port}/secrets/{name}/{versions[-1].version}",
                    "attributes": {"enabled": True},
                    "tags": {},
                },
            )
        payload = json.loads(body or b"{}")
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets.setdefault((host, name), []).append(
                _SecretVersion(version, payload.get("value", ""), int(time.time()))
            )
        return _Reply.json(
            200,
            {
                "value": payload.get("value", ""),
                "contentType": payload.get("contentType"),
                "id": f"https://{host}:{self.port}/secrets/{name}/{version}",
                "attributes": {"enabled": True, "created": int(time.time()), "updated": int(time.time())},
                "tags": payload.get("tags") or {},
            },
        )

    def _app_configuration(
        self, path: str, query: dict[str, list[str]], authorized: bool, if_none_match: str | None
    ) -> _Reply:
        failure = self._failure(APP_CONFIGURATION, path)
        if failure is not None:
            body = {
                "type": "https://azconfig.io/errors/service-unavailable",
                "title": "Stub failure",
                "status": failure,
            }
            return _Reply.json(failure, body, content_type=_PROBLEM_CONTENT_TYPE)
        if not authorized:
            challenge = 'Bearer realm="", error="invalid_token", error_description="The access token is missing"'
            body = {"type": "https://azconfig.io/errors/unauthorized", "title": "Unauthorized", "status": 401}
            return _Reply.json(401, body, headers={"WWW-Authenticate": challenge}, content_type=_PROBLEM_CONTENT_TYPE)
        if not query.get("api-version"):
            body = {
                "type": "https://azconfig.io/errors/invalid-argument",
                "title": "api-version missing",
                "status": 400,
            }
            return _Reply.json(400, body, content_type=_PROBLEM_CONTENT_TYPE)
        label_q = query.get("label", [None])[0]
        if path == "/kv":
            return self._list_page(query, label_q)
        key = unquote(path[len("/kv/") :])
        # A single GET names the label literally (no filter syntax); no label means the null label.
        with self._lock:
            item = self._settings.get((key, label_q))
            data = item.to_json() if item else None
        if data is None:
            body = {"type": "https://azconfig.io/errors/key-value-not-found", "title": "Not Found", "status": 404}
            return _Reply.json(404, body, content_type=_PROBLEM_CONTENT_TYPE)
        headers = {"ETag": f'"{data["etag"]}"', "Last-Modified": data["last_modified"]}
        if if_none_match and if_none_match.strip('"') == data["etag"]:
            return _Reply(304, b"", headers)
        return _Reply.json(200, data, headers=headers, content_type=_KV_CONTENT_TYPE)

    def _list_page(self, query: dict[str, list[str]], label_q: str | None) -> _Reply:
        key_q = query.get("key", [None])[0]
        after = query.get("after", [None])[0]
        with self._lock:
            items = sorted(
                (
                    i.to_json()
                    for i in self._settings.values()
                    if _filter_matches(key_q, i.key) and _filter_matches(label_q, i.label)
                ),
                key=lambda d: (d["key"], d["label"] or ""),
            )
        start = int(after) if after else 0
        page = items[start : start + self.page_size]
        body: dict[str, Any] = {"items": page}
        headers = {"ETag": '"' + hashlib.sha256(json.dumps(page).encode()).hexdigest()[:32] + '"'}
        if start + self.page_size < len(items):
            params = {k: v[0] for k, v in query.items() if k != "after"}
            params["after"] = str(start + self.page_size)
            link = "/kv?" + urlencode(params, quote_via=quote)
            body["@nextLink"] = link
            headers["Link"] = f'<{link}>; rel="next"'
        return _Reply.json(200, body, headers=headers, content_type=_KVSET_CONTENT_TYPE)


@dataclass
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        *,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> _Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": content_type, **(headers or {})})


def _handler_for(stub: AzureRestStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Keep-alive like the real services: the SDK pools connections, and HTTP/1.0 closes would race with reuse.
        protocol_version = "HTTP/1.1"
        # Headers and body go out as separate writes; with Nagle on, the client's delayed ACK adds ~40 ms each.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # http.server's naming
            split = urlsplit(self.path)
            # The App Configuration SDK lower-cases query names; Key Vault sends them as-is.
            query = {k.lower(): v for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            host = (self.headers.get("Host") or PRIMARY_HOST).rsplit(":", 1)[0]
            authorized = (self.headers.get("Authorization") or "").startswith("Bearer ")
            if split.path.startswith("/secrets/"):
                service = KEY_VAULT
                reply = stub._key_vault(host, split.path, query, authorized)
            elif split.path == "/kv" or split.path.startswith("/kv/"):
                service = APP_CONFIGURATION
                reply = stub._app_configuration(split.path, query, authorized, self.headers.get("If-None-Match"))
            else:
                service = "unknown"
                reply = _Reply.json(404, {"error": {"code": "NotFound", "message": split.path}})
            stub._record(RequestRecord(service, "GET", host, split.path, query, authorized, reply.status))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("x-ms-request-id", uuid.uuid4().hex)
            self.end_headers()
            self.wfile.write(reply.body)

        def _write(self) -> None:
            split = urlsplit(self.path)
            query = {k.lower(): v for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            host = (self.headers.get("Host") or PRIMARY_HOST).rsplit(":", 1)[0]
            authorized = (self.headers.get("Authorization") or "").startswith("Bearer ")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if split.path.startswith("/secrets/"):
                reply = stub._key_vault_write(self.command, host, split.path, query, authorized, body)
            else:
                reply = _Reply.json(405, {"error": {"code": "MethodNotAllowed", "message": split.path}})
            stub._record(RequestRecord(KEY_VAULT, self.command, host, split.path, query, authorized, reply.status))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        do_PUT = do_DELETE = _write  # http.server's naming

        def log_message(self, format: str, *args: Any) -> None:  # signature from http.server
            pass  # the request log on the stub is the record; stderr noise helps nobody

    return Handler
