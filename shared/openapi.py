"""The OpenAPI 3.1 description of the HTTP API, generated from the request models and the route table here.

Request bodies come from :mod:`shared.api_models`, the models that validate them, so the description
cannot drift from what the API accepts. Responses are described by the reply models below: the services
return plain dicts, and these models state what those dicts hold (required fields, types, nullability),
which the fuzzing test (``tests/test_fuzz.py``) checks every response against. :data:`OPERATIONS` is the
route metadata, keyed by the function name each route is registered under; :func:`route_problems` is the
check (run by ``tests/test_openapi.py``) that it and the registered routes are the same set.

Nothing here runs at cold start: ``GET /api/openapi.json`` imports this module on first use and keeps
the description it builds.
"""

# No ``from __future__ import annotations``: pydantic evaluates the reply models' annotations as the classes are made.

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import models_json_schema

from shared import api_models
from shared.config import Settings
from shared.search import MAX_QUERY_CHARS
from shared.validation import LINE_CONTROLS, Body

API_VERSION = "1"
PROBLEM_JSON = "application/problem+json"
NDJSON = "application/x-ndjson"
REF_PREFIX = "#/components/schemas/"

# --- replies: what the services' dicts hold -----------------------------------------------------


class Reply(BaseModel):
    """Base of every response model: camelCase on the wire; fields a later version adds are allowed."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", defer_build=True)


class Problem(Reply):
    """RFC 9457 problem details; ``type`` is ``https://folio.dev/problems/<slug>``, stable per error class."""

    type: str
    title: str
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    invocation_id: str | None = None
    fields: list[str] | None = Field(default=None, description="400: the paths of the fields at fault.")
    retry_after: int | None = Field(default=None, description="429, 503: seconds to wait (also `Retry-After`).")


class DependencyCheck(Reply):
    status: Literal["ok", "down"]
    latency_ms: float | None = None
    error: str | None = None


class DatabaseCheck(DependencyCheck):
    row_level_security: Literal["enforced", "bypassed"] | None = None
    migrated: bool | None = None


class HealthChecks(Reply):
    database: DatabaseCheck
    storage: DependencyCheck | None = None
    cosmos: DependencyCheck | None = None


class Health(Reply):
    status: Literal["ok", "degraded", "unavailable"]
    environment: str
    checks: HealthChecks


class Actor(Reply):
    type: Literal["user", "api_key", "system", "stripe"]
    id: str | None


class UserRef(Reply):
    id: UUID
    email: str | None
    name: str | None


class TenantRef(Reply):
    id: UUID
    name: str


class WorkspaceChoice(Reply):
    id: UUID
    name: str
    personal: bool
    role: api_models.Role


class Me(Reply):
    actor: Actor
    user: UserRef | None
    tenant: TenantRef
    role: api_models.Role
    workspaces: list[WorkspaceChoice]


class Member(Reply):
    user_id: UUID
    email: str | None
    name: str | None
    role: api_models.Role
    since: datetime


class Invitation(Reply):
    """An invitation the workspace sent (owners see them)."""

    id: UUID
    email: str
    role: api_models.Role
    invited_at: datetime
    expires_at: datetime


class WorkspaceRef(Reply):
    id: UUID
    name: str | None = None


class MyInvitation(Reply):
    """An invitation addressed to the caller's verified email, from any workspace."""

    id: UUID
    workspace: WorkspaceRef
    role: api_models.Role
    invited_at: datetime
    expires_at: datetime


class MyInvitations(Reply):
    invitations: list[MyInvitation]


class InvitationAnswer(Reply):
    workspace: WorkspaceRef
    role: api_models.Role
    status: Literal["joined", "declined"]


class Members(Reply):
    members: list[Member]
    invitations: list[Invitation] = Field(description="Owners only; empty for other roles.")


class MemberInvited(Reply):
    """Adding a member is always an invitation, answered alike whether or not the address has an account."""

    status: Literal["invited"]
    invitation_id: UUID
    email: str
    role: api_models.Role
    expires_at: datetime


class ApiKey(Reply):
    id: UUID
    name: str
    role: api_models.ApiKeyRole
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeys(Reply):
    api_keys: list[ApiKey]


class CreatedApiKey(Reply):
    id: UUID
    name: str
    role: api_models.ApiKeyRole
    created_at: datetime
    key: str = Field(description="`folio_<workspace>_<key id>_<secret>`: shown this once, only its SHA-256 is kept.")


class AuditTarget(Reply):
    type: str
    id: str | None


class AuditEntry(Reply):
    id: int
    at: datetime
    actor: Actor
    action: str
    target: AuditTarget | None
    details: dict[str, Any]
    invocation_id: str | None


class Audit(Reply):
    entries: list[AuditEntry]
    next: int | None = Field(description="Pass as `before` for the next page; null on the last one.")


class Collection(Reply):
    id: UUID
    name: str
    description: str
    created_at: datetime
    documents: int
    access: Literal["open", "restricted"] = Field(
        description="open: the whole workspace reads it; restricted: owners and the members and groups it names."
    )


class CollectionMember(Reply):
    user_id: UUID
    email: str | None
    name: str | None
    role: Literal["owner", "member", "viewer"] | None


class CollectionGroup(Reply):
    id: UUID = Field(description="An Entra security group's object id, as in the token's `groups` claim.")
    label: str


class CollectionAccess(Reply):
    collection_id: UUID
    mode: Literal["open", "restricted"]
    members: list[CollectionMember]
    groups: list[CollectionGroup]


class Collections(Reply):
    collections: list[Collection]


class UploadTicket(Reply):
    document_id: UUID
    upload_url: str = Field(description="PUT the file here, with `headers`, before `expiresAt`.")
    expires_at: datetime
    method: Literal["PUT"]
    headers: dict[str, str]


DocumentStatus = Literal["awaiting_upload", "queued", "processing", "ready", "failed", "deleted"]


class Document(Reply):
    id: UUID
    collection_id: UUID
    filename: str
    content_type: str
    size: int
    status: DocumentStatus
    error: str | None
    retryable: bool | None = Field(
        description="Failed documents only: whether re-indexing could succeed; false means upload the file again "
        "(a refused file, a plan limit, a file no longer stored). Null unless status is failed."
    )
    pages: int | None
    chunks: int | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None


class Documents(Reply):
    documents: list[Document]


class DocumentContent(Reply):
    """Where to read a document's original file, for a few minutes."""

    document_id: UUID
    url: str = Field(
        description="A read-only SAS URL for exactly this blob, served as an attachment; GET it before `expiresAt`."
    )
    expires_at: datetime
    filename: str
    content_type: str = Field(description="The type declared at upload.")
    format: str = Field(description="`pdf`, `docx`, `html`, `markdown`, `text`, or `other`, by the file's extension.")
    size: int
    pages: int | None


class PageRange(Reply):
    start: int
    end: int


class Offsets(Reply):
    start: int
    end: int


class Ranks(Reply):
    lexical: int | None
    vector: int | None


class SearchHit(Reply):
    chunk_id: str
    document_id: UUID
    collection_id: UUID
    title: str
    heading_path: list[str]
    pages: PageRange | None
    offsets: Offsets
    snippet: str = Field(description="Escaped text with the matches in `<mark>`: the only HTML in any response.")
    score: float
    ranks: Ranks


class SearchResults(Reply):
    results: list[SearchHit]
    took_ms: float


class PassageDocument(Reply):
    id: UUID
    collection_id: UUID
    title: str
    pages: int | None


class PassageText(Reply):
    chunk_id: str
    ordinal: int
    heading_path: list[str]
    text: str
    pages: PageRange | None
    offsets: Offsets


class Passage(Reply):
    document: PassageDocument
    passage: PassageText
    before: list[PassageText]
    after: list[PassageText]


class Citation(Reply):
    n: int
    chunk_id: str
    document_id: UUID
    title: str
    heading_path: list[str]
    pages: PageRange | None
    snippet: str


class TurnUsage(Reply):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated: bool | None = None


class ChatAnswer(Reply):
    """``Accept: application/json``: the whole turn as one object."""

    session_id: str
    message_id: str
    answer: str
    citations: list[Citation]
    usage: TurnUsage
    provider: str
    model: str
    extractive: bool
    grounded: bool


class SessionEvent(Reply):
    type: Literal["session"]
    session_id: str
    title: str
    created: bool


class DeltaEvent(Reply):
    type: Literal["delta"]
    text: str


class CitationsEvent(Reply):
    type: Literal["citations"]
    citations: list[Citation]


class DoneEvent(Reply):
    type: Literal["done"]
    message_id: str
    usage: TurnUsage
    provider: str
    model: str
    extractive: bool
    grounded: bool


class ErrorEvent(Reply):
    type: Literal["error"]
    error: Problem


# One line of the NDJSON answer: ``session``, then ``delta``s, ``citations``, then ``done`` or ``error``.
CHAT_EVENTS: tuple[type[Reply], ...] = (SessionEvent, DeltaEvent, CitationsEvent, DoneEvent, ErrorEvent)


class ChatSession(Reply):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turns: int
    usage: TurnUsage
    etag: str


class ChatSessions(Reply):
    sessions: list[ChatSession]
    continuation: str | None = Field(description="Pass back as `continuation` for the next page.")


class Feedback(Reply):
    rating: Literal["up", "down"]
    reason: Literal["wrong", "not_grounded", "incomplete", "other"] | None
    comment: str | None
    updated_at: datetime


class ChatMessage(Reply):
    id: str
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    citations: list[Citation] | None = None
    usage: TurnUsage | None = None
    provider: str | None = None
    model: str | None = None
    extractive: bool | None = None
    feedback: Feedback | None = Field(default=None, description="Answers only: the author's thumbs up or down.")


class ChatSessionWithMessages(ChatSession):
    messages: list[ChatMessage]


class QuestionsOnDay(Reply):
    day: date
    questions: int
    no_answer: int


class EmptySearch(Reply):
    query: str
    count: int
    last_at: datetime


class FeedbackCounts(Reply):
    up: int
    down: int


class NegativeFeedback(Reply):
    message_id: str
    session_id: str
    reason: Literal["wrong", "not_grounded", "incomplete", "other"] | None
    comment: str | None
    question: str | None = Field(description="null once past `INSIGHTS_RETENTION_DAYS`.")
    answer: str | None
    citations: list[dict[str, Any]]
    asked_at: datetime
    updated_at: datetime


class CitedDocument(Reply):
    document_id: UUID
    filename: str | None
    collection_id: UUID | None
    deleted: bool
    citations: int


class QuietDocument(Reply):
    document_id: UUID
    filename: str
    collection_id: UUID


class NeverRetrieved(Reply):
    days: int
    total: int
    documents: list[QuietDocument]


class Insights(Reply):
    days: int
    since: datetime
    retention_days: int
    questions: int
    no_answer: int
    no_answer_share: float | None = Field(description="Share of answers that found nothing; null without questions.")
    questions_per_day: list[QuestionsOnDay]
    searches: int
    searches_with_no_result: int
    empty_searches: list[EmptySearch]
    feedback: FeedbackCounts
    negative_feedback: list[NegativeFeedback]
    most_cited: list[CitedDocument]
    never_retrieved: NeverRetrieved


class ChatKey(Reply):
    configured: bool
    provider: str | None = None
    model: str | None = None
    key_hint: str | None = Field(default=None, description="The key's last four characters.")


class UsageLine(Reply):
    used: int
    limit: int | None = Field(description="null: unlimited.")


class PlanLimits(Reply):
    documents: int | None
    storage_bytes: int | None
    pages_per_month: int | None
    searches_per_month: int | None
    chat_tokens_per_month: int | None


class PlanOffer(Reply):
    name: str
    purchasable: bool
    limits: PlanLimits


class BillingPeriod(Reply):
    start: date
    end: date


class Subscription(Reply):
    id: str
    status: str | None
    plan: str


class Billing(Reply):
    plan: str
    status: str
    subscription: Subscription | None
    period: BillingPeriod
    usage: dict[str, UsageLine]
    plans: list[PlanOffer]


class CheckoutSession(Reply):
    url: str
    session_id: str
    expires_at: datetime
    plan: str


class PortalSession(Reply):
    url: str


class WebhookReceipt(Reply):
    received: bool
    duplicate: bool | None = None
    outcome: str | None = None


class OpenApiDocument(Reply):
    """This description (OpenAPI 3.1)."""

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


# --- the routes ---------------------------------------------------------------------------------

Who = Literal["anyone", "viewer", "member", "owner", "user", "own", "stripe"]
_WHO = {
    "anyone": "Anyone; no credentials.",
    "viewer": "Any role in the workspace (viewer or above).",
    "member": "Member or owner of the workspace.",
    "owner": "Owner of the workspace.",
    "user": "A signed-in user (not an API key).",
    "own": "The caller's own sessions only (a user's, or an API key's); another caller's is 404.",
    "stripe": "Stripe: the `Stripe-Signature` over the raw body is the authentication.",
}


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """One registered HTTP function: ``name`` is the function name it is registered under."""

    name: str
    method: str
    route: str  # as registered, without the /api prefix
    tag: str
    summary: str
    who: Who
    ok: int = 200
    reply: type[BaseModel] | None = None
    body: type[Body] | None = None
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    reply_headers: tuple[str, ...] = ()
    streams: bool = False  # chat: NDJSON by default, one JSON object with Accept: application/json


def _path(name: str, what: str) -> Param:
    return Param(name, "path", {"type": "string", "format": "uuid"}, f"The {what}'s id.", required=True)


def _limit(default: int, most: int) -> Param:
    return Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": most, "default": default})


MESSAGE_ID = Param(
    "messageId", "path", {"type": "string", "maxLength": 200}, "An answer's `id` (from the session).", required=True
)
IF_MATCH = Param("If-Match", "header", {"type": "string"}, "The session's `ETag`; a stale one is 412.")

OPERATIONS: tuple[Operation, ...] = (
    Operation("health_check", "GET", "health", "service", "Each dependency's status", "anyone", reply=Health),
    Operation(
        "openapi_document", "GET", "openapi.json", "service", "This description", "anyone", reply=OpenApiDocument
    ),
    # workspace
    Operation("me", "GET", "me", "workspace", "The caller and its workspaces", "viewer", reply=Me),
    Operation("members_list", "GET", "members", "workspace", "Members and invitations", "viewer", reply=Members),
    Operation(
        "members_add",
        "POST",
        "members",
        "workspace",
        "Invite someone by email to join at a role",
        "owner",
        ok=202,
        reply=MemberInvited,
        body=api_models.AddMember,
        errors=(409,),
    ),
    Operation(
        "members_remove",
        "DELETE",
        "members/{userId}",
        "workspace",
        "Remove a member",
        "owner",
        ok=204,
        params=(_path("userId", "member"),),
        errors=(409,),
    ),
    Operation(
        "members_invitation_withdraw",
        "DELETE",
        "members/invitations/{invitationId}",
        "workspace",
        "Withdraw an invitation before it is answered",
        "owner",
        ok=204,
        params=(_path("invitationId", "invitation"),),
    ),
    Operation(
        "invitations_mine",
        "GET",
        "invitations",
        "workspace",
        "Invitations addressed to the caller, from any workspace",
        "user",
        reply=MyInvitations,
    ),
    Operation(
        "invitations_accept",
        "POST",
        "invitations/{invitationId}/accept",
        "workspace",
        "Accept an invitation: join that workspace at the invited role",
        "user",
        reply=InvitationAnswer,
        params=(_path("invitationId", "invitation"),),
        errors=(409,),
    ),
    Operation(
        "invitations_decline",
        "POST",
        "invitations/{invitationId}/decline",
        "workspace",
        "Decline an invitation",
        "user",
        reply=InvitationAnswer,
        params=(_path("invitationId", "invitation"),),
        errors=(409,),
    ),
    Operation("api_keys_list", "GET", "apikeys", "workspace", "The workspace's API keys", "owner", reply=ApiKeys),
    Operation(
        "api_keys_create",
        "POST",
        "apikeys",
        "workspace",
        "Create an API key; its secret is in this response only",
        "owner",
        ok=201,
        reply=CreatedApiKey,
        body=api_models.CreateApiKey,
        errors=(409,),
    ),
    Operation(
        "api_keys_revoke",
        "DELETE",
        "apikeys/{keyId}",
        "workspace",
        "Revoke an API key",
        "owner",
        ok=204,
        params=(_path("keyId", "API key"),),
    ),
    Operation(
        "audit_list",
        "GET",
        "audit",
        "workspace",
        "The audit trail, newest first",
        "owner",
        reply=Audit,
        params=(
            _limit(50, 500),
            Param("before", "query", {"type": "integer", "minimum": 0, "maximum": 2**62}, "An entry id: older ones."),
        ),
    ),
    # collections and documents
    Operation(
        "collections_create",
        "POST",
        "collections",
        "documents",
        "Create a collection",
        "member",
        ok=201,
        reply=Collection,
        body=api_models.CreateCollection,
        errors=(409,),
        reply_headers=("Location",),
    ),
    Operation("collections_list", "GET", "collections", "documents", "Collections", "viewer", reply=Collections),
    Operation(
        "collections_get",
        "GET",
        "collections/{collectionId}",
        "documents",
        "A collection",
        "viewer",
        reply=Collection,
        params=(_path("collectionId", "collection"),),
    ),
    Operation(
        "collections_delete",
        "DELETE",
        "collections/{collectionId}",
        "documents",
        "Delete a collection with its documents",
        "member",
        ok=204,
        params=(_path("collectionId", "collection"),),
    ),
    Operation(
        "collections_access_get",
        "GET",
        "collections/{collectionId}/access",
        "documents",
        "Who may read a collection: open, or restricted to named members and Entra groups",
        "owner",
        reply=CollectionAccess,
        params=(_path("collectionId", "collection"),),
    ),
    Operation(
        "collections_access_set",
        "PUT",
        "collections/{collectionId}/access",
        "documents",
        "Open a collection to the workspace, or restrict it to named members and Entra groups",
        "owner",
        reply=CollectionAccess,
        body=api_models.SetCollectionAccess,
        params=(_path("collectionId", "collection"),),
        errors=(409,),
    ),
    Operation(
        "documents_upload",
        "POST",
        "collections/{collectionId}/documents",
        "documents",
        "Request an upload: a document row and a URL to PUT the file to",
        "member",
        ok=201,
        reply=UploadTicket,
        body=api_models.RequestUpload,
        params=(_path("collectionId", "collection"),),
        errors=(402, 409),
        reply_headers=("Location",),
    ),
    Operation(
        "documents_list",
        "GET",
        "collections/{collectionId}/documents",
        "documents",
        "A collection's documents, newest first",
        "viewer",
        reply=Documents,
        params=(_path("collectionId", "collection"), _limit(100, 1000)),
    ),
    Operation(
        "documents_get",
        "GET",
        "documents/{documentId}",
        "documents",
        "A document and its indexing status",
        "viewer",
        reply=Document,
        params=(_path("documentId", "document"),),
    ),
    Operation(
        "documents_content",
        "GET",
        "documents/{documentId}/content",
        "documents",
        "A short-lived read-only URL of the document's original file",
        "viewer",
        reply=DocumentContent,
        params=(_path("documentId", "document"),),
        errors=(409,),
    ),
    Operation(
        "documents_delete",
        "DELETE",
        "documents/{documentId}",
        "documents",
        "Delete a document, its chunks and its blob",
        "member",
        ok=204,
        params=(_path("documentId", "document"),),
    ),
    Operation(
        "documents_reindex",
        "POST",
        "documents/{documentId}/reindex",
        "documents",
        "Index a document again",
        "member",
        ok=202,
        reply=Document,
        params=(_path("documentId", "document"),),
        errors=(402, 409),
    ),
    Operation(
        "passages_get",
        "GET",
        "documents/{documentId}/chunks/{chunkId}",
        "search",
        "A passage (search hit, citation) with its neighbours",
        "viewer",
        reply=Passage,
        params=(
            _path("documentId", "document"),
            Param("chunkId", "path", {"type": "string"}, "The passage's `chunkId`.", required=True),
            Param("context", "query", {"type": "integer", "minimum": 0, "maximum": 5, "default": 2}),
        ),
    ),
    # search and chat
    Operation(
        "search_documents",
        "POST",
        "search",
        "search",
        "Hybrid, lexical or vector search in the caller's workspace",
        "viewer",
        reply=SearchResults,
        body=api_models.Search,
        errors=(402,),
    ),
    Operation(
        "chat",
        "POST",
        "chat",
        "chat",
        "One chat turn: NDJSON events, or one JSON object with `Accept: application/json`",
        "viewer",
        reply=ChatAnswer,
        body=api_models.ChatTurn,
        errors=(402, 429, 502, 504),
        streams=True,
    ),
    Operation(
        "chat_sessions_list",
        "GET",
        "chat/sessions",
        "chat",
        "The caller's chat sessions, last activity first",
        "own",
        reply=ChatSessions,
        params=(
            _limit(20, 100),
            Param("continuation", "query", {"type": "string"}, "The `continuation` of the previous page."),
        ),
    ),
    Operation(
        "chat_sessions_get",
        "GET",
        "chat/sessions/{sessionId}",
        "chat",
        "A session with its messages",
        "own",
        reply=ChatSessionWithMessages,
        params=(_path("sessionId", "chat session"),),
        reply_headers=("ETag",),
    ),
    Operation(
        "chat_sessions_rename",
        "PATCH",
        "chat/sessions/{sessionId}",
        "chat",
        "Rename a session",
        "own",
        reply=ChatSession,
        body=api_models.RenameSession,
        params=(_path("sessionId", "chat session"), IF_MATCH),
        errors=(412,),
        reply_headers=("ETag",),
    ),
    Operation(
        "chat_sessions_delete",
        "DELETE",
        "chat/sessions/{sessionId}",
        "chat",
        "Delete a session and its messages",
        "own",
        ok=204,
        params=(_path("sessionId", "chat session"), IF_MATCH),
        errors=(412,),
    ),
    Operation(
        "chat_key_get", "GET", "chat/key", "chat", "The caller's own model key (hint only)", "user", reply=ChatKey
    ),
    Operation(
        "chat_key_set",
        "PUT",
        "chat/key",
        "chat",
        "Set the caller's own model provider key",
        "user",
        reply=ChatKey,
        body=api_models.SetChatKey,
    ),
    Operation("chat_key_delete", "DELETE", "chat/key", "chat", "Forget the caller's own model key", "user", ok=204),
    Operation(
        "chat_feedback_set",
        "PUT",
        "chat/sessions/{sessionId}/messages/{messageId}/feedback",
        "chat",
        "Rate one of the caller's answers: thumbs up, or down with a reason",
        "own",
        reply=Feedback,
        body=api_models.AnswerFeedback,
        params=(_path("sessionId", "chat session"), MESSAGE_ID),
        errors=(409,),
    ),
    Operation(
        "chat_feedback_delete",
        "DELETE",
        "chat/sessions/{sessionId}/messages/{messageId}/feedback",
        "chat",
        "Take the caller's rating off one of their answers",
        "own",
        ok=204,
        params=(_path("sessionId", "chat session"), MESSAGE_ID),
        errors=(409,),
    ),
    Operation(
        "insights_get",
        "GET",
        "insights",
        "workspace",
        "Questions, unanswered share, negative feedback, cited and unused documents, empty searches",
        "owner",
        reply=Insights,
        params=(
            Param("days", "query", {"type": "integer", "minimum": 1, "maximum": 365, "default": 30}, "The window."),
        ),
    ),
    # billing
    Operation(
        "billing_get", "GET", "billing", "billing", "Plan, subscription and this month's usage", "viewer", reply=Billing
    ),
    Operation(
        "billing_checkout",
        "POST",
        "billing/checkout",
        "billing",
        "A Stripe Checkout Session for a plan",
        "owner",
        reply=CheckoutSession,
        body=api_models.StartCheckout,
        errors=(409, 502),
    ),
    Operation(
        "billing_portal",
        "POST",
        "billing/portal",
        "billing",
        "A Stripe Customer Portal session",
        "owner",
        reply=PortalSession,
        errors=(409, 502),
    ),
    Operation(
        "stripe_webhook",
        "POST",
        "stripe/webhook",
        "billing",
        "Stripe's webhook: a Stripe event, verified on the raw body",
        "stripe",
        reply=WebhookReceipt,
        params=(Param("Stripe-Signature", "header", {"type": "string"}, "`t=<unix time>,v1=<HMAC-SHA256>`"),),
    ),
)

_STATUS_TEXT = {
    400: "The request is malformed: `fields` names what is wrong.",
    401: "No or bad credentials (`WWW-Authenticate: Bearer`).",
    402: "A plan limit is reached: `limit`, `plan`, `allowed`, `used`, `requested`.",
    403: "The caller's role (or kind) may not do this.",
    404: "Unknown, malformed or another workspace's id (or an `X-Folio-Workspace` the caller is not in).",
    408: "The request body stopped arriving.",
    409: "A duplicate or a state conflict.",
    412: "`If-Match` is stale.",
    413: "The body exceeds `MAX_REQUEST_BYTES`.",
    415: "A body not sent as `application/json`.",
    429: "The model stayed rate-limited: `retryAfter`, `Retry-After`.",
    500: "A setting is missing or malformed (named, never its value).",
    502: "An upstream service (the model, Stripe) refused the request.",
    503: "A dependency is down or busy; `Retry-After` when known.",
    504: "The model did not answer in time.",
}


def _statuses(op: Operation) -> list[int]:
    """The error statuses ``op`` may answer with: those of every request, of its inputs and its own."""
    found = {408, 413, 500, 503, *op.errors}
    if op.who != "anyone":
        found |= {400, 415}  # any route reading a body or the query (a stray body too, on bodiless ones)
    if op.who not in ("anyone", "stripe"):
        found |= {401, 403, 404}
    if op.who == "stripe":
        found |= {400}
    return sorted(found)


# --- the document -------------------------------------------------------------------------------


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_PREFIX + model.__name__}


@dataclass(frozen=True)
class Installation:
    """What the description takes from the settings: rules a request model cannot state by itself."""

    max_upload_bytes: int = 52_428_800
    plans_for_sale: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> "Installation":
        from shared.billing.plans import catalog

        plans = catalog(settings)
        for_sale = tuple(p.name for p in plans.plans.values() if p.purchasable and p.name != plans.free.name)
        return cls(settings.max_upload_bytes, for_sale)


def _null_is_absent(schema: dict[str, Any]) -> None:
    """A body's optional fields accept ``null`` (the same as leaving them out: shared.validation.Body)."""
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        if name in required or any(s.get("type") == "null" for s in prop.get("anyOf", ())):
            continue
        described = {k: prop.pop(k) for k in ("default", "title", "description") if k in prop}
        schema["properties"][name] = {"anyOf": [prop, {"type": "null"}], **described}


def _ignoring_case(extension: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in extension)


def _upload_rules(schema: dict[str, Any], where: Installation) -> None:
    """RequestUpload: the file types shared.documents takes, each with the content types it may declare."""
    from shared.documents import ALLOWED_TYPES

    ws, controls = api_models.WHITESPACE, LINE_CONTROLS
    stem = rf"\.*[^./\\{ws}{controls}][^/\\{controls}]*"
    by_types: dict[frozenset[str], list[str]] = {}
    for extension, types in ALLOWED_TYPES.items():
        by_types.setdefault(types, []).append(extension[1:])
    branches = []
    for types, extensions in by_types.items():
        ending = "|".join(_ignoring_case(e) for e in extensions)
        branches.append(
            {
                "properties": {
                    "filename": {"pattern": rf"^[{ws}]*{stem}\.(?:{ending})[{ws}]*$"},
                    "contentType": {"enum": ["", "application/octet-stream", *sorted(types)]},
                }
            }
        )
    schema["oneOf"] = branches
    schema["properties"]["size"]["maximum"] = where.max_upload_bytes


def _components(ops: Iterable[Operation], where: Installation) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem, *CHAT_EVENTS}
    for op in ops:
        models.update(m for m in (op.reply, op.body) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    # Request bodies as they validate (by their camelCase aliases, "validation" mode); replies as serialized.
    modes: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "validation" if issubclass(m, Body) else "serialization") for m in ordered
    ]
    _, schemas = models_json_schema(modes, by_alias=True, ref_template=REF_PREFIX + "{model}")
    defs: dict[str, Any] = schemas.get("$defs", {})
    for model in ordered:
        if issubclass(model, Body):
            _null_is_absent(defs[model.__name__])
    _upload_rules(defs["RequestUpload"], where)
    # What a client should keep to: the model takes 4,000 characters, shared.search then refuses more than
    # MAX_QUERY_CHARS once runs of whitespace are one space.
    defs["Search"]["properties"]["query"]["maxLength"] = MAX_QUERY_CHARS
    if where.plans_for_sale:
        defs["StartCheckout"]["properties"]["plan"] = {"enum": list(where.plans_for_sale), "title": "Plan"}
    defs["ChatEvent"] = {
        "description": "One line of the NDJSON answer: `session`, then `delta`s, `citations`, then `done` or `error`.",
        "oneOf": [_ref(m) for m in CHAT_EVENTS],
        "discriminator": {
            "propertyName": "type",
            "mapping": {get_args(m.model_fields["type"].annotation)[0]: REF_PREFIX + m.__name__ for m in CHAT_EVENTS},
        },
    }
    return defs


def _parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.where, "required": p.required, "schema": dict(p.schema)}
    if p.description:
        out["description"] = p.description
    return out


def _json(model: type[BaseModel] | None) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(model)}} if model is not None else {}


def _operation(op: Operation) -> dict[str, Any]:
    security: list[dict[str, list[str]]]
    if op.who in ("anyone", "stripe"):
        security = []
    elif op.who == "user":
        security = [{"entraBearer": []}, {"swaPrincipal": []}]
    else:
        security = [{"entraBearer": []}, {"swaPrincipal": []}, {"apiKey": []}]
    params = [_parameter(p) for p in op.params]
    if op.who not in ("anyone", "stripe"):
        params.append(
            _parameter(
                Param(
                    "X-Folio-Workspace",
                    "header",
                    {"type": "string", "anyOf": [{"format": "uuid"}, {"maxLength": 0}]},  # empty: as if absent
                    "The workspace to act in (a user in several); default: the user's personal one. API keys ignore it.",
                )
            )
        )
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": "OK" if op.ok == 200 else {201: "Created", 202: "Accepted"}.get(op.ok, "")}
    if op.ok == 204:
        ok["description"] = "No content"
    if op.streams and op.reply is not None:
        ok["content"] = {
            NDJSON: {
                "schema": {"type": "string"},
                "x-ndjson-item": {"$ref": REF_PREFIX + "ChatEvent"},
                "description": "One `ChatEvent` JSON object a line, each sent as soon as it is made.",
            },
            **_json(op.reply),
        }
    elif op.reply is not None:
        ok["content"] = _json(op.reply)
    if op.reply_headers:
        ok["headers"] = {h: {"schema": {"type": "string"}} for h in op.reply_headers}
    responses[str(op.ok)] = ok
    for code in _statuses(op):
        responses[str(code)] = {
            "description": _STATUS_TEXT[code],
            "content": {PROBLEM_JSON: {"schema": _ref(Problem)}},
        }
    described: dict[str, Any] = {
        "operationId": op.name,
        "tags": [op.tag],
        "summary": op.summary,
        "description": _WHO[op.who],
        "security": security,
        "responses": responses,
    }
    if params:
        described["parameters"] = params
    if op.body is not None:
        described["requestBody"] = {"required": True, "content": _json(op.body)}
    elif op.who == "stripe":
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
            "description": "A Stripe event, exactly as Stripe sent it (the signature covers these bytes).",
        }
    return described


def describe_for(settings: Settings) -> dict[str, Any]:
    """The description of this installation (its upload limit and the plans it sells)."""
    return describe(Installation.of(settings))


@cache
def describe(where: Installation = Installation(), route_prefix: str = "api") -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in :data:`OPERATIONS`, built once per installation.

    Callers must not change the dict they get (it is cached).
    """
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(f"/{route_prefix}/{op.route}", {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Folio HTTP API",
            "version": API_VERSION,
            "description": "A document knowledge base: workspaces, collections, documents, search, chat, billing. "
            "Errors are RFC 9457 problem+json. See docs/api.md and docs/openapi.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": _components(OPERATIONS, where),
            "securitySchemes": {
                "entraBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (Microsoft Entra ID)"},
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Authorization: ApiKey folio_<workspace>_<key id>_<secret>` (POST /api/apikeys).",
                },
                "swaPrincipal": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "x-ms-client-principal",
                    "description": "Set by Azure Static Web Apps after sign-in (trusted only where configured).",
                },
            },
        },
        "tags": [{"name": t} for t in ("service", "workspace", "documents", "search", "chat", "billing")],
    }


def route_problems(registered: Iterable[tuple[str, str, Iterable[str]]]) -> list[str]:
    """Differences between the registered HTTP routes ``(function name, route, methods)`` and :data:`OPERATIONS`.

    Empty when every registered route is described (same name, route and method) and every described one exists.
    """
    described = {(op.name, op.route, op.method) for op in OPERATIONS}
    actual = {(name, route.strip("/"), method.upper()) for name, route, methods in registered for method in methods}
    problems = [f"registered but not described: {m} /{r} ({n})" for n, r, m in sorted(actual - described)]
    problems += [f"described but not registered: {m} /{r} ({n})" for n, r, m in sorted(described - actual)]
    names = [op.name for op in OPERATIONS]
    problems += [f"described twice: {n}" for n in sorted({n for n in names if names.count(n) > 1})]
    return problems
