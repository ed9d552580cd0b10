"""Operator commands: folder ingest through the real path, dead-letter listing and replay."""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared import cli
from shared.folder_ingest import FolderIngest
from tests.helpers import Client
from tests.pipeline import Pipeline

# The CLI reads local.settings.json (else the sample) into the environment, as `func start` does; in this
# test process that would leak the sample's values (its Cosmos DB endpoint, say) into later tests.
NO_LOCAL_SETTINGS = ("--settings", str(Path(__file__).parent / "fixtures" / "no-local-settings.json"))


def test_folder_ingest_uploads_every_supported_file_and_waits_for_indexing(
    tmp_path: Path, host: str, running_pipeline: Pipeline
) -> None:
    (tmp_path / "a.md").write_text("# Alpha\n\nText about alpha particles.\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Plain text about beta decay.\n")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    progress = io.StringIO()
    ingest = FolderIngest(f"{host}/api", FolderIngest.dev_principal("cli-user@example.com"), out=progress, poll_s=0.1)
    results = ingest.run(tmp_path, "imported", timeout_s=60)
    by_name = {Path(k).name: v for k, v in results.items()}
    assert by_name["a.md"]["status"] == "ready" and by_name["b.txt"]["status"] == "ready"
    assert by_name["empty.txt"]["status"] == "failed" and "no text" in by_name["empty.txt"]["error"]
    assert by_name["picture.png"]["status"] == "skipped"
    assert "indexing" in progress.getvalue() and "3/3" in progress.getvalue()
    # Running it again reuses the collection instead of failing on the name.
    assert ingest.collection_id("imported") == ingest.collection_id("imported")
    # The web app's dev sign-in with the same email (frontend/src/auth.ts, devSignIn) is the same user.
    signed_in = {
        "identityProvider": "aad",
        "userId": "dev:cli-user@example.com",
        "userDetails": "cli-user@example.com",
        "userRoles": ["anonymous", "authenticated"],
    }
    web = Client(host, {"x-ms-client-principal": base64.b64encode(json.dumps(signed_in).encode()).decode()})
    assert "imported" in [c["name"] for c in web.get("/api/collections").json()["collections"]]


def test_deadletters_can_be_listed_and_replayed(capsys: pytest.CaptureFixture[str], settings_override: Any) -> None:
    from devhost.local_queue import local_queue_from_settings
    from shared.bootstrap import services
    from shared.config import get_settings

    # A queue of its own: the index queue has a background worker in this module (running_pipeline),
    # which would race this test for the message and this test would disturb its messages.
    settings_override(INDEX_QUEUE_NAME=f"deadletters-{uuid.uuid4().hex[:8]}")
    settings = get_settings()
    queue = local_queue_from_settings(settings, services().database)
    queue.send("poison-1", {"v": 0, "kind": "nonsense"})
    for _ in range(settings.index_max_delivery):
        (message,) = queue.receive(10, 60)
        queue.abandon(message, "ValueError: bad message")
    assert cli.main([*NO_LOCAL_SETTINGS, "deadletters"]) == 0
    (poison,) = json.loads(capsys.readouterr().out)
    assert poison["messageId"] == "poison-1" and poison["body"] == {"v": 0, "kind": "nonsense"}
    assert poison["reason"] == "MaxDeliveryCountExceeded" and "bad message" in poison["description"]

    assert cli.main([*NO_LOCAL_SETTINGS, "deadletters", "--replay", "poison-1", "no-such-id"]) == 1
    replayed = json.loads(capsys.readouterr().out)
    assert replayed == {"replayed": ["poison-1"], "notFound": ["no-such-id"]}
    assert queue.dead_letters() == []
    (message,) = queue.receive(50, 60)
    assert message.message_id == "poison-1" and message.delivery_count == 1
    queue.complete(message)


def test_cli_reports_configuration_errors_without_a_traceback(
    capsys: pytest.CaptureFixture[str], settings_override: Any
) -> None:
    settings_override(INDEX_QUEUE_BACKEND="carrier-pigeon")
    assert cli.main([*NO_LOCAL_SETTINGS, "deadletters"]) == 2
    assert "INDEX_QUEUE_BACKEND" in capsys.readouterr().err
