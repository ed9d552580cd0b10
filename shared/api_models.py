"""The JSON request bodies of the HTTP API, one pydantic model each: the one statement of what a body may hold.

The same models are what an OpenAPI description of the API is generated from. The blueprints read a
body with ``request.body(Model)``, importing the model in the handler: creating these classes takes
about 3 ms, which cold start should not pay. Every model is a :class:`~shared.validation.Body`:
strict JSON types, unknown fields refused, ``null`` the same as an absent field, camelCase names on
the wire, strings stripped and free of control characters. Rules that need the database, the settings or the caller (a plan that exists, an upload within
``MAX_UPLOAD_BYTES``, a session of the caller's own) stay in the services.
"""

# No ``from __future__ import annotations``: pydantic would evaluate each annotation string as a class is made.

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from shared.chat.store import MAX_TITLE_CHARS
from shared.search import MAX_TOP
from shared.validation import LINE_CONTROLS, TEXT_CONTROLS, Body, Id, Line, Text

# --- what the OpenAPI description says a string holds -------------------------------------------
# Schema-only (``json_schema_extra``): validation stays shared.validation's; these patterns state the
# same rule for clients and for the fuzzer, which checks that text matching them is accepted and
# text that does not is refused. Stripping removes Unicode White_Space at either end (pydantic-core);
# what is left may not hold the characters shared.validation refuses.
WHITESPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# TEXT_CONTROLS and LINE_CONTROLS (shared.validation) leave out lone surrogates (also refused): a pattern
# cannot name them portably, and JSON text from any ordinary client holds none.


def _described(controls: str, *, empty: bool) -> Any:
    core = f"[^{WHITESPACE}{controls}](?:[^{controls}]*[^{WHITESPACE}{controls}])?"
    return Field(json_schema_extra={"pattern": f"^[{WHITESPACE}]*{f'(?:{core})?' if empty else core}[{WHITESPACE}]*$"})


LINE = _described(LINE_CONTROLS, empty=False)  # one line, not blank
ANY_LINE = _described(LINE_CONTROLS, empty=True)  # one line, may be blank
TEXT = _described(TEXT_CONTROLS, empty=False)  # may span lines, not blank
ANY_TEXT = _described(TEXT_CONTROLS, empty=True)
_EMAIL_PART = rf"[^@\s{LINE_CONTROLS}]+"
EMAIL = Field(
    json_schema_extra={"pattern": rf"^[{WHITESPACE}]*{_EMAIL_PART}@{_EMAIL_PART}\.{_EMAIL_PART}[{WHITESPACE}]*$"}
)
MODEL_NAME = Field(json_schema_extra={"pattern": rf"^[{WHITESPACE}]*[A-Za-z0-9._:/\-]{{1,100}}[{WHITESPACE}]*$"})
PROVIDER_KEY = Field(json_schema_extra={"pattern": rf"^[{WHITESPACE}]*[\x21-\x7e]{{16,512}}[{WHITESPACE}]*$"})

# --- workspace ----------------------------------------------------------------------------------

Role = Literal["owner", "member", "viewer"]
ApiKeyRole = Literal["member", "viewer"]


class AddMember(Body):
    """``POST /api/members``: add a user who has signed in with this email before, or invite them."""

    email: Annotated[Line, Field(min_length=3, max_length=320), EMAIL]
    role: Role


class CreateApiKey(Body):
    """``POST /api/apikeys``: a workspace API key; its secret is shown once, in the response."""

    name: Annotated[Line, Field(min_length=1, max_length=100), LINE]
    role: ApiKeyRole = "viewer"


# --- collections and documents ------------------------------------------------------------------


class CreateCollection(Body):
    """``POST /api/collections``."""

    name: Annotated[Line, Field(min_length=1, max_length=200), LINE]
    description: Annotated[Text, Field(max_length=2000), ANY_TEXT] = ""


class SetCollectionAccess(Body):
    """``PUT /api/collections/{collectionId}/access``: open to the workspace, or restricted to these (owners only).

    Replaces the collection's members and groups; owners of the workspace always read everything.
    """

    mode: Literal["open", "restricted"]
    members: Annotated[list[Id], Field(max_length=500)] = Field(default_factory=list)  # user ids of members
    groups: Annotated[list[Id], Field(max_length=200)] = Field(default_factory=list)  # Entra group object ids
    # The owner's names for ``groups``, in the same order (empty, or one per group).
    group_labels: Annotated[list[Annotated[Line, Field(max_length=200), ANY_LINE]], Field(max_length=200)] = Field(
        default_factory=list
    )


class RequestUpload(Body):
    """``POST /api/collections/{collectionId}/documents``: a document row and a URL to PUT the file to.

    The file type (by extension), the content type's match with it and the size limit are checked by
    ``shared.documents``, which knows the settings.
    """

    filename: Annotated[Line, Field(min_length=1, max_length=255), LINE]
    content_type: Annotated[Line, Field(max_length=200), ANY_LINE] = ""
    size: Annotated[int, Field(ge=1, description="The file's size in bytes.")]


# --- search -------------------------------------------------------------------------------------

SearchMode = Literal["hybrid", "lexical", "vector"]  # shared.search.MODES
FilterValue = Annotated[Line, Field(min_length=1, max_length=100), LINE]


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

    query: Annotated[Text, Field(min_length=1, max_length=4000), TEXT]
    mode: SearchMode = "hybrid"
    top: Annotated[int, Field(ge=1, le=MAX_TOP)] = 10
    collection_ids: Annotated[list[Id], Field(max_length=100)] = Field(default_factory=list)
    filters: SearchFilters = Field(default_factory=SearchFilters)


# --- chat ---------------------------------------------------------------------------------------

ByoProvider = Literal["openai", "anthropic"]  # shared.chat.providers.BYO_PROVIDERS


class ChatTurn(Body):
    """``POST /api/chat``: one question, in a new session or an existing one."""

    message: Annotated[Text, Field(min_length=1, max_length=4000), TEXT]
    # Not a UUID field: a malformed session id is a 404 like an unknown one, so ids stay opaque.
    session_id: Annotated[Line, ANY_LINE] | None = None
    collection_ids: Annotated[list[Id], Field(max_length=100)] = Field(default_factory=list)


class RenameSession(Body):
    """``PATCH /api/chat/sessions/{sessionId}``."""

    title: Annotated[Line, Field(min_length=1, max_length=MAX_TITLE_CHARS), LINE]


class SetChatKey(Body):
    """``PUT /api/chat/key``: the caller's own model provider key, kept in the secret store."""

    provider: ByoProvider
    api_key: Annotated[Line, Field(min_length=1, max_length=512), PROVIDER_KEY]
    model: Annotated[Line, Field(max_length=100), MODEL_NAME] | None = None


class AnswerFeedback(Body):
    """``PUT /api/chat/sessions/{sessionId}/messages/{messageId}/feedback``: a thumbs up, or down with a reason."""

    # Stated for clients (and the fuzzer); shared.feedback enforces it: a reason and a comment go with "down" only.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"rating": {"const": "up"}}},
            "then": {"properties": {"reason": {"type": "null"}, "comment": {"type": "null"}}},
        }
    )

    rating: Literal["up", "down"]
    reason: Literal["wrong", "not_grounded", "incomplete", "other"] | None = None  # shared.feedback.REASONS
    comment: Annotated[Text, Field(max_length=500), ANY_TEXT] | None = None  # shared.feedback.MAX_COMMENT_CHARS


# --- billing ------------------------------------------------------------------------------------


class StartCheckout(Body):
    """``POST /api/billing/checkout``: a Stripe Checkout Session for a plan of ``BILLING_PLANS``."""

    plan: Annotated[Line, Field(min_length=1, max_length=32), LINE]


REQUEST_BODIES: tuple[type[Body], ...] = (
    AddMember,
    CreateApiKey,
    CreateCollection,
    SetCollectionAccess,
    RequestUpload,
    Search,
    ChatTurn,
    RenameSession,
    SetChatKey,
    AnswerFeedback,
    StartCheckout,
)
