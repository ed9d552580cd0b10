"""Serves the built web app (frontend/dist) on :4280 as Static Web Apps does, with /api passed to the host.

What differs between environments is only ``/config.json``, which this server answers itself. For
``make dev`` it is ``{"apiBase": "/api", "auth": "dev"}``: the dev sign-in page, the principal header
the local host trusts in ``FOLIO_DEV_MODE``, and ``/api`` on this same origin, passed to the host.
Given ``runtime_config``, it serves that instead: the production shape, ``auth: entra`` with MSAL's
client id, authority and API scope and an ``apiBase`` on the function app's own origin, which the
browser calls directly with bearer tokens (CORS), as in Azure (tests/test_web_signin.py).

Also as on SWA: the ``globalHeaders`` of ``staticwebapp.config.json`` (so the Content-Security-Policy
is enforced locally and the end-to-end tests catch a violation), ``navigationFallback`` to
``index.html`` for the app's own paths, and long caching for hashed ``/assets/``. Responses from
``/api`` are streamed through as they arrive (chat answers are NDJSON streams).
"""

from __future__ import annotations

import http.client
import json
import logging
import mimetypes
import posixpath
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from devhost.http_server import LoopbackServer

_log = logging.getLogger("devhost.frontend")

DEFAULT_PORT = 4280  # the Static Web Apps CLI's port; BILLING_RETURN_URL and Host.CORS name it
DIST = Path(__file__).resolve().parent.parent / "frontend" / "dist"
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "date",
        "server",
    }
)  # the last two: this server writes its own
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".txt": "text/plain",
    ".woff2": "font/woff2",
}


def global_headers(dist: Path, connect_sources: tuple[str, ...] = ()) -> dict[str, str]:
    """``globalHeaders`` from the deployed ``staticwebapp.config.json``, with local origins (Azurite) allowed
    in the CSP's ``connect-src`` the way ``*.blob.core.windows.net`` is in Azure."""
    try:
        headers = dict(json.loads((dist / "staticwebapp.config.json").read_text()).get("globalHeaders", {}))
    except (OSError, ValueError):
        return {}
    csp = headers.get("Content-Security-Policy")
    if csp and connect_sources:
        directives = [d.strip() for d in csp.split(";") if d.strip()]
        for i, directive in enumerate(directives):
            if directive.startswith("connect-src"):
                directives[i] = " ".join([directive, *connect_sources])
        headers["Content-Security-Policy"] = "; ".join(directives)
    return headers


class StaticWebAppServer(LoopbackServer):
    """The web app on one origin: static files, ``/config.json``, and ``/api`` proxied to ``api_upstream``."""

    thread_name = "devhost-frontend"

    def __init__(
        self,
        address: tuple[str, int],
        api_upstream: str,
        *,
        dist: Path = DIST,
        connect_sources: tuple[str, ...] = (),
        auth: str = "dev",
        runtime_config: dict[str, Any] | None = None,
    ) -> None:
        self.dist = dist.resolve()
        upstream = urlsplit(api_upstream)
        self.upstream = (upstream.hostname or "127.0.0.1", upstream.port or 80)
        self.runtime_config = json.dumps(runtime_config or {"apiBase": "/api", "auth": auth}).encode()
        self.headers_for_static = global_headers(self.dist, connect_sources)
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: StaticWebAppServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        _log.debug(fmt, *args)

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        if path == "/api" or path.startswith("/api/"):
            return self._proxy()
        if self.command not in ("GET", "HEAD"):
            return self._send(405, {"Content-Type": "text/plain", "Allow": "GET, HEAD"}, b"Method not allowed")
        if path == "/config.json":
            return self._send(
                200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, self.server.runtime_config
            )
        self._static(path)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    # --- static files ------------------------------------------------------------------------

    def _static(self, path: str) -> None:
        relative = posixpath.normpath(unquote(path)).lstrip("/")
        file = (self.server.dist / relative).resolve() if relative not in ("", ".") else self.server.dist / "index.html"
        if not file.is_relative_to(self.server.dist):
            return self._send(404, {"Content-Type": "text/plain"}, b"Not found")
        if not file.is_file():
            # navigationFallback: the app's own paths (/search, /collections/<id>...) get index.html;
            # a missing asset or file stays a 404, as the config's `exclude` says.
            if relative.startswith("assets/") or posixpath.splitext(relative)[1]:
                return self._send(404, {"Content-Type": "text/plain"}, b"Not found")
            file = self.server.dist / "index.html"
        if not file.is_file():
            return self._send(
                503,
                {"Content-Type": "text/plain"},
                b"The web app is not built: run `make dev` (or `npm run build` in frontend/).",
            )
        content_type = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type == "application/json":
            content_type += "; charset=utf-8"
        cache = "public, max-age=31536000, immutable" if relative.startswith("assets/") else "no-cache"
        self._send(
            200,
            {**self.server.headers_for_static, "Content-Type": content_type, "Cache-Control": cache},
            file.read_bytes(),
        )

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # --- /api --------------------------------------------------------------------------------

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["X-Forwarded-Host"] = self.headers.get("Host", "")
        headers["X-Forwarded-Proto"] = "http"
        host, port = self.server.upstream
        upstream = http.client.HTTPConnection(host, port, timeout=300)
        try:
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
            except OSError:
                problem = {
                    "type": "https://folio.dev/problems/unavailable",
                    "title": "Service unavailable",
                    "status": 502,
                    "detail": f"The Functions host at http://{host}:{port} is not answering.",
                }
                return self._send(502, {"Content-Type": "application/problem+json"}, json.dumps(problem).encode())
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            declared = response.getheader("Content-Length")
            chunked = declared is None and response.status not in (204, 304) and self.command != "HEAD"
            if declared is not None:
                self.send_header("Content-Length", declared)
            elif chunked:
                self.send_header("Transfer-Encoding", "chunked")  # streamed: each piece goes on as it arrives
            self.end_headers()
            if self.command == "HEAD":
                return
            streaming = threading.Event()
            if chunked:  # a stream may idle for long: notice a client that leaves meanwhile
                streaming.set()
                threading.Thread(
                    target=self._close_upstream_if_client_leaves, args=(upstream, streaming), daemon=True
                ).start()
            try:
                while chunk := response.read1(65536):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    self.wfile.flush()
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                streaming.clear()
        finally:
            upstream.close()

    def _close_upstream_if_client_leaves(
        self, upstream: http.client.HTTPConnection, streaming: threading.Event
    ) -> None:
        """Like a front end does: a browser that aborts (Stop) closes the connection to the API at once,
        not at the next write, so the API sees the client go while the answer is still being written."""
        while streaming.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.1)
            if not readable:
                continue
            try:
                gone = self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                gone = True
            if gone and streaming.is_set() and upstream.sock is not None:
                upstream.sock.shutdown(socket.SHUT_RDWR)
            return  # gone, or the client's next request is waiting: either way nothing more to watch
