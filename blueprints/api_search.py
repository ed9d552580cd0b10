"""POST /api/search: hybrid, lexical or vector search within the caller's workspace."""

from __future__ import annotations

import azure.functions as func

from blueprints._http import ApiRequest, Response, endpoint, ok
from shared.errors import Invalid
from shared.search import SearchRequest, search_workspace
from shared.validation import Field, check_text, parse_object, parse_uuid

bp = func.Blueprint()

_FILTERS = {"docType": Field(list), "jurisdiction": Field(list), "documentIds": Field(list)}


def _strings(values: list, name: str, *, limit: int = 50) -> tuple[str, ...]:
    if len(values) > limit or not all(isinstance(v, str) and 0 < len(v) <= 100 for v in values):
        raise Invalid(f"'{name}' must be a list of at most {limit} non-empty strings.", fields=[name])
    for value in values:
        check_text(name, value, single_line=True)
    return tuple(values)


def _ids(values: list, name: str) -> tuple:
    if len(values) > 100 or not all(isinstance(v, str) for v in values):
        raise Invalid(f"'{name}' must be a list of at most 100 ids.", fields=[name])
    try:
        return tuple(parse_uuid(v, "id") for v in values)
    except Exception:
        raise Invalid(f"'{name}' holds a malformed id.", fields=[name]) from None


@endpoint(bp, "search", ["POST"])
def search_documents(request: ApiRequest) -> Response:
    body = request.json({"query": Field(str, required=True, max_length=4000), "mode": Field(str),
                         "top": Field(int), "collectionIds": Field(list), "filters": Field(dict)})
    filters = parse_object(body.get("filters") or {}, _FILTERS)
    search_request = SearchRequest(
        query=body["query"], mode=body.get("mode", "hybrid"), top=body.get("top", 10),
        collection_ids=_ids(body.get("collectionIds") or [], "collectionIds"),
        document_ids=_ids(filters.get("documentIds") or [], "filters.documentIds"),
        doc_types=_strings(filters.get("docType") or [], "filters.docType"),
        jurisdictions=_strings(filters.get("jurisdiction") or [], "filters.jurisdiction"),
    )
    return ok(search_workspace(request.db, request.caller, search_request, embedder=request.services.embedder,
                               settings=request.settings))
