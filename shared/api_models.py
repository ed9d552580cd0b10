"""The JSON request bodies of the HTTP API, one pydantic model each: the one statement of what a body may hold.

The same models are what an OpenAPI description of the API is generated from. The blueprints read a
body with ``request.body(Model)``, importing the model in the handler: creating these classes takes
about 3 ms, which cold start should not pay. Every model is a :class:`~shared.validation.Body`:
strict JSON types, unknown fields refused, ``null`` the same as an absent field, camelCase names on
the wire, strings stripped and free of control characters. Rules that need the database, the settings or the caller (a plan that exists, an upload within
``MAX_UPLOAD_BYTES``, a session of the caller's own) stay in the services.
"""

# No ``from __future__ import annotations``: pydantic would evaluate each annotation string as a class is made.

from typing import Annotated, Literal

from pydantic import Field

from shared.chat.store import MAX_TITLE_CHARS
from shared.search import MAX_TOP
from shared.validation import Body, Id, Line, Text

# --- workspace ----------------------------------------------------------------------------------

Role = Literal["owner", "member", "viewer"]
ApiKeyRole = Literal["member", "viewer"]


class AddMember(Body):
    """``POST /api/members``: add a user who has signed in with this email before, or invite them."""

    email: Annotated[Line, Field(min_length=3, max_length=320)]
    role: Role


class CreateApiKey(Body):
    """``POST /api/apikeys``: a workspace API key; its secret is shown once, in the response."""

    name: Annotated[Line, Field(min_length=1, max_length=100)]
    role: ApiKeyRole = "viewer"


# --- collections and documents ------------------------------------------------------------------


class CreateCollection(Body):
    """``POST /api/collections``."""

    name: Annotated[Line, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=2000)] = ""


class RequestUpload(Body):
    """``POST /api/collections/{collectionId}/documents``: a document row and a URL to PUT the file to.

    The file type (by extension), the content type's match with it and the size limit are checked by
    ``shared.documents``, which knows the settings.
    """

    filename: Annotated[Line, Field(min_length=1, max_length=255)]
    content_type: Annotated[Line, Field(max_length=200)] = ""
    size: Annotated[int, Field(ge=1, description="The file's size in bytes.")]


# --- search -------------------------------------------------------------------------------------

SearchMode = Literal["hybrid", "lexical", "vector"]  # shared.search.MODES
FilterValue = Annotated[Line, Field(min_length=1, max_length=100)]


class SearchFilters(Body):
    """Document properties a search keeps to; a list matches any of its values, an empty one everything."""

    doc_type: Annotated[list[FilterValue], Field(max_length=50)] = Field(default_factory=list)
    jurisdiction: Annotated[list[FilterValue], Field(max_length=50)] = Field(default_factory=list)
    document_ids: Annotated[list[Id], Field(max_length=100)] = Field(default_factory=list)


class Search(Body):
    """``POST /api/search``.

    ``query`` may be up to 4,000 characters as sent; ``shared.search`` allows 1,000 once runs of
    whitespace are collapsed.
    """

    query: Annotated[Text, Field(min_length=1, max_length=4000)]
    mode: SearchMode = "hybrid"
    top: Annotated[int, Field(ge=1, le=MAX_TOP)] = 10
    collection_ids: Annotated[list[Id], Field(max_length=100)] = Field(default_factory=list)
    filters: SearchFilters = Field(default_factory=SearchFilters)


# --- chat ---------------------------------------------------------------------------------------

ByoProvider = Literal["openai", "anthropic"]  # shared.chat.providers.BYO_PROVIDERS


class ChatTurn(Body):
    """``POST /api/chat``: one question, in a new session or an existing one."""

    message: Annotated[Text, Field(min_length=1, max_length=4000)]
    # Not a UUID field: a malformed session id is a 404 like an unknown one, so ids stay opaque.
    session_id: Line | None = None
    collection_ids: Annotated[list[Id], Field(max_length=100)] = Field(default_factory=list)


class RenameSession(Body):
    """``PATCH /api/chat/sessions/{sessionId}``."""

    title: Annotated[Line, Field(min_length=1, max_length=MAX_TITLE_CHARS)]


class SetChatKey(Body):
    """``PUT /api/chat/key``: the caller's own model provider key, kept in the secret store."""

    provider: ByoProvider
    api_key: Annotated[Line, Field(min_length=1, max_length=512)]
    model: Annotated[Line, Field(max_length=100)] | None = None


# --- billing ------------------------------------------------------------------------------------


class StartCheckout(Body):
    """``POST /api/billing/checkout``: a Stripe Checkout Session for a plan of ``BILLING_PLANS``."""

    plan: Annotated[Line, Field(min_length=1, max_length=32)]


REQUEST_BODIES: tuple[type[Body], ...] = (
    AddMember,
    CreateApiKey,
    CreateCollection,
    RequestUpload,
    Search,
    ChatTurn,
    RenameSession,
    SetChatKey,
    StartCheckout,
)
