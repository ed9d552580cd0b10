"""Documents: request an upload URL, read status, list, delete, re-index, and a read URL for the original."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, no_content, ok
from shared import documents
from shared.errors import Unavailable

bp = new_blueprint()


@endpoint(bp, "collections/{collectionId}/documents", ["POST"])
def documents_upload(request: ApiRequest) -> Response:
    from shared.api_models import RequestUpload  # built on first use, not at cold start

    body = request.body(RequestUpload)
    created = documents.request_upload(
        request.db,
        request.services.blobs,
        request.caller,
        request.path_id("collectionId", "collection"),
        filename=body.filename,
        content_type=body.content_type,
        size=body.size,
        settings=request.settings,
    )
    return ok(created, status=201, headers={"Location": f"/api/documents/{created['documentId']}"})


@endpoint(bp, "collections/{collectionId}/documents", ["GET"])
def documents_list(request: ApiRequest) -> Response:
    limit = request.query_int("limit", 100, 1, 1000)
    listed = documents.list_documents(
        request.db, request.caller, request.path_id("collectionId", "collection"), limit=limit
    )
    return ok({"documents": listed})


@endpoint(bp, "documents/{documentId}", ["GET"])
def documents_get(request: ApiRequest) -> Response:
    return ok(documents.get_document(request.db, request.caller, request.path_id("documentId", "document")))


@endpoint(bp, "documents/{documentId}/content", ["GET"])
def documents_content(request: ApiRequest) -> Response:
    from shared import document_content  # built on first use, not at cold start

    blobs = request.services.blobs
    if not isinstance(blobs, document_content.ReadableBlobs):
        raise Unavailable("This deployment's blob store cannot hand out read URLs.")
    # The URL is a credential for a few minutes; ok() answers Cache-Control: no-store, so nothing keeps it.
    return ok(
        document_content.content_url(request.db, blobs, request.caller, request.path_id("documentId", "document"))
    )


@endpoint(bp, "documents/{documentId}", ["DELETE"])
def documents_delete(request: ApiRequest) -> Response:
    documents.delete_document(
        request.db, request.services.blobs, request.caller, request.path_id("documentId", "document")
    )
    return no_content()


@endpoint(bp, "documents/{documentId}/reindex", ["POST"])
def documents_reindex(request: ApiRequest) -> Response:
    return ok(
        documents.reindex_document(
            request.db,
            request.services.job_queue,
            request.caller,
            request.path_id("documentId", "document"),
            request.services.blobs,
        ),
        status=202,
    )
