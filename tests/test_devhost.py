"""The local Functions host: routes come from the app's registrations, served over real HTTP."""

from __future__ import annotations

import inspect

import azure.functions as func
from starlette.requests import Request
from starlette.responses import Response

import function_app
from devhost.functions import _compile, http_routes, registrations
from tests.helpers import Client


def test_every_http_function_of_the_app_is_served() -> None:
    regs = registrations(function_app.app)
    regs_again = registrations(function_app.app)  # get_functions() must survive a second call
    assert [r.name for r in regs] == [r.name for r in regs_again]
    routes = http_routes(regs)
    assert {r.registration.name for r in routes} == {r.name for r in regs if r.trigger_type == "httpTrigger"}
    assert all(r.auth_level == "anonymous" for r in routes)


def test_route_templates_match_like_the_functions_host() -> None:
    match = _compile("api/collections/{id}").match("/api/collections/abc")
    assert match and match["id"] == "abc"
    assert not _compile("api/collections/{id}").match("/api/collections/abc/def")
    optional = _compile("api/items/{id?}")
    match = optional.match("/api/items/7")
    assert optional.match("/api/items") and match and match["id"] == "7"
    guid = _compile("api/x/{id:guid}")
    assert guid.match("/api/x/9b2c6f0e-3c0e-4d8e-9a57-0e1f2a3b4c5d") and not guid.match("/api/x/nope")
    match = _compile("api/files/{*path}").match("/api/files/a/b/c")
    assert match and match["path"] == "a/b/c"


def test_unknown_path_is_404_and_wrong_method_is_405(client: Client) -> None:
    assert client.get("/api/nope").status == 404
    wrong = client.request("PUT", "/api/collections")
    assert wrong.status == 405 and wrong.headers["allow"] == "GET, POST"


def test_cors_preflight_allows_the_static_web_app_origin_only(client: Client) -> None:
    ok = client.request(
        "OPTIONS",
        "/api/collections",
        headers={
            "Origin": "http://127.0.0.1:4280",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert ok.status == 204 and ok.headers["access-control-allow-origin"] == "http://127.0.0.1:4280"
    denied = client.request(
        "OPTIONS",
        "/api/collections",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert denied.status == 403 and "access-control-allow-origin" not in denied.headers


def test_functions_receive_the_workers_request_and_context(host: str) -> None:
    """With HTTP streaming on, the worker passes a Starlette request (route params filled in) and a Context."""
    seen: dict[str, object] = {}
    bp = func.Blueprint()

    @bp.route(route="probe/{name}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
    async def probe(req: Request, context: func.Context) -> Response:
        seen.update(req=req, context=context)
        body = (await req.body()).decode()
        return Response(
            f"hi {req.path_params['name']} {req.query_params.get('q')} {body}",
            status_code=202,
            headers={"X-Probe": "1"},
        )

    app = func.FunctionApp()
    app.register_functions(bp)
    from devhost.http_server import FunctionsHttpServer

    server = FunctionsHttpServer(("127.0.0.1", 0), registrations(app))
    server.start_in_thread()
    try:
        response = Client(server.base_url).request("POST", "/api/probe/ann?q=1", body=b"body")
    finally:
        server.shutdown()
    assert response.status == 202 and response.body == b"hi ann 1 body" and response.headers["x-probe"] == "1"
    assert isinstance(seen["req"], Request) and isinstance(seen["context"], func.Context)
    assert seen["context"].invocation_id


def test_every_api_function_is_async_and_typed_for_http_streaming() -> None:
    """The worker turns HTTP streaming on for the whole app: each HTTP function must take and return its types."""
    import typing

    for reg in registrations(function_app.app):
        if reg.trigger_type != "httpTrigger":
            continue
        hints = typing.get_type_hints(reg.user_function)
        assert inspect.iscoroutinefunction(reg.user_function), reg.name
        assert hints[reg.trigger_param] is Request and issubclass(hints["return"], Response), reg.name
