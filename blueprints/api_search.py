"""POST /api/search: hybrid, lexical or vector search within the caller's workspace."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, ok
from shared.search import SearchRequest, search_workspace

bp = new_blueprint()


@endpoint(bp, "search", ["POST"])
def search_documents(request: ApiRequest) -> Response:
    from shared.api_models import Search  # built on first use, not at cold start

    body = request.body(Search)
    search_request = SearchRequest(
        query=body.query,
        mode=body.mode,
        top=body.top,
        collection_ids=tuple(body.collection_ids),
        document_ids=tuple(body.filters.document_ids),
        doc_types=tuple(body.filters.doc_type),
        jurisdictions=tuple(body.filters.jurisdiction),
    )
    return ok(
        search_workspace(
            request.db, request.caller, search_request, embedder=request.services.embedder, settings=request.settings
        )
    )
