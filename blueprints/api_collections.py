"""Collections: POST/GET /api/collections, GET/DELETE /api/collections/{id}, GET/PUT /api/collections/{id}/access."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, no_content, ok
from shared import collections

bp = new_blueprint()


@endpoint(bp, "collections", ["POST"])
def collections_create(request: ApiRequest) -> Response:
    from shared.api_models import CreateCollection  # built on first use, not at cold start

    body = request.body(CreateCollection)
    created = collections.create_collection(
        request.db, request.caller, body.name, body.description, settings=request.settings
    )
    return ok(created, status=201, headers={"Location": f"/api/collections/{created['id']}"})


@endpoint(bp, "collections", ["GET"])
def collections_list(request: ApiRequest) -> Response:
    return ok({"collections": collections.list_collections(request.db, request.caller)})


@endpoint(bp, "collections/{collectionId}", ["GET"])
def collections_get(request: ApiRequest) -> Response:
    return ok(collections.get_collection(request.db, request.caller, request.path_id("collectionId", "collection")))


@endpoint(bp, "collections/{collectionId}", ["DELETE"])
def collections_delete(request: ApiRequest) -> Response:
    collections.delete_collection(
        request.db, request.services.blobs, request.caller, request.path_id("collectionId", "collection")
    )
    return no_content()


@endpoint(bp, "collections/{collectionId}/access", ["GET"])
def collections_access_get(request: ApiRequest) -> Response:
    return ok(collections.get_access(request.db, request.caller, request.path_id("collectionId", "collection")))


@endpoint(bp, "collections/{collectionId}/access", ["PUT"])
def collections_access_set(request: ApiRequest) -> Response:
    from shared.api_models import SetCollectionAccess  # built on first use, not at cold start

    body = request.body(SetCollectionAccess)
    return ok(
        collections.set_access(
            request.db,
            request.caller,
            request.path_id("collectionId", "collection"),
            mode=body.mode,
            members=list(body.members),
            groups=list(body.groups),
            group_labels=list(body.group_labels),
        )
    )
