"""GET /api/documents/{documentId}/chunks/{chunkId}: a passage with its neighbours (search hits, citations)."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, ok
from shared import passages

bp = new_blueprint()


@endpoint(bp, "documents/{documentId}/chunks/{chunkId}", ["GET"])
def passages_get(request: ApiRequest) -> Response:
    chunk_id = passages.parse_chunk_id(request.http.route_params.get("chunkId", ""))
    context = request.query_int("context", 2, 0, passages.MAX_CONTEXT)
    return ok(
        passages.get_passage(
            request.db, request.caller, request.path_id("documentId", "document"), chunk_id, context=context
        )
    )
