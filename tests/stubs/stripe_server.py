"""A loopback stand-in for the Stripe endpoints Folio calls, spoken to by the real `stripe` library.

It speaks what the real API speaks: form-encoded requests with bracketed keys, Bearer secret-key
auth, JSON objects and Stripe's error shape. Like Stripe, it replays the stored response for a
repeated ``Idempotency-Key`` (and refuses the key with different parameters), and refuses a meter
event whose ``identifier`` it already holds. Every request is recorded, and it can be told to
fail: before doing anything (an outage) or after doing the work (a lost response).

Endpoints: POST /v1/customers, /v1/checkout/sessions, /v1/billing_portal/sessions,
/v1/billing/meter_events; GET /v1/subscriptions/{id} (subscriptions the test puts in ``subscriptions``).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_KEY = re.compile(r"^([^\[]+)((?:\[[^\]]*\])*)$")


def decode_form(body: str) -> dict[str, Any]:
    """``a[b][0][c]=1`` -> ``{"a": {"b": [{"c": "1"}]}}``, as Stripe reads its form bodies."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        if not match:
            continue
        parts = [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt: Any = value if last else ([] if parts[i + 1].isdigit() else {})
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if node[index] is None or last:
                    node[index] = nxt
                node = node[index]
            else:
                if part not in node or last:
                    node[part] = nxt
                node = node[part]
    return root


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class _Failure:
    prefix: str
    status: int
    times: int
    after_processing: bool


@dataclass
class StripeStub:
    """Start with :meth:`start`; point ``STRIPE_API_BASE`` at :attr:`base_url`."""

    api_key_prefix: str = "sk_test_"
    requests: list[Recorded] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_events: dict[str, dict[str, Any]] = field(default_factory=dict)  # by identifier

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._idempotent: dict[str, tuple[str, str, str, int, bytes]] = {}
        self._failures: list[_Failure] = []
        self._server: ThreadingHTTPServer | None = None

    # --- control --------------------------------------------------------------------------

    def start(self) -> StripeStub:
        stub = self

        class Handler(_Handler):
            owner = stub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="stripe-stub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address
        return f"http://{host}:{port}"

    def fail(self, path_prefix: str, *, status: int = 500, times: int = 1, after_processing: bool = False) -> None:
        """The next ``times`` requests under ``path_prefix`` fail with ``status``; with
        ``after_processing`` the work is done first and only the response is lost."""
        with self._lock:
            self._failures.append(_Failure(path_prefix, status, times, after_processing))

    def heal(self) -> None:
        """End every injected failure."""
        with self._lock:
            self._failures.clear()

    def calls(self, path_prefix: str, method: str = "POST") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix) and r.method == method]

    def meter_totals(self) -> dict[tuple[str, str], int]:
        """Sum of accepted meter event values per (event name, customer): what Stripe would bill."""
        totals: dict[tuple[str, str], int] = defaultdict(int)
        with self._lock:
            for event in self.meter_events.values():
                totals[(event["event_name"], event["payload"]["stripe_customer_id"])] += int(event["payload"]["value"])
        return dict(totals)

    # --- request handling -----------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, str], bytes]:
        params = decode_form(body) if method == "POST" else decode_form(urlsplit(path).query)
        path = urlsplit(path).path
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer " + self.api_key_prefix):
            return self._record(
                method, path, params, headers, *_error(401, "invalid_request_error", "Invalid API Key provided.")
            )
        key = headers.get("idempotency-key")
        with self._lock:
            failure = next((f for f in self._failures if path.startswith(f.prefix) and f.times > 0), None)
            if failure:
                failure.times -= 1
            cached = self._idempotent.get(key) if key and method == "POST" else None
        if failure and not failure.after_processing:
            return self._record(
                method, path, params, headers, *_error(failure.status, "api_error", "Something went wrong (injected).")
            )
        if cached:
            if (cached[0], cached[1], cached[2]) != (method, path, body):
                return self._record(
                    method,
                    path,
                    params,
                    headers,
                    *_error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.",
                    ),
                )
            return self._record(method, path, params, headers, cached[3], {"Idempotent-Replayed": "true"}, cached[4])
        status, extra, payload = self._route(method, path, params)
        if failure:  # the work happened; the answer is lost
            return self._record(
                method, path, params, headers, *_error(failure.status, "api_error", "Something went wrong (injected).")
            )
        if key and method == "POST" and status < 400:
            with self._lock:
                self._idempotent[key] = (method, path, body, status, payload)
        return self._record(method, path, params, headers, status, extra, payload)

    def _record(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        headers: dict[str, str],
        status: int,
        extra: dict[str, str],
        payload: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append(Recorded(method, path, params, dict(headers), status))
        return status, {**extra, "Request-Id": "req_" + secrets.token_hex(7)}, payload

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        now = int(time.time())
        if method == "POST" and path == "/v1/customers":
            customer = {
                "id": "cus_" + secrets.token_hex(7),
                "object": "customer",
                "created": now,
                "email": params.get("email"),
                "livemode": False,
                "metadata": params.get("metadata", {}),
                "name": params.get("name"),
            }
            with self._lock:
                self.customers[customer["id"]] = customer
            return _ok(customer)
        if method == "POST" and path == "/v1/checkout/sessions":
            missing = [p for p in ("mode", "line_items", "success_url") if not params.get(p)]
            if missing:
                return _error(400, "invalid_request_error", f"Missing required param: {missing[0]}.", missing[0])
            if params.get("customer") and params["customer"] not in self.customers:
                return _error(
                    400,
                    "invalid_request_error",
                    f"No such customer: '{params['customer']}'",
                    "customer",
                    "resource_missing",
                )
            session_id = "cs_test_" + secrets.token_hex(24)
            return _ok(
                {
                    "id": session_id,
                    "object": "checkout.session",
                    "mode": params["mode"],
                    "customer": params.get("customer"),
                    "client_reference_id": params.get("client_reference_id"),
                    "metadata": params.get("metadata", {}),
                    "success_url": params["success_url"],
                    "cancel_url": params.get("cancel_url"),
                    "status": "open",
                    "payment_status": "unpaid",
                    "subscription": None,
                    "created": now,
                    "expires_at": now + 86400,
                    "livemode": False,
                    "url": f"https://checkout.stripe.com/c/pay/{session_id}",
                }
            )
        if method == "POST" and path == "/v1/billing_portal/sessions":
            if params.get("customer") not in self.customers:
                return _error(
                    400,
                    "invalid_request_error",
                    f"No such customer: '{params.get('customer')}'",
                    "customer",
                    "resource_missing",
                )
            token = secrets.token_hex(12)
            return _ok(
                {
                    "id": "bps_" + secrets.token_hex(12),
                    "object": "billing_portal.session",
                    "customer": params["customer"],
                    "return_url": params.get("return_url"),
                    "created": now,
                    "livemode": False,
                    "url": f"https://billing.stripe.com/p/session/test_{token}",
                }
            )
        if method == "POST" and path == "/v1/billing/meter_events":
            payload = params.get("payload") or {}
            if not params.get("event_name") or "stripe_customer_id" not in payload or "value" not in payload:
                return _error(400, "invalid_request_error", "Missing required param: event_name or payload.")
            identifier = params.get("identifier") or ("evt_" + secrets.token_hex(12))
            with self._lock:
                if identifier in self.meter_events:
                    return _error(
                        400,
                        "invalid_request_error",
                        f"An event already exists with identifier {identifier}.",
                        headers={"Stripe-Should-Retry": "false"},
                    )
                event = {
                    "object": "billing.meter_event",
                    "created": now,
                    "event_name": params["event_name"],
                    "identifier": identifier,
                    "livemode": False,
                    "payload": payload,
                    "timestamp": int(params.get("timestamp") or now),
                }
                self.meter_events[identifier] = event
            return _ok(event)
        found = re.fullmatch(r"/v1/subscriptions/([A-Za-z0-9_]+)", path)
        if method == "GET" and found:
            with self._lock:
                subscription = self.subscriptions.get(found.group(1))
            if subscription is None:
                return _error(
                    404, "invalid_request_error", f"No such subscription: '{found.group(1)}'", "id", "resource_missing"
                )
            return _ok(subscription)
        return _error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")


def _ok(obj: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {}, json.dumps(obj).encode()


def _error(
    status: int,
    kind: str,
    message: str,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return status, dict(headers or {}), json.dumps({"error": error}).encode()


class _Handler(BaseHTTPRequestHandler):
    owner: StripeStub
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        status, headers, payload = self.owner.handle(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve
