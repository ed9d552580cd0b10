"""The chat store's error mapping and tokens, without a server: what only the emulator (or only Cosmos) does."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.cosmos import exceptions

from shared.chat.store import ChatStore, Owner, _decode_continuation, _encode_continuation, http_etag, owner_of
from shared.errors import Invalid, NotFound, Unavailable
from shared.tenancy import Caller, Role

OWNER = Owner("t", "u")


class _Failing:
    def __init__(self, status: int) -> None:
        self.status = status

    def read_item(self, *args: Any, **kwargs: Any) -> Any:
        raise exceptions.CosmosHttpResponseError(status_code=self.status, message="boom")


def test_a_500_means_missing_only_on_the_local_emulator() -> None:
    # cosmosdb-server answers a read of a missing item with 500; from Cosmos DB a 500 is an outage.
    from devhost.cosmos import EmulatorContainer

    with pytest.raises(NotFound):
        ChatStore(EmulatorContainer(_Failing(500))).get_session(OWNER, "s")
    with pytest.raises(Unavailable):
        ChatStore(_Failing(500)).get_session(OWNER, "s")
    with pytest.raises(NotFound):
        ChatStore(_Failing(404)).get_session(OWNER, "s")


def test_continuation_tokens_round_trip_and_reject_anything_else() -> None:
    token = '{"token":"+RID:gAAB#RT:1#TRC:3","range":{"min":"","max":"FF"}}'
    encoded = _encode_continuation(token)
    assert encoded and "=" not in encoded and "+" not in encoded and "/" not in encoded
    assert _decode_continuation(encoded) == token
    assert _encode_continuation(None) is None and _decode_continuation(None) is None
    for bad in ("%%%", "bm90IGEgdG9rZW4", _encode_continuation("x")[:-2], "A" * 5000):  # type: ignore[index]
        with pytest.raises(Invalid):
            _decode_continuation(bad)


def test_partition_comes_from_the_caller() -> None:
    tenant, user = uuid.uuid4(), uuid.uuid4()
    assert owner_of(Caller(tenant, Role.VIEWER, "user", str(user), user)).partition_key == [str(tenant), str(user)]
    key = owner_of(Caller(tenant, Role.MEMBER, "api_key", "k1"))
    assert key.partition_key == [str(tenant), "api_key:k1"]


def test_etags_are_http_entity_tags() -> None:
    assert http_etag("abc") == '"abc"'
    assert http_etag('"00-11"') == '"00-11"'
