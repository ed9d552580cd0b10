"""GET /api/openapi.json: the OpenAPI 3.1 description of this API (shared/openapi.py), for client generators."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, ok

bp = new_blueprint()


@endpoint(bp, "openapi.json", ["GET"])
def openapi_document(request: ApiRequest) -> Response:
    from shared.openapi import describe_for  # built on first use, not at cold start

    return ok(describe_for(request.settings))
