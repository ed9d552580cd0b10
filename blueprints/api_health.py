"""GET /api/health: each dependency's status; 503 when the database is down."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, ok
from shared import health

bp = new_blueprint()


@endpoint(bp, "health", ["GET"])
def health_check(request: ApiRequest) -> Response:
    healthy, report = health.check(request.services)
    return ok(report, status=200 if healthy else 503)
