"""Small test helpers: an HTTP client for the local host and principals for different users."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from shared.bootstrap import Services


def swa_principal(
    user: str,
    *,
    email: str | None = None,
    provider: str = "aad",
    roles: tuple[str, ...] = ("anonymous", "authenticated"),
) -> str:
    """The base64 header Static Web Apps sets after sign-in, for user ``user``."""
    payload = {
        "identityProvider": provider,
        "userId": f"id-{user}",
        "userDetails": email or f"{user}@example.com",
        "userRoles": list(roles),
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """HTTP over a real socket to the local Functions host."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)

    def as_user(self, user: str, **kwargs: Any) -> Client:
        return Client(self.base_url, {"x-ms-client-principal": swa_principal(user, **kwargs)})

    def with_headers(self, **headers: str) -> Client:
        return Client(self.base_url, {**self.headers, **{k.replace("_", "-"): v for k, v in headers.items()}})

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        split = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(split.netloc, timeout=30)
        all_headers = {**self.headers, **(headers or {})}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=body, headers=all_headers)
            raw = conn.getresponse()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        finally:
            conn.close()

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, json_body=json_body, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


@contextmanager
def using(**parts: Any) -> Iterator[Services]:
    """The app's services with ``parts`` in place of their own while the block runs.

    Goes through the composition root (``shared.bootstrap.install``), the way the local host
    hands in its stand-ins: nothing is patched. Parts given here are closed by whoever made them.
    """
    from shared import bootstrap

    previous = bootstrap.services()
    replaced = previous.replace(**parts)
    bootstrap.install(replaced)
    try:
        yield replaced
    finally:
        bootstrap.install(previous)
