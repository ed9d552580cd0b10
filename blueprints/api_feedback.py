"""Answer feedback: PUT and DELETE /api/chat/sessions/{sessionId}/messages/{messageId}/feedback (the author only)."""

from __future__ import annotations

from blueprints import new_blueprint
from blueprints._http import ApiRequest, Response, endpoint, no_content, ok
from shared import feedback

bp = new_blueprint()

_ROUTE = "chat/sessions/{sessionId}/messages/{messageId}/feedback"


@endpoint(bp, _ROUTE, ["PUT"])
def chat_feedback_set(request: ApiRequest) -> Response:
    from shared.api_models import AnswerFeedback  # built on first use, not at cold start

    session_id = str(request.path_id("sessionId", "chat session"))
    body = request.body(AnswerFeedback)
    return ok(
        feedback.set_feedback(
            request.services.chat_store,
            request.db,
            request.caller,
            session_id,
            request.http.route_params.get("messageId", ""),
            rating=body.rating,
            reason=body.reason,
            comment=body.comment,
        )
    )


@endpoint(bp, _ROUTE, ["DELETE"])
def chat_feedback_delete(request: ApiRequest) -> Response:
    session_id = str(request.path_id("sessionId", "chat session"))
    feedback.remove_feedback(
        request.services.chat_store,
        request.db,
        request.caller,
        session_id,
        request.http.route_params.get("messageId", ""),
    )
    return no_content()
